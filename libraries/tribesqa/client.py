"""The management API client: one NIP-98-signed httpx client per node.

Connections are reused; every call has a timeout; only 503 readiness answers are retried (a
node restarting during a rollout answers 503 for a while); every error names the node, the
method and the cause, e.g. ``node ovh-1 / rollout.start refused: substitutes-missing: ...``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
from pydantic import BaseModel

from tribesqa.keys import AdminKey
from tribesqa.models import parse_method_result
from tribesqa.nip98 import Nip98Auth
from tribesqa.tls import tls_context


class ManagementError(AssertionError):
    """A management call failed; ``code`` is the contract error code (or a transport cause)."""

    def __init__(
        self, node: str, method: str, code: str, message: str, status: int | None = None
    ) -> None:
        super().__init__(f"node {node} / {method} failed: {code}: {message}")
        self.node = node
        self.method = method
        self.code = code
        self.reason = message
        self.status = status


class ManagementClient:
    """Calls ``POST <admin_url>/api/admin/management`` on one node."""

    def __init__(
        self,
        node: str,
        admin_url: str,
        key: AdminKey,
        *,
        timeout_s: float,
        ready_timeout_s: float,
        retry_interval_s: float = 0.1,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.node = node
        self.admin_url = admin_url.rstrip("/")
        self.ready_timeout_s = ready_timeout_s
        self.retry_interval_s = retry_interval_s
        self._sleep = sleep
        self.http = httpx.Client(
            auth=Nip98Auth(key),
            timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 5.0)),
            verify=tls_context(),
        )

    @property
    def endpoint(self) -> str:
        return f"{self.admin_url}/api/admin/management"

    def close(self) -> None:
        self.http.close()

    def healthz(self) -> tuple[int, Any]:
        try:
            response = self.http.get(f"{self.admin_url}/healthz", auth=None)
        except httpx.HTTPError as error:
            raise ManagementError(self.node, "healthz", "unreachable", _cause(error)) from None
        return response.status_code, _json_or_text(response)

    def call(self, method: str, params: dict[str, Any] | None = None) -> Any:
        """Return the ``result`` of ``method``; raise ManagementError otherwise."""
        deadline = time.monotonic() + self.ready_timeout_s
        body = {"method": method, "params": params or {}}
        while True:
            try:
                response = self.http.post(self.endpoint, json=body)
            except httpx.HTTPError as error:
                raise ManagementError(self.node, method, "unreachable", _cause(error)) from None
            payload = _json_or_text(response)
            if response.status_code == 503 and time.monotonic() < deadline:
                self._sleep(self.retry_interval_s)
                continue
            if not isinstance(payload, dict):
                raise ManagementError(
                    self.node,
                    method,
                    "invalid-payload",
                    f"HTTP {response.status_code}, body is not a JSON object: {str(payload)[:200]}",
                    response.status_code,
                )
            if response.status_code == 200 and payload.get("ok") is True:
                return payload.get("result")
            code = str(payload.get("error") or f"http-{response.status_code}")
            message = str(payload.get("message") or "")
            if response.status_code == 503:
                message = f"still not ready after {self.ready_timeout_s:g} s {message}".strip()
            raise ManagementError(self.node, method, code, message, response.status_code)

    def call_typed(self, method: str, params: dict[str, Any] | None = None) -> BaseModel:
        """Like ``call`` but validated against the contract model of ``method``."""
        return parse_method_result(method, self.call(method, params), source=f"node {self.node}")

    def raw(self, body: bytes, headers: dict[str, str]) -> httpx.Response:
        """Send a hand-made request (unsigned unless the headers carry a signature)."""
        try:
            return self.http.post(self.endpoint, content=body, headers=headers, auth=None)
        except httpx.HTTPError as error:
            raise ManagementError(self.node, "raw request", "unreachable", _cause(error)) from None


def _cause(error: httpx.HTTPError) -> str:
    text = str(error) or type(error).__name__
    return f"{type(error).__name__}: {text}"[:300]


def _json_or_text(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text
