"""Contract conformance of the management API, provoked from outside: refusals with their HTTP
status and error code, results in their contract shapes, ``/healthz``.

Requests are NIP-98 signed with the admin key through the node's management client (the same
client every other keyword uses), so a refusal here is the node's answer to an authorised
caller, never an authentication failure.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel
from robot.api import logger
from robot.api.deco import keyword

from tribesqa.checks.refusal import expected_http_status, refusal_problem
from tribesqa.clients.admin_probe import header_for, send, signed
from tribesqa.contract import (
    METHOD_RESULT_MODELS,
    NodeHealth,
    parse_method_result,
    parse_payload,
)
from tribesqa.diagnostics import TribesFailure
from tribesqa.guard import MUTATING_METHODS
from tribesqa.keywords.component import Component


class ContractKeywords(Component):
    """Requests the contract says a node must refuse, and result shapes against the contract models."""

    TAGS = ("contract", "node")  # keyword tags in libdoc: this component's domain

    def _guard(self, method: str, node: str, keyword: str) -> None:
        """A method that changes the node is a destructive act even when a refusal is expected
        (a node that wrongly accepts it changes)."""
        if method in MUTATING_METHODS:
            self.ctx.require_destructive_allowed(keyword, f"call {method} on {node}")

    def _refused(self, node: str, what: str, body: bytes, error: str) -> str:
        try:
            expected_http_status(error)
        except ValueError as unknown:
            raise TribesFailure(f"node {node} / {what}: {unknown}") from None
        # Signed for exactly these bytes with the admin key: only the body can be at fault.
        client = self.ctx.client(node)
        headers = header_for(signed(self.ctx.admin_key(), client.endpoint, body=body))
        status, payload = send(client, body, headers, what=what)
        problem = refusal_problem(node, what, status, payload, error)
        if problem is not None:
            raise TribesFailure(problem)
        message = str(payload.get("message") or "")
        logger.info(f"node {node} / {what} refused as expected: HTTP {status} {error}: {message}")
        return message

    @keyword
    def management_call_should_be_refused(
        self, node: str, method: str, error: str, params: dict[str, Any] | None = None
    ) -> str:
        """``method`` with ``params`` on ``node`` must be refused with contract error ``error``
        at the HTTP status the contract gives it (400, 409 or 503); returns the node's message.

        The answer must be a contract envelope (``ok: false``, ``error``, ``message``); an
        acceptance, another code or another status fails naming the node, the method and both.

        Example:
        | ${message}=    Management Call Should Be Refused    hetzner-1    rollout.status    unknown-job
        | ...    params=${{{"job_id": "job-that-never-was"}}}
        """
        self._guard(method, node, "Management Call Should Be Refused")
        body = json.dumps({"method": method, "params": dict(params or {})}).encode()
        return self._refused(node, method, body, error)

    @keyword
    def management_body_should_be_refused(self, node: str, body: str, error: str) -> str:
        """Send ``body`` exactly as given (signed, so only the body is at fault) to ``node``'s
        management endpoint; it must be refused with ``error`` at its contract HTTP status.

        For envelopes no method call can produce: a body that is not JSON, an envelope without
        ``method``, ``params`` that are not an object. Returns the node's message.

        Example:
        | Management Body Should Be Refused    hetzner-1    not json    invalid-payload
        | Management Body Should Be Refused    hetzner-1    {"method": "node.info", "params": [1]}    invalid-params
        """
        self._guard(_method_of(body), node, "Management Body Should Be Refused")
        shown = body if len(body) <= 60 else body[:57] + "..."
        return self._refused(node, f"request {shown!r}", body.encode(), error)

    @keyword
    def management_method_should_answer_in_contract_shape(
        self, node: str, method: str, params: dict[str, Any] | None = None
    ) -> BaseModel:
        """Call ``method`` on ``node`` and parse its ``result`` with the method's contract model;
        returns the parsed model. A mismatch fails naming the node, the method and the field; a
        method the contract has no result model for fails before anything is sent.

        Example:
        | ${sync}=    Management Method Should Answer In Contract Shape    hetzner-1    sync.status
        | Should Be Equal    ${sync.mode.value}    live
        """
        if method not in METHOD_RESULT_MODELS:
            known = ", ".join(sorted(METHOD_RESULT_MODELS))
            raise TribesFailure(
                f"node {node} / {method}: the contract has no result model for management "
                f"method {method!r}, so its shape cannot be checked (known: {known})"
            )
        self._guard(method, node, "Management Method Should Answer In Contract Shape")
        result = self.ctx.client(node).call(method, dict(params or {}))
        return parse_method_result(method, result, source=f"node {node}")

    @keyword
    def health_endpoint_should_answer_ok(self, node: str) -> NodeHealth:
        """``GET /healthz`` on ``node`` answers 200 ``{"status": "ok"}`` (a ``NodeHealth``).

        Example: ``Health Endpoint Should Answer Ok    hetzner-1``
        """
        status, payload = self.ctx.client(node).healthz()
        health = parse_payload(NodeHealth, payload, source=f"node {node} / healthz")
        if status != 200 or health.status != "ok":
            reason = f" ({health.reason})" if health.reason else ""
            raise TribesFailure(
                f"node {node} / healthz: expected HTTP 200 status ok, "
                f"got HTTP {status} status {health.status}{reason}"
            )
        return health


def _method_of(body: str) -> str:
    """The method a raw body names, if it is an envelope at all (a node that wrongly accepts a
    body naming a mutating method would act on it)."""
    try:
        envelope = json.loads(body)
    except ValueError:
        return ""
    method = envelope.get("method") if isinstance(envelope, dict) else None
    return method if isinstance(method, str) else ""
