"""The target strategy interface: everything the keywords need from a fleet, in one place.

Two strategies implement it: ``SimTarget`` (the simulator's Legion HTTP API, plugin API over
loopback HTTP) and ``RealTarget`` (a Legion CLI printing JSON, plugin API and faults over SSH).
Suites never know which one runs.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from tribesqa.clients.keys import AdminKey
from tribesqa.clients.ssh_client import SshEndpointInfo, SshOptions, SshSessions
from tribesqa.clients.tls import tls_context
from tribesqa.config import DEFAULT_NODE_COMMANDS, TargetConfig, TimeoutProfile
from tribesqa.contract import GraphRun, LegionSnapshot, NodeRecord, parse_payload


class LegionError(AssertionError):
    """Legion refused or failed an operation; the message names the operation and the reason."""

    def __init__(self, operation: str, code: str, message: str) -> None:
        super().__init__(f"Legion {operation} failed: {code}: {message}")
        self.operation = operation
        self.code = code
        self.reason = message


class LegionDriver(ABC):
    """Legion's operations; results are parsed into the contract models."""

    source = "Legion"

    @abstractmethod
    def _run(self, operation: str, **arguments: Any) -> Any:
        """Perform one operation and return its decoded JSON result, or raise LegionError."""

    def provision_init(self, provider: str) -> NodeRecord:
        return self._record("provision_init", self._run("provision_init", provider=provider))

    def plan_join(self, provider: str, count: int) -> list[NodeRecord]:
        raw = self._run("plan_join", provider=provider, count=count)
        return [self._record("plan_join", item) for item in raw]

    def materialize(self, interrupt_after: int | None = None) -> GraphRun:
        if interrupt_after is None:
            raw = self._run("materialize")
        else:
            raw = self._run("materialize_interrupted", interrupt_after=interrupt_after)
        return parse_payload(GraphRun, raw, source=f"{self.source} / materialize")

    def decommission(self, node: str) -> NodeRecord:
        return self._record("decommission", self._run("decommission", node=node))

    def replace(self, node: str, provider: str) -> NodeRecord:
        return self._record("replace", self._run("replace", node=node, provider=provider))

    def reactivate(self, node: str) -> NodeRecord:
        return self._record("reactivate", self._run("reactivate", node=node))

    def destroy(self, node: str) -> None:
        self._run("destroy", node=node)

    def destroy_all(self) -> None:
        self._run("destroy_all")

    def list_nodes(self) -> list[NodeRecord]:
        return [self._record("list", item) for item in self._run("list")]

    def snapshot(self) -> LegionSnapshot:
        return parse_payload(
            LegionSnapshot, self.raw_snapshot(), source=f"{self.source} / snapshot"
        )

    def raw_snapshot(self) -> Any:
        """The snapshot as Legion printed it (decoded JSON, not parsed): for checks that must
        say which record is wrong before the model would refuse the whole of it."""
        return self._run("snapshot")

    def _record(self, operation: str, raw: Any) -> NodeRecord:
        return parse_payload(NodeRecord, raw, source=f"{self.source} / {operation}")


class Nemesis(ABC):
    """Fault injection; every injection returns a description of its heal for the registry."""

    @abstractmethod
    def partition(self, node: str, peers: list[str]) -> None: ...

    @abstractmethod
    def heal_all(self) -> None: ...

    @abstractmethod
    def crash(self, node: str) -> None: ...

    @abstractmethod
    def restart(self, node: str) -> None: ...

    def recover(self, node: str) -> None:
        """Bring a crashed node back (default: the same as a restart)."""
        self.restart(node)

    @abstractmethod
    def outage(self, node: str, active: bool) -> None: ...


class PluginTransportError(AssertionError):
    """The plugin API could not be reached at all (not a 404: that is an answer)."""


class PluginTransport(ABC):
    """The node-local supertest plugin API."""

    @abstractmethod
    def request(self, node: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """Return (HTTP status, decoded JSON body or text)."""


class Target(ABC):
    """A fleet to test: its Legion, its nodes' management API, plugin API and nemesis."""

    kind: str

    def __init__(self, config: TargetConfig, timeouts: TimeoutProfile, results_dir: Path) -> None:
        self.config = config
        self.timeouts = timeouts
        self.results_dir = results_dir
        # Set by open()/attach() of each strategy.
        self._legion: LegionDriver | None = None
        self._nemesis: Nemesis | None = None

    @property
    def legion(self) -> LegionDriver:
        if self._legion is None:
            raise AssertionError("the target is not open: call 'Open Target' in the suite setup")
        return self._legion

    @property
    def nemesis(self) -> Nemesis:
        if self._nemesis is None:
            raise AssertionError("the target is not open: call 'Open Target' in the suite setup")
        return self._nemesis

    @abstractmethod
    def plugin_transport(
        self, sessions: SshSessions, endpoint_of: Callable[[str], SshEndpointInfo]
    ) -> PluginTransport:
        """The way this target reaches the node-local plugin API."""

    @abstractmethod
    def open(self, label: str) -> None:
        """Prepare the target for one suite (the simulator starts a private fleet here)."""

    @abstractmethod
    def close(self) -> None:
        """Release everything open() started; must be safe to call twice and after failures."""

    @abstractmethod
    def admin_key(self) -> AdminKey: ...

    @abstractmethod
    def ssh_key_file(self) -> Path | None: ...

    def ssh_options(self) -> SshOptions:
        """How to connect to nodes over SSH (``TARGET.ssh``, the key file, its passphrase)."""
        from tribesqa.clients.ssh_connect import options_from_settings
        from tribesqa.config import fill_template

        values = getattr(self, "values", {}) or {}
        return options_from_settings(
            self.config.ssh, self.ssh_key_file(), lambda text: fill_template(text, **values)
        )

    # -- a fleet shared by several robot processes (the per-node gate under pabot) ------------
    @abstractmethod
    def shared_handle(self) -> dict[str, Any]:
        """What another process needs to attach (JSON-shaped, no secrets); from now on this
        process only attaches too: its close() releases its clients, never the fleet."""

    @abstractmethod
    def attach(self, handle: dict[str, Any]) -> None:
        """Use the fleet another process opened and shared (``shared_handle``); start nothing."""

    @abstractmethod
    def take_ownership(self) -> None:
        """The next close() stops the fleet (the last process of a shared fleet calls this)."""

    # -- what the keywords may ask of any target ---------------------------------------------
    def bind(
        self,
        sessions: Callable[[], SshSessions],
        endpoint_of: Callable[[str], SshEndpointInfo],
        node_names: Callable[[], list[str]],
        transport_of: Callable[[str], str],
    ) -> None:
        """Receive the library's SSH sessions and node lookups (the context calls it once the
        target is open or attached). Strategies that need neither ignore it."""
        del sessions, endpoint_of, node_names, transport_of

    @property
    def guards_destructive_acts(self) -> bool:
        """Does a destructive act (provision, decommission, replace, reactivate, destroy, a
        fault, a rollout, rollback or resync, a plugin write) need ``ALLOW_DESTRUCTIVE``? True
        for a fleet that outlives the run (a real one); false for a private throwaway fleet."""
        return True

    @property
    def provisions_missing_roster_nodes(self) -> bool:
        """May ``Ensure Roster Nodes Exist`` create roster nodes Legion lacks? (never on a real
        fleet unless its file says so)."""
        return False

    def node_commands(self) -> dict[str, str]:
        """The shell templates run on a node over SSH (generation links, plugin requests)."""
        return dict(DEFAULT_NODE_COMMANDS)

    def sync_endpoint_problem(self, url: str, timeout_s: float) -> str | None:
        """Does a sync endpoint answer from the runner? None, or what went wrong (a real mesh
        endpoint may refuse a plain GET: any answer below 500 counts as serving)."""
        try:
            response = httpx.get(url, timeout=timeout_s, verify=tls_context())
        except httpx.HTTPError as error:
            return f"GET {url}: {type(error).__name__}: {error}"[:200]
        if response.status_code >= 500:
            return f"GET {url} answered HTTP {response.status_code}"
        return None

    def describe(self) -> dict[str, Any]:
        """What the artifacts may record about the target (no secrets)."""
        return {"name": self.config.name, "kind": self.kind}
