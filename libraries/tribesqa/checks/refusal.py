"""Did a node refuse a request the way the contract says? (401 and the NIP-98 error code)."""

from __future__ import annotations

from typing import Any

REFUSAL_STATUS = 401


def answer_code(payload: Any) -> str:
    """The contract ``error`` of an answer body, or what stands in for it."""
    if isinstance(payload, dict):
        if payload.get("ok") is True:
            return "ok"
        return str(payload.get("error") or "no error code")
    return "a body that is not a JSON object"


def refusal_problem(
    node: str, sent: str, method: str, status: int, payload: Any, expected: str
) -> str | None:
    """None when ``node`` answered ``sent`` (a request for ``method``) with 401 ``expected``.

    Otherwise the failure message, naming the node, what was sent, the method, what the
    contract expects and what the node answered, e.g. ``node hetzner-1 accepted a replayed
    NIP-98 event for node.info (HTTP 200), expected 401 replayed-auth-event``.
    """
    code = answer_code(payload)
    if status == REFUSAL_STATUS and code == expected:
        return None
    if 200 <= status < 300:
        return f"node {node} accepted {sent} for {method} (HTTP {status}), expected 401 {expected}"
    detail = payload.get("message") if isinstance(payload, dict) else str(payload)
    return (
        f"node {node} refused {sent} for {method} with HTTP {status} {code}, "
        f"expected 401 {expected}" + (f" ({str(detail)[:160]})" if detail else "")
    )
