"""Shared helpers for the simulator benchmarks.

Each benchmark starts a private fleet in a temporary directory, measures, and always stops it
(``fleet`` is a context manager whose ``finally`` stops Legion, kills strays and checks that no
process of the fleet is left). Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import json
import os
import shutil
import ssl
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
# Runnable as `python bench/x.py` from a checkout without an installed package.
for _path in (ROOT / "libraries", ROOT / "simulator"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from tribes_sim.fleet import (  # noqa: E402
    JOIN_PROVIDERS,
    LegionClient,
    kill_strays,
    prepare_fleet_dir,
    start_legion,
    stop_fleet,
)
from tribesqa.clients.keys import AdminKey  # noqa: E402
from tribesqa.clients.nip98 import Nip98Auth  # noqa: E402

# httpcore tries `import sniffio` on every async request; when it is not installed each miss is
# a full sys.path search (~0.6 ms, most of the pollers' CPU). Record it as absent once.
if importlib.util.find_spec("sniffio") is None:
    sys.modules["sniffio"] = None  # type: ignore[assignment]

MANAGEMENT_PATH = "/api/admin/management"
PAGE_SIZE = 4096


def parse_args(description: str, *, repeat: int, extra: Callable[[Any], None] | None = None) -> Any:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--repeat", type=int, default=repeat, help=f"runs (default {repeat})")
    if extra is not None:
        extra(parser)
    return parser.parse_args()


# -- statistics ------------------------------------------------------------------------------------
def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile (no interpolation: it is a value that was measured)."""
    ordered = sorted(values)
    rank = max(1, round(pct / 100 * len(ordered) + 0.5 - 1e-9))
    return ordered[min(rank, len(ordered)) - 1]


def spread(values: list[float], unit: str = "s", scale: float = 1.0) -> str:
    shown = [v * scale for v in values]
    return (
        f"median {statistics.median(shown):.2f} {unit}, min {min(shown):.2f}, "
        f"max {max(shown):.2f} (n={len(shown)})"
    )


# -- processes -------------------------------------------------------------------------------------
def fleet_pids(directory: Path) -> dict[int, str]:
    """Legion, zygote and node-host pids of this fleet (their command lines name the fleet dir).

    Hosts forked from the zygote keep its command line; the zygote is the one Legion started.
    """
    marker = str(directory.resolve())
    cmdlines: dict[int, str] = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            if marker in cmdline and "tribes_sim." in cmdline:
                cmdlines[int(proc.name)] = cmdline
    roles = {}
    for pid, cmdline in cmdlines.items():
        if "tribes_sim.legion" in cmdline:
            roles[pid] = "legion"
        elif "--zygote" in cmdline and "--zygote" not in cmdlines.get(_parent(pid), ""):
            roles[pid] = "zygote"
        else:
            roles[pid] = "host"
    return roles


def _parent(pid: int) -> int:
    with contextlib.suppress(OSError, ValueError, IndexError):
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    return 0


def load_note() -> str:
    """The machine's load, printed with each figure: other work on the 2 cores skews timings."""
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f}/{five:.1f} on {os.cpu_count()} cores"


def rss_bytes(pid: int) -> int:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    with contextlib.suppress(OSError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return 0.0


# -- fleets ----------------------------------------------------------------------------------------
@dataclass
class Fleet:
    directory: Path
    legion_url: str
    legion_start_s: float
    legion: LegionClient
    key: AdminKey
    names: list[str] = field(default_factory=list)

    def admin_url(self, name: str) -> str | None:
        """The node's admin URL once its host bound the ports (before Legion answers)."""
        try:
            ports = json.loads((self.directory / "nodes" / name / "ports.json").read_text())
        except (OSError, ValueError):
            return None
        return f"http://127.0.0.1:{ports['admin']}"


@contextlib.contextmanager
def fleet(label: str, **overrides: Any) -> Iterator[Fleet]:
    """A running Legion (no nodes yet) in a fresh directory; stopped and removed afterwards."""
    directory = Path(tempfile.mkdtemp(prefix=f"tribes-bench-{label}-")).resolve()
    client: LegionClient | None = None
    try:
        prepare_fleet_dir(directory, **overrides)
        started = time.perf_counter()
        info = start_legion(directory)
        legion_start_s = time.perf_counter() - started
        client = LegionClient(info["url"])
        key = AdminKey.from_file(directory / "secrets" / "admin.key")
        yield Fleet(directory, info["url"], legion_start_s, client, key)
    except BaseException:
        # The fleet directory is removed below: show why Legion failed while it still exists.
        with contextlib.suppress(OSError):
            tail = (directory / "legion.log").read_text()[-4000:]
            print(f"--- {directory}/legion.log (tail)\n{tail}", file=sys.stderr)
        raise
    finally:
        if client is not None:
            client.close()
        release_fleet(directory)


def release_fleet(directory: Path) -> None:
    """Stop a fleet, kill strays, warn about any process left, remove its directory."""
    stop_fleet(directory)
    kill_strays(directory)
    left = fleet_pids(directory)
    if left:
        print(f"WARNING: processes left behind in {directory}: {sorted(left)}", file=sys.stderr)
    shutil.rmtree(directory, ignore_errors=True)


def signed_client(key: AdminKey) -> httpx.Client:
    return httpx.Client(auth=Nip98Auth(key), timeout=httpx.Timeout(10.0))


def management(client: httpx.Client, admin_url: str, method: str) -> Any:
    response = client.post(admin_url + MANAGEMENT_PATH, json={"method": method, "params": {}})
    body = response.json()
    if response.status_code != 200 or not body.get("ok"):
        raise RuntimeError(f"{admin_url} {method}: HTTP {response.status_code} {body}")
    return body["result"]


# -- building a cluster and watching it converge -------------------------------------------------
@dataclass
class BuildTiming:
    """Seconds from the provision-init request to each milestone."""

    init_returned: float = 0.0
    materialize_returned: float = 0.0
    all_active: float = 0.0  # every node lists every row active (seen by the pollers)
    converged: float = 0.0  # ... and every node reports the same membership digest
    per_node: dict[str, float] = field(default_factory=dict)
    polls: int = 0
    # Rows not yet active in the most advanced node's view: paces every poller (a node that has
    # not caught up yet sees far fewer active rows than the cluster really has).
    missing: int = 1_000_000


async def _poll_until_all_active(
    fleet_: Fleet,
    client: httpx.AsyncClient,
    name: str,
    expected: int,
    started: float,
    poll_s: Callable[[int], float],
    timing: BuildTiming,
) -> None:
    """Poll one node's cluster_nodes.list until it lists ``expected`` rows, all active."""
    while True:
        url = fleet_.admin_url(name)
        if url is not None:
            with contextlib.suppress(httpx.HTTPError, ValueError):
                response = await client.post(
                    url + MANAGEMENT_PATH, json={"method": "cluster_nodes.list", "params": {}}
                )
                timing.polls += 1
                body = response.json()
                if response.status_code == 200 and body.get("ok"):
                    rows = body["result"]["nodes"]
                    active = sum(1 for row in rows if row["status"] == "active")
                    timing.missing = min(timing.missing, expected - active)
                    if len(rows) == expected and active == expected:
                        timing.per_node[name] = time.perf_counter() - started
                        return
        await asyncio.sleep(poll_s(min(timing.missing, expected)))


async def _digests(fleet_: Fleet, clients: dict[str, httpx.AsyncClient]) -> set[str]:
    async def one(name: str) -> str:
        url = fleet_.admin_url(name)
        response = await clients[name].post(
            f"{url}{MANAGEMENT_PATH}", json={"method": "cluster_status", "params": {}}
        )
        return str(response.json()["result"]["membership_digest"])

    return set(await asyncio.gather(*(one(name) for name in fleet_.names)))


async def _build(
    fleet_: Fleet, nodes: int, poll_s: Callable[[int], float], timeout_s: float
) -> BuildTiming:
    timing = BuildTiming()
    # One client per node: httpx's pool scans all its connections on every request, which with
    # 50 nodes in one pool made the pollers (not the fleet) the bottleneck. They share one TLS
    # context, which httpx would otherwise build per client (~0.1 s each; every URL is http).
    tls = ssl.create_default_context()
    auth = Nip98Auth(fleet_.key)
    async with contextlib.AsyncExitStack() as stack:
        started = time.perf_counter()
        init = await asyncio.to_thread(fleet_.legion.provision_init, "hetzner")
        timing.init_returned = time.perf_counter() - started
        fleet_.names = [init["name"]]
        for index in range(nodes - 1):
            planned = await asyncio.to_thread(
                fleet_.legion.plan_join, JOIN_PROVIDERS[index % len(JOIN_PROVIDERS)], 1
            )
            fleet_.names.extend(node["name"] for node in planned)
        clients = {
            name: await stack.enter_async_context(
                httpx.AsyncClient(auth=auth, timeout=httpx.Timeout(10.0), verify=tls)
            )
            for name in fleet_.names
        }
        pollers = [
            asyncio.create_task(
                _poll_until_all_active(fleet_, clients[name], name, nodes, started, poll_s, timing)
            )
            for name in fleet_.names
        ]
        try:
            if nodes > 1:
                await asyncio.to_thread(fleet_.legion.materialize)
            timing.materialize_returned = time.perf_counter() - started
            await asyncio.wait_for(asyncio.gather(*pollers), timeout_s)
            timing.all_active = max(timing.per_node.values())
            while len(await _digests(fleet_, clients)) != 1:
                await asyncio.sleep(0.05)
            timing.converged = max(time.perf_counter() - started, timing.all_active)
        finally:
            for poller in pollers:
                poller.cancel()
            await asyncio.gather(*pollers, return_exceptions=True)
    return timing


def build_cluster(
    fleet_: Fleet, nodes: int, *, poll_s: Callable[[int], float], timeout_s: float = 110.0
) -> BuildTiming:
    """Provision init + ``nodes - 1`` joins; time until every node sees every row active.

    ``poll_s(rows_not_yet_active)`` is the pause between two polls of one node (given the most
    advanced node's count), so pollers of a large fleet can back off while far from the goal and
    not steal CPU from what they measure.
    """
    return asyncio.run(_build(fleet_, nodes, poll_s, timeout_s))
