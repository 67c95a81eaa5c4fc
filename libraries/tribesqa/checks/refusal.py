"""Did a node refuse a request the way the contract says? The one judge of every refusal.

The contract refusal of error ``code``: the HTTP status ``ERROR_HTTP_STATUS`` gives the code
(400, 401, 409 or 503) and a ``ManagementResponse`` envelope with ``ok: false``, that ``error``
and a message. The contract keywords (a method call or a hand-made body) and the security
keywords (a request with one NIP-98 flaw) both send through ``clients/admin_probe.send`` and
judge here; only how the request is named differs (``node hetzner-1 / rollout.status`` for a
call, ``a replayed NIP-98 event for node.info`` for a probe).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tribesqa.contract import ERROR_HTTP_STATUS, ErrorCode, ManagementResponse, parse_payload
from tribesqa.contract.errors import ContractError

NOT_JSON = "a body that is not a JSON object"


def expected_http_status(code: str) -> int:
    """The HTTP status the contract gives error ``code``; ValueError for a code it lacks."""
    try:
        return ERROR_HTTP_STATUS[ErrorCode(code)]
    except ValueError:
        known = ", ".join(sorted(c.value for c in ErrorCode))
        raise ValueError(f"{code!r} is not a contract error code (known: {known})") from None


def answer_code(payload: Any) -> str:
    """The contract ``error`` of an answer body, or what stands in for it."""
    if isinstance(payload, Mapping):
        if payload.get("ok") is True:
            return "ok"
        return str(payload.get("error") or "no error code")
    return NOT_JSON


@dataclass(frozen=True, slots=True)
class _Answer:
    """How an answer missed the refusal: ``not-json``, ``invalid`` (no contract envelope),
    ``accepted`` or ``wrong`` (another code or status), with what it carried."""

    kind: str
    code: str
    detail: str


def _miss(status: int, payload: Any, code: str, want: int, source: str) -> _Answer | None:
    if not isinstance(payload, Mapping):
        return _Answer("not-json", NOT_JSON, str(payload))
    try:
        envelope = parse_payload(ManagementResponse, payload, source=source)
    except ContractError as error:
        return _Answer("invalid", answer_code(payload), str(error))
    if envelope.ok:
        return _Answer("accepted", "ok", str(envelope.result))
    if envelope.error != code or status != want:
        return _Answer("wrong", str(envelope.error), envelope.message or "")
    return None


def refusal_problem(
    node: str,
    what: str,
    status: int,
    payload: Any,
    code: str,
    *,
    sent: str | None = None,
    max_text: int = 160,
) -> str | None:
    """None when ``node`` answered ``what`` (HTTP ``status``, ``payload``) with the contract
    refusal ``code``; otherwise the failure message naming the node, the request, the refusal
    the contract wants and what the node answered.

    ``what`` is the method (or the request) asked for; ``sent``, when given, says what was
    wrong with a hand-made request, e.g. ``node hetzner-1 accepted a replayed NIP-98 event for
    node.info (HTTP 200), expected 401 replayed-auth-event``. Without it: ``node hetzner-1 /
    rollout.status: expected HTTP 409 unknown-job, got HTTP 400 unknown-job: no job``.
    ValueError for a ``code`` the contract lacks.
    """
    want = expected_http_status(code)
    miss = _miss(status, payload, code, want, f"node {node} / {what}")
    if miss is None:
        return None
    if sent is not None:
        if miss.kind == "accepted":
            return f"node {node} accepted {sent} for {what} (HTTP {status}), expected {want} {code}"
        detail = f" ({miss.detail[:max_text]})" if miss.detail else ""
        return (
            f"node {node} refused {sent} for {what} with HTTP {status} {miss.code}, "
            f"expected {want} {code}{detail}"
        )
    if miss.kind == "not-json":
        shown = " ".join(miss.detail.split())[:max_text]
        return (
            f"node {node} / {what}: expected HTTP {want} {code}, "
            f"got HTTP {status} with a body that is not a JSON envelope: {shown!r}"
        )
    if miss.kind == "invalid":
        return f"expected HTTP {want} {code}, got HTTP {status}: {miss.detail}"
    if miss.kind == "accepted":
        return (
            f"node {node} / {what} succeeded but should have been refused with "
            f"HTTP {want} {code}: got HTTP {status} ok, result {miss.detail[:max_text]}"
        )
    return (
        f"node {node} / {what}: expected HTTP {want} {code}, "
        f"got HTTP {status} {miss.code}: {miss.detail}".rstrip(": ")
    )
