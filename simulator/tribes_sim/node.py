"""One simulated Tribes node: state, sync mesh membership, generations, rollout jobs, nemesis hooks.

The HTTP surfaces live in ``node_http.py``; this module holds the behaviour they expose. A node
lives inside a node host's event loop; everything here runs on that loop (SQLite calls are
short and synchronous, which is what keeps a 50-node fleet cheap).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hashlib
import json
import logging
import random
import secrets
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp

from tribes_sim.config import TIMESTAMP_PRECISIONS, SimConfig
from tribes_sim.generations import GenerationTree, system_store_path
from tribes_sim.hlc import HybridLogicalClock
from tribes_sim.store import LEGION_ORIGIN, NodeStore, SyncEvent
from tribesqa.keys import AdminKey
from tribesqa.nip98 import Nip98Verifier

# Below Linux's default ephemeral range (32768-60999): a node restarting on its saved ports must
# not find one taken by some process's outgoing connection.
PROVIDER_PORTS = {"hetzner": (12000, 17999), "scaleway": (18000, 23999), "ovh": (24000, 29999)}
OTHER_PROVIDER_PORTS = (30000, 32699)
PROVIDER_REGIONS = {"hetzner": "fsn1", "scaleway": "fr-par", "ovh": "gra"}
PLUGIN_CATALOGUE = {"supertest": "0.3.1", "aether": "1.2.0", "sender": "0.9.0"}
NODE_VERSION = "tribes 0.42.0 (simulated)"
BASELINE_COMMIT = "baseline"

log = logging.getLogger("tribes_sim.node")


# How finely nodes and Legion stamp times (an isoformat ``timespec``). Real Tribes nodes may write
# whole seconds; ``SimConfig.timestamp_precision`` lets a run make the simulator do the same.
_TIMESPEC = {"timespec": "milliseconds"}


def set_timestamp_precision(precision: str) -> None:
    """Make every later ``utc_now`` of this process stamp at ``precision``."""
    if precision not in TIMESTAMP_PRECISIONS:
        raise ValueError(f"timestamp_precision must be one of {', '.join(TIMESTAMP_PRECISIONS)}")
    _TIMESPEC["timespec"] = precision


def utc_now() -> str:
    moment = datetime.now(UTC).isoformat(timespec=_TIMESPEC["timespec"])
    return moment.replace("+00:00", "Z")


def backdated(stamp: str, seconds: float) -> str:
    """``stamp`` (a ``utc_now`` text) moved ``seconds`` into the past, same precision."""
    moment = datetime.fromisoformat(stamp.replace("Z", "+00:00")) - timedelta(seconds=seconds)
    return moment.isoformat(timespec=_TIMESPEC["timespec"]).replace("+00:00", "Z")


class NodeRefused(Exception):
    """An operation the node refuses; maps to an HTTP status and a contract error code."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


@dataclass
class NodeSpec:
    """What Legion asks a host to run."""

    name: str
    provider: str
    directory: Path
    allowlist: list[str]
    ssh_authorized_keys: list[str]
    legion_url: str = ""
    scope: str = "full"
    role: str = "join"
    ports: dict[str, int] = field(default_factory=dict)

    @classmethod
    def from_mapping(cls, raw: dict[str, Any]) -> NodeSpec:
        return cls(
            name=raw["name"],
            provider=raw["provider"],
            directory=Path(raw["directory"]),
            allowlist=list(raw["allowlist"]),
            ssh_authorized_keys=list(raw.get("ssh_authorized_keys", [])),
            legion_url=raw.get("legion_url", ""),
            scope=raw.get("scope", "full"),
            role=raw.get("role", "join"),
            ports=dict(raw.get("ports", {})),
        )


@dataclass
class SyncServerState:
    """What this node knows about one of its derived sync servers."""

    node_id: str
    url: str
    connected: bool = False
    caught_up: bool = False
    last_sync_completed_at: str | None = None
    last_eose_at: str | None = None
    failing_reason: str | None = None
    high_water_mark: dict[str, int] = field(default_factory=dict)
    task: asyncio.Task[None] | None = None

    def describe(self) -> dict[str, Any]:
        return {
            "node_id": self.node_id,
            "url": self.url,
            "connected": self.connected,
            "last_sync_completed_at": self.last_sync_completed_at,
            "last_eose_at": self.last_eose_at,
            "failing_reason": self.failing_reason,
        }


def bind_socket(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.listen(128)
    sock.setblocking(False)
    return sock


def bind_in_range(host: str, low: int, high: int, rng: random.Random) -> socket.socket:
    """Bind a free port inside a provider's range (random start so parallel fleets don't clash)."""
    span = high - low + 1
    start = rng.randrange(span)
    for offset in range(span):
        port = low + (start + offset) % span
        with contextlib.suppress(OSError):
            return bind_socket(host, port)
    raise OSError(f"no free port in {low}-{high}")


class SimNode:
    """A simulated node; ``node_http.NodeServers`` exposes it on its four listeners."""

    def __init__(self, spec: NodeSpec, config: SimConfig) -> None:
        self.spec = spec
        self.config = config
        self.name = spec.name
        self.directory = spec.directory
        self.directory.mkdir(parents=True, exist_ok=True)
        identity_path = self.directory / "identity.json"
        first_boot = not identity_path.exists()
        if first_boot:
            key = AdminKey.generate()
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
        self.key = AdminKey.from_hex(identity["secret"])
        self.pubkey = self.key.pubkey_hex
        self.store = NodeStore(
            self.directory / "node.db",
            self.node_id,
            merge_counters=not config.has_fault("counter-not-merged"),
            archive_decommissioned=not config.has_fault("decommission-deletes-row"),
        )
        self.hlc = HybridLogicalClock(self.node_id, self.store.last_hlc())
        self.tree = GenerationTree(self.directory / "root")
        self.verifier = Nip98Verifier(
            spec.allowlist, replay_protection=not config.has_fault("replay-accepted")
        )
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
            self.note(f"resuming {job['kind']} job {job['job_id']} at stage {job['stage']}")
            self.jobs[job["job_id"]] = self.spawn(self._run_job(job["job_id"]))
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
            if (
                self.config.has_fault("one-way-sync")
                and self.spec.role == "init"
                and event.ns == "supertest"
                and event.origin != self.node_id
            ):
                # Fault: the init node drops foreign plugin events, yet advances its vector.
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

    def _delivered_directly(self, origin: str) -> bool:
        """Whether every node gets ``origin``'s events without a relay from us.

        Legion writes to every node itself and an active member serves its own events to all its
        subscribers, so such events don't wake our waiting long-polls: waking them would answer
        every poll once per event (N² answers in an N-node mesh, mostly duplicates). A caller
        that still lacks one gets it at once from its next poll (see ``events_for``).
        """
        if origin == LEGION_ORIGIN:
            return True
        row = self.store.member(origin)
        return row is not None and row["status"] == "active"

    def _without_direct_origins(self, vector: dict[str, int]) -> dict[str, int]:
        """``vector`` as a long-poll that waited answers it: direct origins count as held.

        Events that reached us while the caller waited, from Legion or an active member, reach
        the caller directly too; its vector is as old as its request, so sending them would be
        mostly duplicates. Its next poll asks with a fresh vector and gets at once any it lacks.
        """
        view = {str(k): int(v) for k, v in vector.items()}
        direct = {row["node_id"] for row in self.store.members() if row["status"] == "active"}
        direct.add(LEGION_ORIGIN)
        direct.discard(self.node_id)
        for origin, mine in self.store.version_vector.items():
            if origin in direct and mine > view.get(origin, 0):
                view[origin] = mine
        return view

    # -- membership and the derived sync servers -------------------------------------------------
    def own_row(self) -> dict[str, Any] | None:
        return self.store.member(self.node_id)

    def _peer_addresses(self, keep: Callable[[dict[str, Any]], bool]) -> dict[str, str]:
        """Transport addresses of the other members ``keep`` accepts; none once decommissioned."""
        own = self.own_row()
        if own is None or own["status"] == "decommissioned":
            return {}
        return {
            row["node_id"]: row["transport_address"]
            for row in self.store.members()
            if row["node_id"] != self.node_id and keep(row)
        }

    def derived_servers(self) -> dict[str, str]:
        """Transport addresses of the other active rows."""
        return self._peer_addresses(lambda row: row["status"] == "active")

    def reconcile_servers(self) -> None:
        if self._closed or not self.ready:
            return
        wanted = self.derived_servers()
        for node_id in list(self.servers):
            state = self.servers[node_id]
            if wanted.get(node_id) != state.url:
                if state.task:
                    state.task.cancel()
                del self.servers[node_id]
        for node_id, url in wanted.items():
            if node_id not in self.servers:
                state = SyncServerState(node_id=node_id, url=url)
                self.servers[node_id] = state
                state.task = self.spawn(self._subscribe(state))

    def caught_up(self) -> bool:
        return all(state.caught_up for state in self.servers.values())

    def maybe_activate(self) -> None:
        own = self.own_row()
        if self._closed or not self.ready or own is None or own["status"] != "syncing":
            return
        if self.config.has_fault("stuck-syncing"):
            return
        if not self.caught_up():
            return
        now = utc_now()
        activated_at = now
        if self.config.has_fault("stale-activated-at") and own.get("activated_at"):
            activated_at = own["activated_at"]
        row = {**own, "status": "active", "activated_at": activated_at, "updated_at": now}
        self.note(f"caught up with {len(self.servers)} server(s): marking own row active")
        self.spawn(self.write("control", "member", row))

    async def mark_syncing(self) -> None:
        own = self.own_row()
        if own is None:
            return
        for state in self.servers.values():
            state.caught_up = False
        row = {**own, "status": "syncing", "updated_at": utc_now()}
        await self.write("control", "member", row)

    # -- sync client ----------------------------------------------------------------------------
    async def _subscribe(self, state: SyncServerState) -> None:
        assert self.http is not None
        while not self._closed:
            if state.node_id in self.blocked_peers:
                state.connected = False
                state.failing_reason = "partitioned: traffic dropped"
                await asyncio.sleep(self.config.sync_retry_s)
                continue
            vector = dict(self.store.version_vector)
            # The first poll of a subscription answers at once, so "connected" is known quickly.
            wait_s = self.config.sync_long_poll_s if state.last_sync_completed_at else 0
            params = {"vv": json.dumps(vector), "wait": str(wait_s)}
            try:
                async with self.http.get(
                    f"{state.url}/sync/events",
                    params=params,
                    headers={"X-Tribes-Node": self.node_id},
                ) as response:
                    if response.status != 200:
                        raise aiohttp.ClientResponseError(
                            response.request_info,
                            (),
                            status=response.status,
                            message=await response.text(),
                        )
                    body = await response.json()
            except asyncio.CancelledError:
                raise
            except Exception as error:  # the peer is down, partitioned or refusing us
                state.connected = False
                state.failing_reason = f"{type(error).__name__}: {error}".strip()[:200]
                await asyncio.sleep(self.config.sync_retry_s)
                continue
            if state.node_id in self.blocked_peers:
                continue
            events = [SyncEvent.from_wire(raw) for raw in body.get("events", [])]
            await self.ingest(events, via=state.node_id)
            now = utc_now()
            state.connected = True
            state.failing_reason = None
            state.last_sync_completed_at = now
            state.high_water_mark = {k: int(v) for k, v in body.get("high_water_mark", {}).items()}
            if body.get("eose"):
                state.last_eose_at = now
                mine = self.store.version_vector
                state.caught_up = all(
                    mine.get(origin, 0) >= seq for origin, seq in state.high_water_mark.items()
                )
                self.maybe_activate()

    def publish_targets(self) -> dict[str, str]:
        """Where this node pushes its own events: every other member not decommissioned.

        Syncing members too, not only the derived servers: nobody subscribes to a syncing
        member, so a push is the only way it learns (say) that its peer turned active again
        after both ran a full resync at the same time; without it both wait for the other.
        """
        return self._peer_addresses(
            lambda row: (
                row["status"] != "decommissioned" and row["node_id"] not in self.blocked_peers
            )
        )

    async def _publish(self, events: list[SyncEvent], targets: dict[str, str]) -> None:
        if self.http is None or not targets:
            return
        payload = {"events": [event.to_wire() for event in events]}
        await asyncio.gather(
            *(self._publish_one(peer, url, payload) for peer, url in targets.items()),
            return_exceptions=True,
        )

    async def _publish_one(self, peer: str, url: str, payload: dict[str, Any]) -> None:
        assert self.http is not None
        body = await self._post_events(url, payload)
        # The peer answers with its version vector: if it lacks earlier events of ours (it
        # missed a push and does not pull from us), send it what it is missing once.
        theirs = body.get("version_vector") if isinstance(body, dict) else None
        if not isinstance(theirs, dict) or peer in self.blocked_peers:
            return
        vector = dict(self.store.version_vector)
        vector[self.node_id] = int(theirs.get(self.node_id, 0))
        missing = self.store.events_after(vector, withhold_own_after=self.outage_after_seq)
        if missing:
            await self._post_events(url, {"events": [event.to_wire() for event in missing]})

    async def _post_events(self, url: str, payload: dict[str, Any]) -> Any:
        assert self.http is not None
        async with self.http.post(
            f"{url}/sync/publish", json=payload, headers={"X-Tribes-Node": self.node_id}
        ) as response:
            if response.status != 200:
                await response.read()
                return None
            return await response.json()

    # -- sync server side --------------------------------------------------------------------
    def peer_allowed(self, peer_id: str) -> bool:
        if peer_id in self.blocked_peers:
            return False
        row = self.store.member(peer_id)
        return row is not None and row["status"] != "decommissioned"

    def advertised_high_water_mark(self) -> dict[str, int]:
        return dict(self.store.version_vector)

    async def events_for(self, vector: dict[str, int], wait_s: float) -> dict[str, Any]:
        deadline = asyncio.get_running_loop().time() + wait_s
        asked = vector
        while True:
            events = self.store.events_after(asked, withhold_own_after=self.outage_after_seq)
            if events or self._closed:
                break
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                break
            async with self.changed:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.changed.wait(), remaining)
            asked = self._without_direct_origins(vector)
        more = (
            len(
                self.store.events_after(
                    self._merged(asked, events), limit=1, withhold_own_after=self.outage_after_seq
                )
            )
            > 0
        )
        return {
            "events": [event.to_wire() for event in events],
            "high_water_mark": self.advertised_high_water_mark(),
            "eose": not more,
        }

    @staticmethod
    def _merged(vector: dict[str, int], events: list[SyncEvent]) -> dict[str, int]:
        merged = {k: int(v) for k, v in vector.items()}
        for event in events:
            merged[event.origin] = max(merged.get(event.origin, 0), event.seq)
        return merged

    # -- status payloads ------------------------------------------------------------------------
    def membership_digest(self) -> str:
        rows = [
            {
                k: row[k]
                for k in (
                    "node_id",
                    "status",
                    "transport_address",
                    "scope",
                    "activated_at",
                    "decommissioned_at",
                )
            }
            for row in self.store.members()
        ]
        return hashlib.sha256(json.dumps(rows, sort_keys=True).encode()).hexdigest()

    def cluster_status(self) -> dict[str, Any]:
        rows = self.store.members()
        counts = collections.Counter(row["status"] for row in rows)
        own = self.own_row()
        self_status = own["status"] if own else "syncing"
        servers = list(self.servers.values())
        if self_status == "syncing":
            health = "syncing"
        elif servers and not any(s.connected for s in servers):
            health = "isolated"
        elif any(not s.connected or s.failing_reason for s in servers):
            health = "degraded"
        else:
            health = "healthy"
        return {
            "node_id": self.node_id,
            "status": health,
            "self_status": self_status,
            "active": counts.get("active", 0),
            "syncing": counts.get("syncing", 0),
            "decommissioned": counts.get("decommissioned", 0),
            "membership_digest": self.membership_digest(),
            "control_plane_version": self.store.version_vector.get(LEGION_ORIGIN, 0),
        }

    def sync_status(self) -> dict[str, Any]:
        vector = self.store.version_vector
        known = dict(vector)
        for state in self.servers.values():
            for origin, seq in state.high_water_mark.items():
                known[origin] = max(known.get(origin, 0), seq)
        applied = sum(vector.values())
        high = sum(known.values())
        own = self.own_row()
        if not self.servers and (own is None or own["status"] == "decommissioned"):
            mode = "stopped"
        elif own is not None and own["status"] == "syncing":
            mode = "catching_up"
        else:
            mode = "live"
        return {
            "mode": mode,
            "servers": [state.describe() for state in self.servers.values()],
            "high_water_mark": high,
            "applied_events": applied,
            "pending_events": max(high - applied, 0),
            "version_vector": dict(vector),
        }

    def node_info(self) -> dict[str, Any]:
        return {
            "node_id": self.node_id,
            "pubkey": self.pubkey,
            "provider": self.spec.provider,
            "region": self.region,
            "version": NODE_VERSION,
            "transport_address": self.transport_address,
        }

    def generation_status(self) -> dict[str, Any]:
        selected, running = self.tree.selected(), self.tree.running()
        return {
            "selected": selected,
            "running": running,
            "generations": self.store.generations(),
            "reboot_required": selected != running and not self.restarting,
        }

    def running_plugins(self) -> list[str]:
        running = self.tree.running()
        for generation in self.store.generations():
            if generation["path"] == running:
                return list(generation["plugins"])
        return []

    def plugin_served(self) -> bool:
        # A rollback drops the tables (migrate) before the restart switches the running
        # generation: in between the plugin is gone, not half there (404, never a 500).
        return (
            self.ready
            and not self.restarting
            and "supertest" in self.running_plugins()
            and bool(self.store.plugin_tables_present())
        )

    def plugins_list(self) -> dict[str, Any]:
        running = self.running_plugins()
        migrations = self.store.applied_migrations()
        return {
            "plugins": [
                {
                    "name": name,
                    "version": PLUGIN_CATALOGUE.get(name, "unknown"),
                    "migrations": [m for m in migrations if name in m],
                    "state": "running" if self.plugin_served() else "installed",
                }
                for name in running
            ]
        }

    def diagnostics(self) -> dict[str, Any]:
        selected, running = self.tree.selected(), self.tree.running()
        return {
            "local_control": {"ready": self.ready and not self.restarting},
            "migrations": {
                "log": self.store.migration_log(),
                "applied": self.store.applied_migrations(),
                # The node database's user tables: lets a runner see that a rollback's down
                # migrations really dropped the plugin tables while the plugin API 404s.
                "tables": [
                    row["name"]
                    for row in self.store.db.execute(
                        "SELECT name FROM sqlite_master WHERE type = 'table' "
                        "AND name NOT LIKE 'sqlite_%' ORDER BY name"
                    )
                ],
            },
            "services": {
                "tribes": "restarting"
                if self.restarting
                else ("running" if self.ready else "starting"),
                "tribes-local-control": "running",
                "tribes-sync": "running" if self.servers else "idle",
            },
            "generation_compare": {
                "selected": selected,
                "running": running,
                "equal": selected == running,
            },
            "logs": {"tribes": list(self.logs)[-100:]},
        }

    # -- control plane (Legion-only methods) ------------------------------------------------------
    async def apply_membership(self, params: dict[str, Any]) -> dict[str, Any]:
        rows = params.get("rows")
        seq = params.get("seq")
        hlc = params.get("hlc")
        if not isinstance(rows, list) or not isinstance(seq, int) or not isinstance(hlc, str):
            raise NodeRefused(
                400,
                "invalid-params",
                "control.apply_membership needs rows (list), seq (int), hlc (str)",
            )
        event = SyncEvent(LEGION_ORIGIN, seq, hlc, "control", "members", {"rows": rows})
        applied = await self.ingest([event], via=LEGION_ORIGIN)
        own = self.own_row()
        if own and own["status"] == "syncing":
            for state in self.servers.values():
                state.caught_up = False
        self.maybe_activate()
        return {"applied": applied}

    async def init_tribe(self, params: dict[str, Any]) -> dict[str, Any]:
        try:
            data = {
                "tribe_id": str(params["tribe_id"]),
                "name": str(params["name"]),
                "members": sorted(str(m) for m in params["members"]),
                "version": 1,
            }
        except (KeyError, TypeError) as error:
            raise NodeRefused(
                400, "invalid-params", f"control.init_tribe: missing {error}"
            ) from None
        await self.write("control", "tribe", data)
        tribe = self.store.tribe()
        assert tribe is not None
        return tribe

    async def resync(self) -> dict[str, Any]:
        job_id = f"resync-{secrets.token_hex(6)}"
        self.note(f"full resync {job_id}: replaying the log from zero")
        self.store.rebuild()
        await self.mark_syncing()
        for state in self.servers.values():
            if state.task:
                state.task.cancel()
        self.servers.clear()
        self.reconcile_servers()
        self.maybe_activate()
        self.store.save_job(
            {
                "job_id": job_id,
                "kind": "resync",
                "state": "succeeded",
                "stage": "done",
                "target": {},
                "error": None,
                "log": ["replayed log from zero", "subscriptions restarted"],
                "created_at": utc_now(),
            }
        )
        return {"job_id": job_id}

    # -- rollout and rollback ------------------------------------------------------------------
    def preview(self, params: dict[str, Any]) -> dict[str, Any]:
        plugins = params.get("plugins")
        if not isinstance(plugins, list) or not plugins:
            raise NodeRefused(
                400, "invalid-params", "rollout.preview: params.plugins must be a non-empty list"
            )
        requested: list[dict[str, str]] = []
        for index, item in enumerate(plugins):
            if (
                not isinstance(item, dict)
                or not isinstance(item.get("name"), str)
                or not isinstance(item.get("commit"), str)
            ):
                raise NodeRefused(
                    400,
                    "invalid-params",
                    f"rollout.preview: params.plugins[{index}] needs name and commit strings",
                )
            requested.append({"name": item["name"], "commit": item["commit"]})
        current = set(self.running_plugins())
        added = sorted({item["name"] for item in requested} - current)
        missing = sorted(
            f"tribes-plugin-{name}"
            for name in added
            if name not in PLUGIN_CATALOGUE
            or f"tribes-plugin-{name}" in self.config.missing_substitutes
        )
        plan_id = f"plan-{secrets.token_hex(6)}"
        self.store.save_plan(plan_id, requested, utc_now())
        return {
            "plan_id": plan_id,
            "delta": {
                "plugins_added": added,
                "plugins_removed": [],
                "channel_changed": bool(added),
            },
            "requires_restart": ["tribes"] if added else [],
            "substitutes": {"available": not missing, "missing": missing},
        }

    def _active_job(self) -> str | None:
        for job_id, task in self.jobs.items():
            if not task.done():
                return job_id
        return None

    def start_rollout(self, params: dict[str, Any]) -> dict[str, Any]:
        plan_id = params.get("plan_id")
        if not isinstance(plan_id, str):
            raise NodeRefused(
                400, "invalid-params", "rollout.start: params.plan_id must be a string"
            )
        plan = self.store.plan(plan_id)
        if plan is None:
            raise NodeRefused(
                409, "unknown-plan", f"rollout.start: no plan {plan_id!r} on {self.name}"
            )
        preview = self.preview({"plugins": plan})
        if preview["substitutes"]["missing"]:
            raise NodeRefused(
                409,
                "substitutes-missing",
                "refusing to switch: substitutes missing for "
                + ", ".join(preview["substitutes"]["missing"]),
            )
        running_job = self._active_job()
        if running_job:
            raise NodeRefused(409, "rollout-in-progress", f"job {running_job} is still running")
        plugins = sorted({*self.running_plugins(), *(item["name"] for item in plan)})
        commits = {item["name"]: item["commit"] for item in plan}
        target = {
            "plugins": plugins,
            "commits": commits,
            "path": system_store_path(
                (name, commits.get(name, BASELINE_COMMIT)) for name in plugins
            ),
        }
        return self._new_job("rollout", target)

    def start_rollback(self, params: dict[str, Any]) -> dict[str, Any]:
        wanted = params.get("generation")
        if not isinstance(wanted, int | str) or isinstance(wanted, bool):
            raise NodeRefused(
                400,
                "invalid-params",
                "generation.rollback: params.generation must be a number or a path",
            )
        match = next(
            (
                g
                for g in self.store.generations()
                if wanted in (g["number"], g["path"], str(g["number"]))
            ),
            None,
        )
        if match is None:
            raise NodeRefused(
                409,
                "unknown-generation",
                f"generation.rollback: no generation {wanted!r} on {self.name}",
            )
        running_job = self._active_job()
        if running_job:
            raise NodeRefused(409, "rollout-in-progress", f"job {running_job} is still running")
        target = {"plugins": match["plugins"], "path": match["path"], "number": match["number"]}
        return self._new_job("rollback", target)

    def _new_job(self, kind: str, target: dict[str, Any]) -> dict[str, Any]:
        job_id = f"{kind}-{secrets.token_hex(6)}"
        first = "pull" if kind == "rollout" else "switch"
        job = {
            "job_id": job_id,
            "kind": kind,
            "state": "pending",
            "stage": first,
            "target": target,
            "error": None,
            "log": [f"{utc_now()} {kind} to {target['path']} queued"],
            "created_at": utc_now(),
        }
        self.store.save_job(job)
        self.jobs[job_id] = self.spawn(self._run_job(job_id))
        return {"job_id": job_id}

    def job_status(self, params: dict[str, Any]) -> dict[str, Any]:
        job_id = params.get("job_id")
        if not isinstance(job_id, str):
            raise NodeRefused(
                400, "invalid-params", "rollout.status: params.job_id must be a string"
            )
        job = self.store.job(job_id)
        if job is None:
            raise NodeRefused(
                409, "unknown-job", f"rollout.status: no job {job_id!r} on {self.name}"
            )
        return {
            "job_id": job["job_id"],
            "kind": job["kind"],
            "state": job["state"],
            "stage": job["stage"],
            "selected": self.tree.selected(),
            "running": self.tree.running(),
            "error": job["error"],
            "log": job["log"],
        }

    async def _run_job(self, job_id: str) -> None:
        job = self.store.job(job_id)
        assert job is not None
        stages = (
            ["pull", "build", "switch", "migrate", "restart"]
            if job["kind"] == "rollout"
            else ["switch", "migrate", "restart"]
        )
        job["state"] = "running"
        try:
            for stage in stages[stages.index(job["stage"]) if job["stage"] in stages else 0 :]:
                job["stage"] = stage
                job["log"].append(f"{utc_now()} stage {stage} started")
                self.store.save_job(job)
                await asyncio.sleep(self.config.stage_s.get(stage, 0.05))
                await self._do_stage(job, stage)
                job["log"].append(f"{utc_now()} stage {stage} finished")
                self.store.save_job(job)
            job["stage"] = "done"
            job["state"] = "succeeded"
        except asyncio.CancelledError:
            raise
        except Exception as error:
            job["state"] = "failed"
            job["error"] = {"code": "stage-failed", "message": f"{job['stage']}: {error}"}
            job["log"].append(f"{utc_now()} failed: {error}")
        self.store.save_job(job)
        self.note(f"{job['kind']} job {job_id}: {job['state']}")

    async def _do_stage(self, job: dict[str, Any], stage: str) -> None:
        target = job["target"]
        path = target["path"]
        now = utc_now()
        if stage == "build":
            self.tree.create_system(path, target["plugins"])
        elif stage == "switch":
            if job["kind"] == "rollout":
                existing = next((g for g in self.store.generations() if g["path"] == path), None)
                number = (
                    existing["number"]
                    if existing
                    else max((g["number"] for g in self.store.generations()), default=0) + 1
                )
                self.tree.link_generation(number, path)
                self.store.add_generation(number, path, target["plugins"], now)
            else:
                number = target["number"]
            self.tree.select(number)
        elif stage == "migrate":
            has_tables = bool(self.store.plugin_tables_present())
            if "supertest" in target["plugins"] and not has_tables:
                applied = self.store.migrate_plugin_up(now)
                replayed = self.store.replay_plugin_events()
                job["log"].append(
                    f"{now} up migrations {applied}; replayed {replayed} plugin events"
                )
            elif "supertest" not in target["plugins"] and has_tables:
                if self.config.has_fault("rollback-keeps-tables"):
                    job["log"].append(f"{now} down migrations skipped")
                else:
                    reverted = self.store.migrate_plugin_down(now)
                    job["log"].append(f"{now} down migrations {reverted}")
        elif stage == "restart":
            self.restarting = True
            self.note("restarting services")
            try:
                await asyncio.sleep(self.config.restart_s)
                if not self.config.has_fault("selected-not-running"):
                    self.tree.run_system(self.tree.selected())
            finally:
                self.restarting = False

    # -- nemesis ---------------------------------------------------------------------------------
    def partition(self, peers: list[str]) -> None:
        if self.partitioned_since_seq is None:
            self.partitioned_since_seq = self.store.version_vector.get(self.node_id, 0)
        self.blocked_peers.update(peers)
        for state in self.servers.values():
            if state.node_id in self.blocked_peers:
                state.connected = False
                state.failing_reason = "partitioned: traffic dropped"
        self.note(f"partitioned from {sorted(peers)}")

    async def heal(self) -> None:
        was = self.partitioned_since_seq
        self.blocked_peers.clear()
        self.partitioned_since_seq = None
        if was is not None and self.config.has_fault("heal-loses-writes"):
            lost = self.store.blank_own_events_after(was)
            self.store.rebuild()
            self.note(f"heal dropped {lost} local writes")
        self.note("healed")
        await self._changed()

    async def set_outage(self, active: bool) -> None:
        if active and self.outage_after_seq is None:
            self.outage_after_seq = self.store.version_vector.get(self.node_id, 0)
            self.note("publish outage started")
        elif not active and self.outage_after_seq is not None:
            after = self.outage_after_seq
            self.outage_after_seq = None
            backlog = [
                e
                for e in self.store.events_after({self.node_id: after})
                if e.origin == self.node_id
            ]
            self.note(f"publish outage ended; publishing {len(backlog)} held event(s)")
            if backlog:
                self.spawn(self._publish(backlog, self.publish_targets()))
            await self._changed()

    def set_clock_skew(self, seconds: float) -> None:
        self.hlc.skew_s = seconds
