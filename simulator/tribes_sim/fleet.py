"""Start, describe and stop a simulated fleet (Legion + node hosts) from Python or the CLI.

A fleet directory holds everything: ``secrets/`` (admin key, Legion key, SSH client key — never
copied elsewhere), ``fleet-keys.json`` (public parts only), ``sim-config.json``, ``legion.json``
(URL and pid while Legion runs), ``fleet.json`` (the descriptor the test targets read), and one
directory per node.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

import httpx

from tribes_sim.fault_catalogue import parse_faults
from tribes_sim.loopback_tls import client_tls_context
from tribes_sim.procs import pid_alive
from tribes_sim.schnorr_keys import SchnorrKey, read_key, write_key
from tribes_sim.seeded import seed_from_env
from tribes_sim.settings import SimConfig
from tribes_sim.ssh_keys import generate_ssh_keypair

JOIN_PROVIDERS = ("scaleway", "ovh", "hetzner")

# Above this many nodes, start_fleet uses LARGE_FLEET_DEFAULTS for what the caller leaves unset
# (bench/sim_fifty_nodes.py measures them: 50 nodes converge in ~11 s in ~0.5 GiB on 2 cores).
LARGE_FLEET_NODES = 10
LARGE_FLEET_DEFAULTS: dict[str, Any] = {
    # A host process costs ~52 MB of RSS before its first node: 10 nodes a host keep 50 nodes
    # near 0.5 GiB (1 a host: 2.7 GiB) while one busy host loop stalls only 10 of them.
    "nodes_per_host": 10,
    # An idle N-node mesh answers N*(N-1)/sync_long_poll_s long-polls a second: 2,450/s for 50
    # nodes at 1 s, more than 2 cores can serve. The cost: a relayed event (the origin could not
    # deliver it directly) may take up to this long.
    "sync_long_poll_s": 20.0,
}


class FleetError(RuntimeError):
    """The fleet could not be started, reached or stopped; the message says which step."""


class LegionClientError(RuntimeError):
    """Legion refused or failed an operation."""

    def __init__(self, operation: str, status: int, code: str, message: str) -> None:
        super().__init__(f"Legion {operation}: {code}: {message}")
        self.operation = operation
        self.status = status
        self.code = code
        self.message = message


class LegionClient:
    """Synchronous client of the simulated Legion's HTTP API."""

    def __init__(self, url: str, timeout_s: float = 120.0) -> None:
        self.url = url.rstrip("/")
        self.http = httpx.Client(
            base_url=self.url,
            timeout=httpx.Timeout(timeout_s, connect=5.0),
            verify=client_tls_context(),
        )

    def close(self) -> None:
        self.http.close()

    def _request(
        self, operation: str, method: str, path: str, body: dict[str, Any] | None = None
    ) -> Any:
        try:
            response = self.http.request(method, path, json=body)
        except httpx.HTTPError as error:
            raise LegionClientError(
                operation, 0, "legion-unreachable", f"{self.url}: {error}"
            ) from None
        try:
            payload = response.json()
        except ValueError:
            raise LegionClientError(
                operation, response.status_code, "invalid-payload", response.text[:200]
            ) from None
        if response.status_code >= 400:
            raise LegionClientError(
                operation,
                response.status_code,
                str(payload.get("error")),
                str(payload.get("message")),
            )
        return payload

    def health(self) -> dict[str, Any]:
        return self._request("health", "GET", "/health")

    def provision_init(self, provider: str) -> dict[str, Any]:
        return self._request("provision init", "POST", "/nodes/init", {"provider": provider})

    def plan_join(self, provider: str, count: int = 1) -> list[dict[str, Any]]:
        return self._request(
            "plan join", "POST", "/nodes/plan", {"provider": provider, "count": count}
        )

    def materialize(self, interrupt_after: int | None = None) -> dict[str, Any]:
        body = {} if interrupt_after is None else {"interrupt_after": interrupt_after}
        return self._request("materialize", "POST", "/graph-runs", body)

    def decommission(self, name: str) -> dict[str, Any]:
        return self._request(f"decommission {name}", "POST", f"/nodes/{name}/decommission", {})

    def reactivate(self, name: str) -> dict[str, Any]:
        return self._request(f"reactivate {name}", "POST", f"/nodes/{name}/reactivate", {})

    def replace(self, name: str, provider: str) -> dict[str, Any]:
        return self._request(
            f"replace {name}", "POST", f"/nodes/{name}/replace", {"provider": provider}
        )

    def destroy(self, name: str) -> dict[str, Any]:
        return self._request(f"destroy {name}", "DELETE", f"/nodes/{name}")

    def destroy_all(self) -> dict[str, Any]:
        return self._request("destroy all", "DELETE", "/nodes")

    def list_nodes(self) -> list[dict[str, Any]]:
        return self._request("list", "GET", "/nodes")

    def snapshot(self) -> dict[str, Any]:
        return self._request("snapshot", "GET", "/snapshot")

    def nemesis(self, action: str, **body: Any) -> dict[str, Any]:
        return self._request(f"nemesis {action}", "POST", f"/nemesis/{action}", body)

    def shutdown(self) -> None:
        with contextlib.suppress(LegionClientError):
            self._request("shutdown", "POST", "/shutdown", {})


def prepare_fleet_dir(
    directory: Path,
    *,
    faults: Iterable[str] = (),
    defaults: Mapping[str, Any] | None = None,
    **overrides: Any,
) -> SimConfig:
    """Create keys and config for a fleet (idempotent: existing keys are kept).

    Settings: ``overrides`` beat ``TRIBES_SIM_OVERRIDES`` beat ``defaults`` beat SimConfig's.
    """
    directory.mkdir(parents=True, exist_ok=True)
    secrets_dir = directory / "secrets"
    secrets_dir.mkdir(mode=0o700, exist_ok=True)
    admin_path = secrets_dir / "admin.key"
    if not admin_path.exists():
        write_key(admin_path, SchnorrKey.generate())
    ssh_key = secrets_dir / "ssh_client"
    if not ssh_key.exists():
        generate_ssh_keypair(ssh_key, comment="tribes-qa")
    keys = {
        "admin_pubkey": read_key(admin_path).public_hex,
        "ssh_client_public": Path(str(ssh_key) + ".pub").read_text().strip(),
    }
    (directory / "fleet-keys.json").write_text(json.dumps(keys, indent=1))
    # TRIBES_SIM_OVERRIDES (a JSON object of SimConfig fields) lets a whole run tune the
    # simulator without touching suites, e.g. a shorter Legion join wait for fault runs.
    env_overrides = json.loads(os.environ.get("TRIBES_SIM_OVERRIDES", "") or "{}")
    if not isinstance(env_overrides, dict):
        raise FleetError("TRIBES_SIM_OVERRIDES must be a JSON object of simulator settings")
    merged = {**(defaults or {}), **env_overrides, **overrides}
    config = SimConfig.from_mapping({**merged, "faults": sorted(parse_faults(list(faults)))})
    env_faults = os.environ.get("TRIBES_SIM_FAULTS", "")
    if env_faults.strip():
        config.faults = sorted(set(config.faults) | parse_faults(env_faults))
    if "seed" not in overrides:
        try:  # the run's seed (tribes-qa run sets it) beats a seed in TRIBES_SIM_OVERRIDES
            run_seed = seed_from_env()
        except ValueError as error:
            raise FleetError(str(error)) from None
        config.seed = config.seed if run_seed is None else run_seed
    (directory / "sim-config.json").write_text(json.dumps(asdict(config), indent=1))
    return config


def legion_info(directory: Path) -> dict[str, Any] | None:
    path = directory / "legion.json"
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except ValueError:
        return None


def start_legion(directory: Path, timeout_s: float = 20.0) -> dict[str, Any]:
    """Start Legion in the background (its own session, so it survives the caller's shell)."""
    existing = legion_info(directory)
    if existing and pid_alive(int(existing["pid"])):
        return existing
    with contextlib.suppress(FileNotFoundError):
        (directory / "legion.json").unlink()
    log_file = open(directory / "legion.log", "ab")  # noqa: SIM115 - handed to the child
    process = subprocess.Popen(
        [sys.executable, "-m", "tribes_sim.legion", "--dir", str(directory)],
        stdout=log_file,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    log_file.close()
    deadline = time.monotonic() + timeout_s
    try:
        while True:  # the last look at or after the deadline
            info = legion_info(directory)
            if info:
                return info
            if process.poll() is not None:
                tail = (directory / "legion.log").read_text()[-2000:]
                raise FleetError(f"Legion exited with {process.returncode} while starting:\n{tail}")
            if time.monotonic() >= deadline:
                break
            time.sleep(0.02)
    except BaseException:
        # Interrupted (Ctrl-C, a runner's SIGTERM) before Legion was up: nobody could stop it
        # later through legion.json, and it would recreate the fleet directory once removed.
        process.kill()
        raise
    process.kill()
    raise FleetError(f"Legion did not start within {timeout_s} s (see {directory / 'legion.log'})")


def write_descriptor(directory: Path, legion_url: str) -> dict[str, Any]:
    """Describe the fleet for test targets: endpoints, public keys, where the secrets are."""
    client = LegionClient(legion_url)
    try:
        nodes = client.list_nodes()
    finally:
        client.close()
    keys = json.loads((directory / "fleet-keys.json").read_text())
    descriptor = {
        "legion_url": legion_url,
        "legion_cli": [sys.executable, "-m", "tribes_sim.legion_cli", "--legion-url", legion_url],
        "fleet_dir": str(directory),
        "admin_pubkey": keys["admin_pubkey"],
        "admin_key_file": str(directory / "secrets" / "admin.key"),
        "ssh_user": "tribes",
        "ssh_key_file": str(directory / "secrets" / "ssh_client"),
        "nodes": nodes,
    }
    (directory / "fleet.json").write_text(json.dumps(descriptor, indent=1))
    return descriptor


def start_fleet(
    directory: Path, nodes: int = 0, faults: Iterable[str] = (), **overrides: Any
) -> dict[str, Any]:
    """Start Legion plus an ``nodes``-node cluster (init on hetzner, joins across providers).

    A cluster of more than LARGE_FLEET_NODES nodes gets LARGE_FLEET_DEFAULTS for the settings
    not given (packed hosts, longer long-polls).
    """
    directory = directory.resolve()
    defaults = LARGE_FLEET_DEFAULTS if nodes > LARGE_FLEET_NODES else None
    prepare_fleet_dir(directory, faults=faults, defaults=defaults, **overrides)
    info = start_legion(directory)
    if nodes > 0:
        client = LegionClient(info["url"])
        try:
            client.provision_init("hetzner")
            for index in range(nodes - 1):
                client.plan_join(JOIN_PROVIDERS[index % len(JOIN_PROVIDERS)], 1)
            if nodes > 1:
                client.materialize()
        except LegionClientError:
            stop_fleet(directory)
            raise
        finally:
            client.close()
    return write_descriptor(directory, info["url"])


def stop_fleet(directory: Path, timeout_s: float = 20.0) -> bool:
    """Stop Legion and every node host; return whether something was running."""
    info = legion_info(directory)
    if not info:
        # Legion may still be starting (no legion.json yet): its process names the directory.
        return bool(kill_strays(directory))
    pid = int(info["pid"])
    if pid_alive(pid):
        client = LegionClient(info["url"], timeout_s=timeout_s)
        client.shutdown()
        client.close()
        deadline = time.monotonic() + timeout_s
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
    if pid_alive(pid):
        # Last resort: the whole session (Legion + hosts) goes.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
    kill_strays(directory)
    with contextlib.suppress(FileNotFoundError):
        (directory / "legion.json").unlink()
    return True


def kill_strays(directory: Path) -> list[int]:
    """Kill any simulator process still referring to this fleet directory (belt and braces)."""
    killed = []
    marker = str(directory.resolve())
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            if "tribes_sim." in cmdline and marker in cmdline:
                os.kill(int(proc.name), signal.SIGKILL)
                killed.append(int(proc.name))
    return killed


def fleet_status(directory: Path) -> dict[str, Any]:
    info = legion_info(directory)
    if not info or not pid_alive(int(info["pid"])):
        return {"running": False, "fleet_dir": str(directory)}
    client = LegionClient(info["url"])
    try:
        nodes = client.list_nodes()
    finally:
        client.close()
    return {
        "running": True,
        "fleet_dir": str(directory),
        "legion_url": info["url"],
        "pid": info["pid"],
        "nodes": nodes,
    }
