"""The context every keyword component shares: target, clients, SSH sessions, heals, artifacts."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tribesqa.clients.keys import AdminKey
from tribesqa.clients.management_client import ManagementClient
from tribesqa.clients.ssh_client import SshEndpointInfo, SshSessions
from tribesqa.config import (
    TargetConfig,
    TimeoutProfile,
    load_timeouts,
    parse_roster,
    parse_target,
    timeouts_table_path,
)
from tribesqa.contract import LegionNodeStatus, NodeRecord
from tribesqa.guard import allow_destructive_value, refusal
from tribesqa.history.recorder import HistoryRecorder
from tribesqa.history.wrappers import RecordingLegion, RecordingNemesis, record_plugin_request
from tribesqa.targets import Target, create_target
from tribesqa.targets.base import PluginTransport
from tribesqa.timing import TimeoutTable, WaitTiming


@dataclass
class RegisteredHeal:
    """A fault's undo, registered when the fault is injected, run at teardown at the latest."""

    description: str
    heal: Callable[[], None]
    test: str | None = None


PABOT_RESULTS = "pabot_results"


@dataclass
class RunLabels:
    """Names for artifact paths. Under pabot, ``output_dir`` is the run's output directory (where
    the merged log.html is), not the process's ``pabot_results/...`` one, so artifact links work
    from the merged log; a process started from a pabot argument file (``--argumentfileN``, e.g.
    one per gate node) gets ``@N`` after its suite name, so same-named suites never share a path.
    """

    _suite: str = "suite"
    test: str | None = None
    _output_dir: Path = field(default_factory=lambda: Path("results"))
    argfile: str = ""

    @property
    def suite(self) -> str:
        return f"{self._suite}@{self.argfile}" if self.argfile else self._suite

    @suite.setter
    def suite(self, value: str) -> None:
        self._suite = value

    @property
    def output_dir(self) -> Path:
        return self._output_dir

    @output_dir.setter
    def output_dir(self, value: Path) -> None:
        parts = Path(value).parts
        if PABOT_RESULTS in parts[:-1]:
            at = len(parts) - 1 - parts[::-1].index(PABOT_RESULTS)
            inner = parts[at + 1 :]
            self._output_dir = Path(*parts[:at])
            self.argfile = inner[0] if len(inner) == 2 else ""
        else:
            self._output_dir = Path(value)
            self.argfile = ""


class _NodeNotingTransport(PluginTransport):
    """The plugin transport, noting every node it reaches (``LibraryContext.touched``) and
    recording each request in the run history."""

    def __init__(
        self, inner: PluginTransport, note: Callable[[str], None], history: HistoryRecorder
    ) -> None:
        self.inner = inner
        self.note = note
        self.history = history

    def request(self, node: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        self.note(node)
        send = lambda: self.inner.request(node, method, path, body)  # noqa: E731
        return record_plugin_request(self.history, node, method, path, body, send)


class LibraryContext:
    """One per library instance (global scope); one open target at a time."""

    def __init__(self) -> None:
        self.target: Target | None = None
        self.config: TargetConfig | None = None
        self.timeouts: TimeoutProfile | None = None
        self.timeouts_table: TimeoutTable | None = None
        self.labels = RunLabels()
        self.clients: dict[str, ManagementClient] = {}
        self.records: dict[str, NodeRecord] = {}
        self.provisioned: list[str] = []
        self.heals: list[RegisteredHeal] = []
        self.roster: list[Any] = []
        self._ssh: SshSessions | None = None
        self._plugins: PluginTransport | None = None
        self._key: AdminKey | None = None
        self._scrubber: Any = None
        self._lock = threading.Lock()
        # Nodes addressed since the current test started: every node whose record a keyword looks
        # up to reach it (management API, polls, SSH, sync address) or whose plugin API it calls.
        # The target component tags the test node:<name> for each (the fleet matrix reads them).
        self.touched: set[str] = set()
        # Legion's node name -> membership node_id (they differ on a real fleet; learned from
        # Legion's clusterMembership). Cleared with the target: another fleet, other ids.
        self.node_ids: dict[str, str] = {}
        # The handle id when the target is a shared one this process attached to.
        self.shared_id: str | None = None
        # Installed by ArtifactKeywords: capture the failure snapshot now and return its links
        # (label -> path relative to OUTPUT DIR); failing waits call it to link it from their report.
        self.capture_failure: Callable[[], dict[str, str]] | None = None
        # The run history (issue 14): every read and operation of the current suite.
        self.history = HistoryRecorder()

    # -- target lifecycle ----------------------------------------------------------------------
    def open_target(self, raw_target: Any, raw_roster: Any, label: str) -> Target:
        target = self._new_target(raw_target, raw_roster)
        try:
            target.open(label)
        except BaseException:
            # open() may have started processes (Legion, a setup command) before it failed.
            with contextlib.suppress(Exception):
                target.close()
            raise
        return self._install(target)

    def attach_target(
        self, raw_target: Any, raw_roster: Any, handle: dict[str, Any], shared_id: str
    ) -> Target:
        """Use a fleet another process opened (``handle`` from its ``shared_handle()``); closing
        it here releases only this process's clients, never the fleet."""
        target = self._new_target(raw_target, raw_roster)
        target.attach(handle)
        self._install(target)
        self.shared_id = shared_id
        return target

    def _new_target(self, raw_target: Any, raw_roster: Any) -> Target:
        if self.target is not None:
            self.close_target()
        config = parse_target(raw_target)
        table_path = timeouts_table_path()
        timeouts = load_timeouts(config.timeouts_profile, table_path)
        target = create_target(config, timeouts, self.labels.output_dir)
        self.config, self.timeouts = config, timeouts
        self.timeouts_table = TimeoutTable(timeouts, config.timeouts_profile, table_path)
        self.roster = parse_roster(raw_roster) if raw_roster else []
        return target

    def _install(self, target: Target) -> Target:
        self.target = target
        target.bind(self.ssh, self.ssh_endpoint, self.member_names, self.transport_host_port)
        if self.history.enabled:
            # Additive taps: Legion's operations and node lists, the nemesis' faults and heals.
            target._legion = RecordingLegion(target.legion, self.history)  # type: ignore[assignment]
            target._nemesis = RecordingNemesis(target.nemesis, self.history)  # type: ignore[assignment]
            self._scrubber = None  # this target's keys
            self.history.scrub = self._scrub_for_history
        return target

    def _scrub_for_history(self, record: Any) -> Any:
        """The artifacts' redaction (``reporting/snapshot.py``), keys read once per target."""
        from tribesqa.reporting.snapshot import SecretScrubber  # snapshot imports the clients

        if self._scrubber is None:
            if self.target is None:  # closed before any record was written: the generic scan
                return SecretScrubber().scrub(record)[0]
            self._scrubber = SecretScrubber.for_keys(self.admin_key(), self.target.ssh_key_file())
        return self._scrubber.scrub(record)[0]

    def close_target(self) -> list[str]:
        """Heal, close sessions and the target; return the problems met (never raises)."""
        problems = self.run_heals()
        for client in self.clients.values():
            client.close()
        self.clients.clear()
        if self._ssh is not None:
            self._ssh.close()
            self._ssh = None
        closer = getattr(self._plugins, "close", None)
        if closer is not None:
            with contextlib.suppress(Exception):
                closer()
        self._plugins = None
        if self.target is not None:
            try:
                self.target.close()
            except Exception as error:  # teardown reports, it never hides the test's own failure
                problems.append(f"closing target: {error}")
        self.target = None
        self.shared_id = None
        self._key = None
        self.records.clear()
        self.provisioned.clear()
        self.node_ids.clear()
        return problems

    def node_id(self, name: str) -> str:
        """The membership ``node_id`` of the machine Legion calls ``name`` (the name itself
        until Legion says otherwise: the simulator uses names as ids)."""
        return self.node_ids.get(str(name), str(name))

    def learn_node_ids(self, pairs: dict[str, str]) -> None:
        """Record Legion's node name -> membership node_id mapping."""
        fresh = {str(k): str(v) for k, v in pairs.items()}
        if any(self.node_ids.get(k) != v for k, v in fresh.items()):
            self.history.info(None, "node_ids", fresh)
        self.node_ids.update(fresh)

    def require_target(self) -> Target:
        if self.target is None:
            raise AssertionError("no target is open: the suite setup must call 'Open Target'")
        return self.target

    def require_destructive_allowed(self, keyword: str, act: str) -> None:
        """The production guard, the one place that decides: on a target that guards its
        destructive acts (a real fleet), ``act`` is refused unless ``${ALLOW_DESTRUCTIVE}`` is
        true (Robot's truth rules); the failure names ``keyword`` and the variable. With no
        target open there is no fleet to protect: the act fails on its own ("no target is open")."""
        target = self.target
        if target is None or not target.guards_destructive_acts:
            return
        allowed, shown = allow_destructive_value()
        if not allowed:
            raise refusal(keyword, act, target.config.name, shown)

    def require_timeouts(self) -> TimeoutProfile:
        self.require_target()
        assert self.timeouts is not None
        return self.timeouts

    def wait_timing(
        self,
        entry: str,
        timeout: Any = None,
        poll: Any = None,
        *,
        keyword: str,
        timeout_arg: str = "timeout",
    ) -> WaitTiming:
        """A wait's timeout and poll: the table's ``entry``, overridden by the call's values."""
        self.require_target()
        if self.timeouts_table is None:
            raise RuntimeError(
                f"{keyword}: no timeouts table is loaded for the open target (Open Target loads it)"
            )
        return self.timeouts_table.timing(
            entry, timeout, poll, keyword=keyword, timeout_arg=timeout_arg
        )

    # -- nodes -----------------------------------------------------------------------------------
    def refresh_records(self) -> dict[str, NodeRecord]:
        records = self.require_target().legion.list_nodes()
        with self._lock:
            self.records = {record.name: record for record in records}
        return self.records

    def record(self, name: str) -> NodeRecord:
        self.note_node(name)
        record = self.records.get(name)
        if record is None or record.admin_url is None:
            record = self.refresh_records().get(name)
        if record is None:
            known = ", ".join(sorted(self.records)) or "none"
            raise AssertionError(f"node {name} is not known to Legion (known nodes: {known})")
        return record

    def remember(self, record: NodeRecord) -> None:
        with self._lock:
            self.records[record.name] = record

    def provisioned_node(self, record: NodeRecord) -> NodeRecord:
        """A node this suite created: remembered, tagged on the test, destroyed in teardown."""
        self.remember(record)
        self.note_node(record.name)  # a Legion-only step still belongs to its node's row
        if record.name not in self.provisioned:
            self.provisioned.append(record.name)
        return record

    def member_names(self) -> list[str]:
        """Nodes that run (ready or decommissioned-but-running), as Legion lists them."""
        return [
            n
            for n, r in self.refresh_records().items()
            if r.admin_url and r.status in (LegionNodeStatus.READY, LegionNodeStatus.DECOMMISSIONED)
        ]

    def active_names(self) -> list[str]:
        return [n for n, r in self.refresh_records().items() if r.status is LegionNodeStatus.READY]

    def transport_host_port(self, name: str) -> str:
        record = self.record(name)
        return (record.transport_address or "").split("://", 1)[-1]

    def admin_key(self) -> AdminKey:
        if self._key is None:
            self._key = self.require_target().admin_key()
        return self._key

    def note_node(self, name: str) -> None:
        with self._lock:
            self.touched.add(name)

    def take_touched(self) -> list[str]:
        """The nodes noted since the last call (or the test's start), sorted; forgets them."""
        with self._lock:
            names = sorted(self.touched)
            self.touched.clear()
        return names

    def client(self, name: str) -> ManagementClient:
        record = self.record(name)
        client = self.clients.get(name)
        if client is not None and client.admin_url == (record.admin_url or "").rstrip("/"):
            return client
        if record.admin_url is None:
            raise AssertionError(
                f"node {name} has no admin URL yet (Legion status {record.status.value})"
            )
        client = self.new_client(name, record.admin_url, patient=True)
        self.clients[name] = client
        return client

    def new_client(
        self,
        name: str,
        admin_url: str,
        *,
        patient: bool,
        timeout_s: float | None = None,
        key: AdminKey | None = None,
    ) -> ManagementClient:
        """The one place management clients are made: signed with the admin key, timed by the
        table. ``patient``: a 503 (booting, restarting) is retried up to ``node_ready``; polls
        and snapshots are not patient (a booting node is "not yet", at once)."""
        timeouts = self.require_timeouts()
        return ManagementClient(
            name,
            admin_url,
            key if key is not None else self.admin_key(),
            timeout_s=timeouts.management_call if timeout_s is None else timeout_s,
            ready_timeout_s=timeouts.node_ready if patient else 0.0,
            retry_interval_s=timeouts.poll_interval,
            recorder=self.history if self.history.enabled else None,
        )

    # -- SSH and plugin API -------------------------------------------------------------------------
    def ssh(self) -> SshSessions:
        if self._ssh is None:
            timeouts = self.require_timeouts()
            assert self.config is not None
            target = self.require_target()
            self._ssh = SshSessions(
                target.ssh_key_file(), timeouts.ssh_command, options=target.ssh_options()
            )
        return self._ssh

    def ssh_endpoint(self, name: str) -> SshEndpointInfo:
        record = self.record(name)
        assert self.config is not None
        if record.ssh is None:
            raise AssertionError(f"node {name}: Legion reports no SSH endpoint")
        return SshEndpointInfo(
            host=record.ssh.host,
            port=self.config.ssh.port or record.ssh.port,
            user=self.config.ssh.user or record.ssh.user,
            host_key_fingerprint=record.host_key_fingerprint,
        )

    def plugins(self) -> PluginTransport:
        if self._plugins is None:
            self._plugins = _NodeNotingTransport(
                self.require_target().plugin_transport(self.ssh(), self.ssh_endpoint),
                self.note_node,
                self.history,
            )
        return self._plugins

    # -- heals ---------------------------------------------------------------------------------------
    def register_heal(self, description: str, heal: Callable[[], None]) -> None:
        self.heals.append(RegisteredHeal(description, heal, self.labels.test))

    def run_heals(self, *, test_only: bool = False) -> list[str]:
        """Run registered heals newest first; report failures instead of raising.

        ``test_only`` (the listener's end of a test) runs only the heals registered while a
        test ran; heals registered in a suite setup wait for the suite's end.
        """
        problems = []
        while True:
            index = next(
                (
                    i
                    for i in range(len(self.heals) - 1, -1, -1)
                    if not test_only or self.heals[i].test is not None
                ),
                None,
            )
            if index is None:
                return problems
            entry = self.heals.pop(index)
            try:
                entry.heal()
            except Exception as error:
                problems.append(f"heal '{entry.description}' failed: {error}")
