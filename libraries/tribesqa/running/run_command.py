"""``tribes-qa run``: the command line of a run, its seed, its run.json and ``--replay``.

A run's options go into one mapping (``run_record.OPTIONS`` names); the run, the record and a
replay all start from that mapping, so what run.json says is what ran.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

EXIT_INVALID, EXIT_USAGE, EXIT_UNREADABLE = 1, 2, 3
REPLAY_COMPANIONS = {"replay", "force", "outputdir"}


def _given(ctx: typer.Context, name: str) -> bool:
    """Whether option ``name`` came from the command line (not its default)."""
    return getattr(ctx.get_parameter_source(name), "name", None) == "COMMANDLINE"


def run(
    ctx: typer.Context,
    parallel: Annotated[
        int, typer.Option("--parallel", "-p", min=0, help="pabot processes (0: plain robot).")
    ] = 0,
    target: Annotated[
        Path | None,
        typer.Option("--target", "-t", help="Target variables file (default: variables/sim.yaml)."),
    ] = None,
    outputdir: Annotated[Path, typer.Option("--outputdir", "-d", help="Where reports go.")] = Path(
        "results"
    ),
    gate_per_node: Annotated[
        bool,
        typer.Option(
            "--gate-per-node",
            help="The fleet gate, one pabot process per ROSTER node, against one shared fleet "
            "(processes: --parallel, default one per node).",
        ),
    ] = False,
    process_timeout: Annotated[
        int | None,
        typer.Option("--process-timeout", min=1, help="pabot --processtimeout (seconds)."),
    ] = None,
    shard: Annotated[
        str | None, typer.Option("--shard", help="Run shard I of N of the suites (pabot), I/N.")
    ] = None,
    pabotlib_port: Annotated[
        int | None,
        typer.Option(
            "--pabotlib-port",
            min=1,
            max=65535,
            help="Host PabotLib on this port (other shards attach).",
        ),
    ] = None,
    pabotlib_attach: Annotated[
        str | None,
        typer.Option("--pabotlib-attach", help="Use another shard's PabotLib at HOST:PORT."),
    ] = None,
    rerun_failed: Annotated[
        bool,
        typer.Option(
            "--rerun-failed",
            help="Rerun the suites that failed in OUTPUTDIR/output.xml (kept as "
            "output-previous.xml), then merge (rebot --merge) into output.xml, log.html, "
            "report.html; the exit code is the rerun's.",
        ),
    ] = False,
    allow_destructive: Annotated[
        bool,
        typer.Option(
            "--allow-destructive",
            help="On a real target, also run the tests tagged destructive (excluded by "
            "default) and pass ALLOW_DESTRUCTIVE:true to the library.",
        ),
    ] = False,
    seed: Annotated[
        int | None,
        typer.Option(
            "--seed",
            min=0,
            help="Seed of every non-secret random choice of the simulator (default: a new one, "
            "printed and kept in OUTPUTDIR/run.json).",
        ),
    ] = None,
    replay: Annotated[
        Path | None,
        typer.Option(
            "--replay",
            help="Run a recorded run (its run.json) again: same options, robot arguments and "
            "seed; refused on another commit or a changed variables file unless --force. "
            "--outputdir may go with it.",
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="With --replay: replay even when the code differs.")
    ] = False,
) -> None:
    """Run the suites with robot (or pabot with --parallel N); extra args after -- go to robot.

    Writes OUTPUTDIR/report.html, log.html, output.xml (merged under pabot), fleet-matrix.html,
    requirements.html, timeline.html (from the history files) and run.json (the seed, the
    command, the commit, the variables file: what `--replay` needs). Works without an activated
    venv. Ctrl-C / SIGTERM stop the run and every process it started (pabot, robot, PabotLib,
    simulator); the exit code is robot's (pabot's).
    """
    if replay is not None:
        _replay(ctx, replay, force)
        return
    if force:
        _fail("--force goes with --replay only", EXIT_USAGE)
    options = {
        "--parallel": parallel,
        "--target": None if target is None else str(target),
        "--outputdir": str(outputdir),
        "--gate-per-node": gate_per_node,
        "--process-timeout": process_timeout,
        "--shard": shard,
        "--pabotlib-port": pabotlib_port,
        "--pabotlib-attach": pabotlib_attach,
        "--rerun-failed": rerun_failed,
        "--allow-destructive": allow_destructive,
    }
    raise typer.Exit(execute(options, list(ctx.args), seed))


def _fail(message: str, code: int) -> NoReturn:
    typer.echo(f"tribes-qa run: {message}", err=True)
    raise typer.Exit(code)


def _replay(ctx: typer.Context, source: Path, force: bool) -> None:
    from tribesqa.running.run_record import (
        RunRecordError,
        compare_outcomes,
        load,
        outcomes,
        replay_options,
        replay_problems,
    )
    from tribesqa.running.runner import RunError

    given = sorted(
        f"--{name.replace('_', '-')}"
        for name in ctx.params
        if name not in REPLAY_COMPANIONS and _given(ctx, name)
    )
    if given or ctx.args:
        _fail(
            f"--replay runs the recorded options and robot arguments; not with "
            f"{', '.join([*given, *ctx.args])} (only --outputdir and --force go with it)",
            EXIT_USAGE,
        )
    try:
        record = load(source)
    except RunRecordError as error:
        _fail(str(error), EXIT_UNREADABLE if error.unreadable else EXIT_INVALID)
    refusals, warnings = replay_problems(record, source)
    for warning in warnings:
        typer.echo(f"tribes-qa run --replay: warning: {warning}", err=True)
    if refusals and not force:
        for refusal in refusals:
            typer.echo(f"tribes-qa run --replay: {refusal}", err=True)
        _fail("not replayed: the same seed would not mean the same run (--force replays anyway)", 2)
    outputdir = ctx.params["outputdir"]
    override = _given(ctx, "outputdir")
    try:
        options, robot_args = replay_options(record, outputdir if override else None)
    except RunError as error:
        _fail(f"{source}: {error}", EXIT_INVALID)
    typer.echo(f"tribes-qa run --replay {source}: seed {record['seed']}", err=True)
    code = execute(options, robot_args, int(record["seed"]))
    recorded = record.get("outcomes") or {}
    replayed = outcomes(Path(options["--outputdir"]) / "output.xml")
    differences = compare_outcomes(recorded, replayed)
    for line in differences:
        typer.echo(f"tribes-qa run --replay: outcome differs: {line}", err=True)
    if not differences and recorded:
        typer.echo(
            f"tribes-qa run --replay: the same outcomes as the recorded run ({len(recorded)} "
            "test(s))",
            err=True,
        )
    raise typer.Exit(code)


def execute(options: dict[str, Any], robot_args: list[str], seed: int | None) -> int:
    """Run with ``options`` (``run_record.OPTIONS`` names) and write run.json; robot's exit code."""
    from tribesqa.config import ConfigFileError
    from tribesqa.contract import ContractError
    from tribesqa.running.run_record import RunRecord, now, pick_seed
    from tribesqa.running.runner import REPO, RunError, RunRequest, run_suites

    target = Path(options.get("--target") or "variables/sim.yaml")
    if options.get("--target") is None and not target.exists():
        target = REPO / "variables" / "sim.yaml"
    if not target.exists():
        _fail(f"target file {target} does not exist", EXIT_UNREADABLE)
    outputdir = Path(options["--outputdir"])
    request = RunRequest(
        target=target,
        outputdir=outputdir,
        parallel=int(options.get("--parallel") or 0),
        robot_args=robot_args,
        gate_per_node=bool(options.get("--gate-per-node")),
        process_timeout=options.get("--process-timeout"),
        shard=options.get("--shard"),
        pabotlib_port=options.get("--pabotlib-port"),
        pabotlib_attach=options.get("--pabotlib-attach"),
        rerun_failed=bool(options.get("--rerun-failed")),
        allow_destructive=bool(options.get("--allow-destructive")),
        seed=pick_seed() if seed is None else seed,
    )
    started, started_at = now(), time.time()
    try:
        code = run_suites(request)
    except RunError as error:
        _fail(str(error), EXIT_USAGE)
    except ConfigFileError as error:
        _fail(str(error), EXIT_UNREADABLE)
    except ContractError as error:
        from tribesqa.running.cli import _print_problems

        _print_problems(target, error)
        raise typer.Exit(EXIT_INVALID) from None
    record = RunRecord(request.seed, options, robot_args, request.command, target, started)
    output = outputdir / "output.xml"
    fresh = output.is_file() and output.stat().st_mtime >= started_at - 1  # not a stale one
    written = record.write(outputdir, code, output if fresh else None)
    typer.echo(f"Run record: {written.resolve()} (seed {request.seed}; replay: tribes-qa run "
               f"--replay {written})", err=True)  # fmt: skip
    return code
