"""Test helpers for the simulator suite: drive a simulated fleet through its real interfaces only.

Legion over its HTTP API (``LegionClient``), nodes over the NIP-98-protected management API, the
supertest plugin API on the node's loopback port and SSH (paramiko, host key pinned to Legion's
fingerprint). Every management result is validated against the contract models.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import paramiko

from tribes_sim.fleet import LegionClient, start_fleet, stop_fleet
from tribesqa.clients.keys import AdminKey
from tribesqa.clients.nip98 import Nip98Auth
from tribesqa.contract import ManagementResponse, parse_method_result, parse_payload

T = TypeVar("T")

SUPERTEST = {"name": "supertest", "commit": "abc1234"}
# Rollout stages and restarts in a few milliseconds, for fleets that only need the plugin.
FAST_ROLLOUT: dict[str, Any] = {
    "stage_s": dict.fromkeys(("pull", "build", "switch", "migrate", "restart"), 0.01),
    "restart_s": 0.02,
}


def eventually(
    check: Callable[[], T],
    timeout: float = 10.0,
    interval: float = 0.02,
    retry_on: tuple[type[BaseException], ...] = (AssertionError,),
) -> T:
    """Call ``check`` until it returns without raising (one of ``retry_on``); return its value.

    On timeout the last failure is raised again, so the test reports what was still wrong.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            return check()
        except retry_on:
            if time.monotonic() >= deadline:
                raise
        time.sleep(interval)


def consistently(
    check: Callable[[], object], duration: float, interval: float = 0.05, min_checks: int = 1
) -> int:
    """Call ``check`` repeatedly for ``duration`` seconds; any failure fails at once.

    Keeps going past ``duration`` until it held ``min_checks`` times (a slow machine stretches
    the time, never thins the evidence). Returns how many times it held.
    """
    deadline = time.monotonic() + duration
    count = 0
    while True:
        check()
        count += 1
        if time.monotonic() >= deadline and count >= min_checks:
            return count
        time.sleep(interval)


class Watcher:
    """Polls ``probe`` in a thread until stopped, keeping every distinct answer in order."""

    def __init__(self, probe: Callable[[], Any]) -> None:
        self.probe = probe
        self.seen: list[Any] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        try:
            value = self.probe()
        except httpx.TransportError as error:
            value = type(error).__name__
        if not self.seen or self.seen[-1] != value:
            self.seen.append(value)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(0.005)
        # On a loaded machine the thread may not have run since the state last changed, so the
        # last answer is always one taken after the block under watch finished.
        self._sample()

    def __enter__(self) -> Watcher:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(10)


def fleet_processes(directory: Path) -> list[tuple[int, str]]:
    """Simulator processes (Legion, node hosts) whose command line names ``directory``."""
    marker = str(directory.resolve())
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            if "tribes_sim." in cmdline and marker in cmdline:
                found.append((int(proc.name), cmdline.strip()))
    return found


def openssh_fingerprint(key: paramiko.PKey) -> str:
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


class SimFleet:
    """One running fleet and the clients that reach it."""

    def __init__(self, directory: Path, descriptor: dict[str, Any]) -> None:
        self.directory = directory
        self.descriptor = descriptor
        self.legion = LegionClient(descriptor["legion_url"])
        self.admin_key = AdminKey.from_file(descriptor["admin_key_file"])
        self.http = httpx.Client(auth=Nip98Auth(self.admin_key), timeout=30.0)
        self.plain = httpx.Client(timeout=10.0)
        self._records: dict[str, dict[str, Any]] = {}

    # -- Legion ------------------------------------------------------------------------------
    def records(self) -> dict[str, dict[str, Any]]:
        self._records = {record["name"]: record for record in self.legion.list_nodes()}
        return self._records

    def node(self, name: str) -> dict[str, Any]:
        if name not in self._records:
            self.records()
        return self._records[name]

    def ready_names(self) -> list[str]:
        return [name for name, rec in self.records().items() if rec["status"] == "ready"]

    # -- management API ----------------------------------------------------------------------
    def management_url(self, name: str) -> str:
        return f"{self.node(name)['admin_url']}/api/admin/management"

    def post_management(self, name: str, method: str, params: Any = None) -> httpx.Response:
        body = {"method": method, "params": {} if params is None else params}
        return self.http.post(self.management_url(name), json=body)

    def call(
        self, name: str, method: str, params: dict[str, Any] | None = None, timeout: float = 15.0
    ) -> dict[str, Any]:
        """Call a method (retrying 503 not-ready only) and return its contract-checked result."""
        deadline = time.monotonic() + timeout
        while True:
            response = self.post_management(name, method, params)
            if response.status_code != 503 or time.monotonic() >= deadline:
                break
            time.sleep(0.02)
        assert response.status_code == 200, (
            f"{name} {method}: HTTP {response.status_code} {response.text[:300]}"
        )
        envelope = response.json()
        parse_payload(ManagementResponse, envelope, source=f"node {name} / {method} envelope")
        assert envelope["ok"] is True, envelope
        parse_method_result(method, envelope["result"], source=f"node {name}")
        return envelope["result"]

    def refused(
        self, name: str, method: str, params: dict[str, Any] | None, status: int, code: str
    ) -> dict[str, Any]:
        """Assert that a call is refused with ``status`` and contract error ``code``."""
        response = self.post_management(name, method, params)
        assert response.status_code == status, (
            f"{name} {method}: expected {status} {code}, got {response.status_code} {response.text}"
        )
        body = response.json()
        parse_payload(ManagementResponse, body, source=f"node {name} / {method} refusal")
        assert body["ok"] is False and body["error"] == code, body
        return body

    def healthz(self, name: str) -> int:
        return self.plain.get(f"{self.node(name)['admin_url']}/healthz").status_code

    # -- rollouts -----------------------------------------------------------------------------
    def wait_job(self, name: str, job_id: str, timeout: float = 20.0) -> dict[str, Any]:
        def finished() -> dict[str, Any]:
            job = self.call(name, "rollout.status", {"job_id": job_id})
            assert job["state"] in ("succeeded", "failed"), job["state"]
            return job

        return eventually(finished, timeout=timeout, interval=0.03)

    def start_rollout(self, name: str, plugins: Iterable[dict[str, str]] = (SUPERTEST,)) -> str:
        preview = self.call(name, "rollout.preview", {"plugins": list(plugins)})
        assert preview["substitutes"]["available"], preview
        return self.call(name, "rollout.start", {"plan_id": preview["plan_id"]})["job_id"]

    def install_supertest(self, names: Iterable[str]) -> None:
        jobs = {name: self.start_rollout(name) for name in names}
        for name, job_id in jobs.items():
            job = self.wait_job(name, job_id)
            assert job["state"] == "succeeded", job
            eventually(lambda name=name: self._assert_plugin_up(name))

    def _assert_plugin_up(self, name: str) -> None:
        response = self.plugin_get(name, "/health")
        assert response.status_code == 200, response.text

    # -- supertest plugin API -----------------------------------------------------------------
    def plugin_port(self, name: str) -> int:
        ports = json.loads((self.directory / "nodes" / name / "ports.json").read_text())
        return int(ports["plugin"])

    def plugin_url(self, name: str, path: str) -> str:
        return f"http://127.0.0.1:{self.plugin_port(name)}/plugins-api/supertest{path}"

    def plugin_get(self, name: str, path: str, **params: str) -> httpx.Response:
        return self.plain.get(self.plugin_url(name, path), params=params or None)

    def plugin_post(self, name: str, path: str, body: dict[str, Any]) -> httpx.Response:
        return self.plain.post(self.plugin_url(name, path), json=body)

    def create_case(self, name: str, run_id: str, case_name: str) -> dict[str, Any]:
        response = self.plugin_post(name, "/cases", {"run_id": run_id, "name": case_name})
        assert response.status_code in (200, 201), response.text
        return response.json()

    def increment(self, name: str, case_id: str, by: int) -> dict[str, Any]:
        response = self.plugin_post(name, f"/cases/{case_id}/increment", {"by": by})
        assert response.status_code == 200, response.text
        return response.json()

    def create_event(self, name: str, run_id: str, case_id: str, kind: str) -> dict[str, Any]:
        body = {"run_id": run_id, "case_id": case_id, "kind": kind, "payload": {"on": name}}
        response = self.plugin_post(name, "/events", body)
        assert response.status_code in (200, 201), response.text
        return response.json()

    def plugin_state(self, name: str, run_id: str) -> dict[str, Any]:
        from tribesqa.contract import PluginState

        response = self.plugin_get(name, "/state", run_id=run_id)
        assert response.status_code == 200, response.text
        parse_payload(PluginState, response.json(), source=f"node {name} / supertest state")
        return response.json()

    # -- sync endpoint (read the replicated log as a member would) -----------------------------
    def sync_log(self, name: str) -> list[dict[str, Any]]:
        record = self.node(name)
        response = self.plain.get(
            f"{record['transport_address']}/sync/events",
            params={"vv": "{}", "wait": "0"},
            headers={"X-Tribes-Node": name},
        )
        assert response.status_code == 200, response.text
        return response.json()["events"]

    # -- SSH ------------------------------------------------------------------------------------
    def ssh(self, name: str, command: str, timeout: float = 20.0) -> tuple[int, str, str]:
        """Run ``command`` on the node over SSH; the host key must match Legion's fingerprint."""
        record = self.node(name)
        ssh = record["ssh"]
        client = paramiko.SSHClient()
        client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
        try:
            client.connect(
                ssh["host"],
                port=ssh["port"],
                username=ssh["user"],
                key_filename=self.descriptor["ssh_key_file"],
                look_for_keys=False,
                allow_agent=False,
                timeout=10,
            )
            transport = client.get_transport()
            assert transport is not None
            fingerprint = openssh_fingerprint(transport.get_remote_server_key())
            assert fingerprint == record["host_key_fingerprint"], (fingerprint, record)
            _stdin, stdout, stderr = client.exec_command(command, timeout=timeout)
            rc = stdout.channel.recv_exit_status()
            return rc, stdout.read().decode(), stderr.read().decode()
        finally:
            client.close()

    def sqlite_tables(self, name: str) -> list[str]:
        """The node database's tables, read over SSH on the node (sqlite3, else python3)."""
        command = (
            'if command -v sqlite3 >/dev/null; then sqlite3 "$TRIBES_ROOT/../node.db" .tables; '
            'else python3 -c "import os, sqlite3; print(*(r[0] for r in sqlite3.connect('
            "os.environ['TRIBES_ROOT'] + '/../node.db').execute("
            "'SELECT name FROM sqlite_master WHERE type = \\'table\\'')))\"; fi"
        )
        rc, out, err = self.ssh(name, command)
        assert rc == 0, err
        return sorted(out.split())

    def close(self) -> None:
        self.legion.close()
        self.http.close()
        self.plain.close()


class FleetRegistry:
    """Starts fleets under ``tmp_path_factory`` and makes sure every one of them is stopped.

    ``release`` stops a fleet in the background (the next test need not wait for it);
    ``shutdown`` joins those stops, stops everything again and returns leftover processes.
    """

    def __init__(self, make_dir: Callable[[str], Path]) -> None:
        self._make_dir = make_dir
        self.directories: list[Path] = []
        self._stoppers: list[threading.Thread] = []

    def new_dir(self, label: str) -> Path:
        directory = self._make_dir(label).resolve()
        self.directories.append(directory)
        return directory

    def start(
        self, label: str, nodes: int = 0, faults: Iterable[str] = (), **overrides: Any
    ) -> SimFleet:
        directory = self.new_dir(label)
        descriptor = start_fleet(directory, nodes=nodes, faults=list(faults), **overrides)
        return SimFleet(directory, descriptor)

    def release(self, fleet: SimFleet) -> None:
        fleet.close()
        stopper = threading.Thread(target=stop_fleet, args=(fleet.directory,), daemon=True)
        stopper.start()
        self._stoppers.append(stopper)

    def shutdown(self) -> dict[str, list[tuple[int, str]]]:
        for stopper in self._stoppers:
            stopper.join(60)
        for directory in self.directories:
            stop_fleet(directory)
        leftovers: dict[str, list[tuple[int, str]]] = {}
        for directory in self.directories:
            # A SIGKILLed stray needs a moment to exit; nothing else is waited for.
            deadline = time.monotonic() + 2
            while fleet_processes(directory) and time.monotonic() < deadline:
                time.sleep(0.05)
            if fleet_processes(directory):
                leftovers[str(directory)] = fleet_processes(directory)
        return leftovers


@dataclass
class JoinedCluster:
    """A 3-node cluster built the way test 1 describes, with what was seen while it joined."""

    fleet: SimFleet
    init_record: dict[str, Any]
    run: dict[str, Any]
    # Statuses of each row as the init node listed them, in the order they were seen.
    seen: dict[str, list[str]]

    @property
    def names(self) -> list[str]:
        return ["hetzner-1", "scaleway-1", "ovh-1"]
