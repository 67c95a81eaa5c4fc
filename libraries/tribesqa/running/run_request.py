"""What ``tribes-qa run`` is asked to do (``RunRequest``), and whether the options go together.

``RunError``: the run cannot start as asked (bad option combination, busy port, missing roster).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]  # the checkout: libraries/tribesqa/running/ -> ../../..


class RunError(Exception):
    """The run cannot start as asked (bad option combination, busy port, missing roster)."""


@dataclass
class RunRequest:
    target: Path
    outputdir: Path = Path("results")
    parallel: int = 0
    robot_args: list[str] = field(default_factory=list)
    suites: list[str] = field(default_factory=list)
    gate_per_node: bool = False
    process_timeout: int | None = None
    shard: str | None = None
    pabotlib_port: int | None = None  # host PabotLib on this port (for other shards)
    pabotlib_attach: str | None = None  # HOST:PORT of another shard's PabotLib
    matrix: bool = True
    rerun_failed: bool = False  # rerun the failed suites of OUTPUTDIR/output.xml, then merge
    seed: int | None = None  # TRIBES_SIM_SEED of the run's processes (the simulator's choices)
    command: list[str] = field(default_factory=list)  # set by run_suites: the argv it ran
    allow_destructive: bool = False  # a real target runs its tests tagged destructive too

    def uses_pabot(self) -> bool:
        return self.parallel > 0 or self.gate_per_node


def default_suites_dir() -> Path:
    return Path("suites") if Path("suites").is_dir() else REPO / "suites"


def parse_host_port(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    try:
        number = int(port)
    except ValueError:
        number = -1
    if not host or not 0 < number < 65536:
        raise RunError(f"--pabotlib-attach wants HOST:PORT, got {text!r}")
    return host, number


def check_request(request: RunRequest) -> None:
    pabot_only = {
        "--shard": request.shard,
        "--process-timeout": request.process_timeout,
        "--pabotlib-port": request.pabotlib_port,
        "--pabotlib-attach": request.pabotlib_attach,
    }
    if not request.uses_pabot():
        given = [name for name, value in pabot_only.items() if value is not None]
        if given:
            raise RunError(f"{', '.join(given)} need pabot: add --parallel N")
    if request.pabotlib_port is not None and request.pabotlib_attach is not None:
        raise RunError("--pabotlib-port (host PabotLib) and --pabotlib-attach exclude each other")
    if request.shard is not None:
        index, _, count = request.shard.partition("/")
        if not (index.isdigit() and count.isdigit() and 1 <= int(index) <= int(count)):
            raise RunError(f"--shard wants I/N with 1 <= I <= N, got {request.shard!r}")
    if request.pabotlib_attach is not None:
        parse_host_port(request.pabotlib_attach)
    if request.rerun_failed and (request.shard or request.pabotlib_attach):
        raise RunError(
            "--rerun-failed reruns one output directory's failed suites: not with "
            "--shard/--pabotlib-attach (rerun each shard's directory, then merge them with rebot)"
        )


def roster_nodes(target: Path) -> list[str]:
    """The ROSTER's node names of a target file (validated with the models)."""
    from tribesqa.config import validate_target_file

    parsed = validate_target_file(target)
    if not parsed.ROSTER:
        raise RunError(f"{target}: no ROSTER: the per-node gate needs one")
    return [entry.node for entry in parsed.ROSTER]
