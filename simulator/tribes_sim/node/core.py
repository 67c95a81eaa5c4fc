"""One simulated Tribes node: identity, lifecycle, local writes and applying replicated events.

The behaviour is split by concern into the mixins ``SimNode`` combines (membership, the sync
mesh client and server, rollouts, status views, nemesis hooks); ``node.servers.NodeServers``
exposes it on its listeners. A node lives inside a node host's event loop and everything here runs
on that loop (SQLite calls are short and synchronous, which keeps a 50-node fleet cheap).
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
from pathlib import Path
from typing import Any

import aiohttp

from tribes_sim.generations import GenerationTree, system_store_path
from tribes_sim.hlc import HybridLogicalClock
from tribes_sim.http_auth import SKIPPABLE_CHECKS, HttpAuthVerifier
from tribes_sim.node.fault_hooks import FaultHooksMixin
from tribes_sim.node.membership import NodeMembershipMixin
from tribes_sim.node.nemesis import NodeNemesisMixin
from tribes_sim.node.rollout import RolloutMixin
from tribes_sim.node.spec import (
    PROVIDER_REGIONS,
    NodeSpec,
)
from tribes_sim.node.sync_client import SyncClientMixin, SyncServerState
from tribes_sim.node.sync_server import SyncServerMixin
from tribes_sim.node.timestamps import utc_now
from tribes_sim.node.views import StatusViewsMixin
from tribes_sim.schnorr_keys import SchnorrKey
from tribes_sim.seeded import IdSource
from tribes_sim.settings import SimConfig
from tribes_sim.store import NodeStore, SyncEvent

log = logging.getLogger("tribes_sim.node")


def _boots(directory: Path) -> int:
    """How many starts ``NodeServers`` counted for this node (``0`` when none did: tests)."""
    try:
        return int((directory / "boots").read_text().strip() or 0)
    except (OSError, ValueError):
        return 0


class SimNode(
    NodeMembershipMixin,
    SyncClientMixin,
    SyncServerMixin,
    RolloutMixin,
    StatusViewsMixin,
    NodeNemesisMixin,
    FaultHooksMixin,
):
    """A simulated node; ``node.servers.NodeServers`` exposes it on its four listeners."""

    def __init__(self, spec: NodeSpec, config: SimConfig) -> None:
        self.spec = spec
        self.config = config
        self.name = spec.name
        self.directory = spec.directory
        self.directory.mkdir(parents=True, exist_ok=True)
        identity_path = self.directory / "identity.json"
        first_boot = not identity_path.exists()
        if first_boot:
            key = SchnorrKey.generate()
            identity = {
                "node_id": spec.name,
                "provider": spec.provider,
                "region": PROVIDER_REGIONS.get(spec.provider, "unknown"),
                "secret": key.secret_hex(),
            }
            identity_path.write_text(json.dumps(identity))
            identity_path.chmod(0o600)
        identity = json.loads(identity_path.read_text())
        self.node_id: str = identity["node_id"]
        self.region: str = identity["region"]
        # Seeded ids (plans, jobs, cases, events); the epoch is this start's number (ports.py
        # counted it in ``boots``), so a restarted node never repeats an id.
        self.ids = IdSource(config.seed, self.node_id, _boots(self.directory))
        self.key = SchnorrKey.from_hex(identity["secret"])
        self.pubkey = self.key.public_hex
        self.store = NodeStore(
            self.directory / "node.db",
            self.node_id,
            merge_counters=not config.has_fault("counter-not-merged"),
            archive_decommissioned=not config.has_fault("decommission-deletes-row"),
            keep_own_archived_row=not config.has_fault("decommissioned-forgets-own-row"),
            project_member=self.member_projection(),
        )
        self.hlc = HybridLogicalClock(self.node_id, self.store.last_hlc())
        self.tree = GenerationTree(self.directory / "root")
        self.verifier = HttpAuthVerifier(
            spec.allowlist,
            skip=[check for fault, check in SKIPPABLE_CHECKS.items() if config.has_fault(fault)],
            cache_before_checks=config.has_fault("refused-event-cached"),
            allowlist_first=config.has_fault("allowlist-checked-first"),
        )
        # The signer of the management call being answered (the admin API sets it).
        self.caller: str | None = None
        self.ready = False
        self.restarting = False
        self.changed = asyncio.Condition()
        self.servers: dict[str, SyncServerState] = {}
        self.blocked_peers: set[str] = set()
        self.partitioned_since_seq: int | None = None
        self.outage_after_seq: int | None = None
        self.logs: collections.deque[str] = collections.deque(maxlen=300)
        self.jobs: dict[str, asyncio.Task[None]] = {}
        self.http: aiohttp.ClientSession | None = None
        self.transport_address = ""
        self.sync_started_at: str | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False
        if first_boot or not self.store.generations():
            self._create_baseline()

    # -- lifecycle ----------------------------------------------------------------------------
    def _create_baseline(self) -> None:
        path = system_store_path([])
        now = utc_now()
        self.tree.create_system(path, [])
        self.tree.link_generation(1, path)
        self.tree.select(1)
        self.tree.run_system(path)
        self.store.add_generation(1, path, [], now)
        self.note(f"first boot: baseline generation 1 {path}")

    async def start(self) -> None:
        self.http = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self.config.sync_long_poll_s + 5),
            connector=aiohttp.TCPConnector(limit=0, force_close=False),
        )
        self.sync_started_at = utc_now()
        self.spawn(self._boot())

    async def _boot(self) -> None:
        await asyncio.sleep(self.config.boot_s)
        self.ready = True
        self.note("ready")
        self.reconcile_servers()
        for job in self.store.unfinished_jobs():
            if job["kind"] == "rollback" and self.config.has_fault("rollback-not-resumed"):
                # Fault: a rollback the restart interrupted is dropped, not resumed.
                job["state"] = "failed"
                job["error"] = {
                    "code": "interrupted",
                    "message": f"{job['stage']}: interrupted by a restart, not resumed",
                }
                self.store.save_job(job)
                continue
            self.note(f"resuming {job['kind']} job {job['job_id']} at stage {job['stage']}")
            self.jobs[job["job_id"]] = self.spawn(self._run_job(job["job_id"]))
        if self.config.has_fault("rollback-replays-plan") and not self.jobs:
            self.replay_plan_after_rollback()
        self.maybe_activate()

    async def begin_close(self) -> None:
        """Stop serving: wake pending long polls so the listeners can shut down at once."""
        self._closed = True
        self.ready = False
        await self._changed()

    async def close(self) -> None:
        """Stop every task and close the database (graceful stop or crash: no extra flush)."""
        self._closed = True
        self.ready = False
        for state in self.servers.values():
            if state.task:
                state.task.cancel()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.http:
            await self.http.close()
        self.store.close()

    def spawn(self, coroutine: Any) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def note(self, line: str) -> None:
        stamped = f"{utc_now()} {self.name}: {line}"
        self.logs.append(stamped)
        log.info(stamped)

    # -- writes -------------------------------------------------------------------------------
    async def write(self, ns: str, kind: str, data: dict[str, Any]) -> SyncEvent:
        event = SyncEvent(
            origin=self.node_id,
            seq=self.store.next_own_seq(),
            hlc=self.hlc.tick(),
            ns=ns,
            kind=kind,
            data=data,
        )
        self.store.append(event)
        await self._changed()
        if self.outage_after_seq is None:
            # Targets are fixed now: a control write may change them before the task runs.
            self.spawn(self._publish([event], self.publish_targets()))
        if ns == "control":
            self.reconcile_servers()
        return event

    async def _changed(self) -> None:
        async with self.changed:
            self.changed.notify_all()

    async def ingest(self, events: list[SyncEvent], *, via: str) -> int:
        """Apply events received from a peer or from Legion; return how many were new."""
        applied = 0
        control = False
        origins: set[str] = set()
        for event in events:
            if self.drops_replicated(event):
                # Fault (see fault_hooks): the event is skipped, yet the vector advances.
                self.store.version_vector[event.origin] = max(
                    self.store.version_vector.get(event.origin, 0), event.seq
                )
                continue
            self.hlc.observe(event.hlc)
            if self.store.append(event):
                applied += 1
                control = control or event.ns == "control"
                origins.add(event.origin)
        if applied and not all(self._delivered_directly(origin) for origin in origins):
            await self._changed()
        if control:
            self.reconcile_servers()
            self.maybe_activate()
        return applied
