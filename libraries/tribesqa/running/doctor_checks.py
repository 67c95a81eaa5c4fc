"""The per-node checks of ``tribes-qa doctor``: read-only calls, each bounded by a timeout.

Every check returns a :class:`Check` (never raises): ✓ with what it saw, ✗ with the reason,
or skipped (``ok=None``) when it cannot run (e.g. the plugin transport over SSH after the SSH
login failed). Nothing here writes to a node: ``GET /healthz``, a signed ``node.info``, SSH
``true``, a ``GET`` of the plugin's ``health`` path.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from tribesqa.clients.keys import AdminKey
from tribesqa.clients.management_client import ManagementClient, ManagementError
from tribesqa.clients.ssh_client import SshCommandError, SshEndpointInfo, SshSessions
from tribesqa.clients.tls import tls_context
from tribesqa.contract import ContractError, NodeInfo, NodeRecord
from tribesqa.targets.base import PluginTransport, PluginTransportError

#: The node columns of the doctor's table, in order.
NODE_CHECKS = ("legion", "healthz", "node.info", "ssh", "clock skew", "plugin transport")


@dataclass(frozen=True)
class Check:
    """One cell: ``subject`` is a node name or ``target``; ``ok`` None means skipped."""

    subject: str
    name: str
    ok: bool | None
    detail: str

    @property
    def mark(self) -> str:
        return {True: "✓", False: "✗", None: "-"}[self.ok]


@dataclass(frozen=True)
class DateProbe:
    """A node's ``Date`` header (whole seconds) and the runner's clock around the request."""

    node_date: float | None
    sent_at: float
    answered_at: float


def skew_bounds(probe: DateProbe) -> tuple[float, float]:
    """The node clock minus the runner clock lies in ``[low, high]`` (seconds).

    The ``Date`` header is cut to whole seconds, so the node's time was in
    ``[date, date + 1)`` at some instant between sending and answering.
    """
    assert probe.node_date is not None
    return probe.node_date - probe.answered_at, probe.node_date + 1 - probe.sent_at


def judge_skew(name: str, probe: DateProbe | None, allowed_s: float) -> Check:
    """✗ only when the skew is certainly beyond ``clock_skew`` of the timeouts table."""
    if probe is None:
        return Check(name, "clock skew", None, "skipped: /healthz did not answer")
    if probe.node_date is None:
        return Check(
            name,
            "clock skew",
            None,
            "skipped: the node sent no (valid) HTTP Date header to compare",
        )
    low, high = skew_bounds(probe)
    seen = f"node clock {low:+.1f}..{high:+.1f} s from the runner's"
    if low > allowed_s or high < -allowed_s:
        return Check(
            name,
            "clock skew",
            False,
            f"{seen}, beyond clock_skew {allowed_s:g} s of the timeouts table (fix NTP on the "
            "node, or raise clock_skew)",
        )
    return Check(name, "clock skew", True, f"{seen} (allowed ±{allowed_s:g} s)")


def http_date(value: str | None) -> float | None:
    """An HTTP ``Date`` header as epoch seconds; None when absent or not a date."""
    if not value:
        return None
    try:
        return email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None


def check_healthz(
    name: str, admin_url: str, timeout_s: float, clock: Callable[[], float] = time.time
) -> tuple[Check, DateProbe | None]:
    """``GET /healthz`` (unsigned): 200 ``{"status": "ok"}``; keeps the Date header for skew."""
    url = f"{admin_url.rstrip('/')}/healthz"
    sent = clock()
    try:
        response = httpx.get(url, timeout=timeout_s, verify=tls_context())
    except httpx.HTTPError as error:
        return Check(name, "healthz", False, f"GET {url}: {type(error).__name__}: {error}"), None
    answered = clock()
    probe = DateProbe(http_date(response.headers.get("date")), sent, answered)
    try:
        body = response.json()
    except ValueError:
        body = response.text[:120]
    if response.status_code != 200:
        return Check(
            name, "healthz", False, f"GET {url}: HTTP {response.status_code} {body}"
        ), probe
    return Check(name, "healthz", True, f"HTTP 200 {body}"), probe


def check_node_info(name: str, record: NodeRecord, key: AdminKey | None, timeout_s: float) -> Check:
    """A ``node.info`` signed with the admin key: accepted, and the node is who Legion says."""
    if key is None:
        return Check(name, "node.info", None, "skipped: no admin key")
    assert record.admin_url is not None
    client = ManagementClient(name, record.admin_url, key, timeout_s=timeout_s, ready_timeout_s=0)
    try:
        info = client.call_typed("node.info")
    except ManagementError as error:
        reason = (
            error.reason if error.reason.startswith(error.code) else f"{error.code}: {error.reason}"
        )
        if error.code == "forbidden-pubkey" and key.pubkey_hex not in reason:
            reason += f" (the admin key's pubkey {key.pubkey_hex[:16]}… is not on its allowlist)"
        verdict = "no answer" if error.code == "unreachable" else "signed call refused"
        return Check(name, "node.info", False, f"{verdict}: {reason}")
    except ContractError as error:
        return Check(name, "node.info", False, str(error))
    finally:
        client.close()
    assert isinstance(info, NodeInfo)
    if record.pubkey is not None and info.pubkey != record.pubkey:
        return Check(
            name,
            "node.info",
            False,
            f"node pubkey {info.pubkey[:16]}… is not the one Legion recorded "
            f"({record.pubkey[:16]}…): another machine answers at {record.admin_url}",
        )
    return Check(name, "node.info", True, f"signed call accepted; version {info.version}")


def check_ssh(
    name: str, sessions: SshSessions, endpoint: SshEndpointInfo, timeout_s: float
) -> Check:
    """Log in with the target's SSH key and run ``true``."""
    where = f"{endpoint.user}@{endpoint.host}:{endpoint.port}"
    try:
        result = sessions.run(name, endpoint, "true", purpose="doctor: true", timeout_s=timeout_s)
    except SshCommandError as error:
        return Check(name, "ssh", False, str(error))
    if result.rc != 0:
        return Check(
            name, "ssh", False, f"`true` exited {result.rc} on {where}: {result.stderr[-200:]}"
        )
    return Check(name, "ssh", True, f"{where}: `true` exited 0")


def check_plugin_transport(name: str, transport: PluginTransport, ssh_ok: bool | None) -> Check:
    """``GET health`` of the supertest plugin API: 200 (installed) or 404 (reachable, not
    installed) pass; no HTTP answer at all fails. The transport runs over SSH, so it is
    skipped when the node's SSH check did not pass."""
    if not ssh_ok:
        return Check(name, "plugin transport", None, "skipped: it runs over SSH, which failed")
    try:
        status, body = transport.request(name, "GET", "health")
    except PluginTransportError as error:
        return Check(name, "plugin transport", False, str(error))
    if status == 200:
        return Check(name, "plugin transport", True, "plugin API answers (supertest installed)")
    if status == 404:
        return Check(
            name, "plugin transport", True, "reachable; HTTP 404: supertest not installed yet"
        )
    return Check(name, "plugin transport", False, f"GET health: HTTP {status} {str(body)[:160]}")


def check_legion_record(name: str, record: NodeRecord | None, may_provision: bool) -> Check:
    """Is the node in Legion's list, ready?"""
    if record is None:
        if may_provision:
            return Check(
                name,
                "legion",
                None,
                "not in Legion's list yet: the suites provision it "
                "(TARGET.real.provision_missing_roster_nodes)",
            )
        return Check(name, "legion", False, "Legion lists no node of this name")
    if record.status.value != "ready":
        return Check(name, "legion", False, f"Legion status {record.status.value}, not ready")
    return Check(name, "legion", True, f"ready ({record.provider.value} {record.region})")
