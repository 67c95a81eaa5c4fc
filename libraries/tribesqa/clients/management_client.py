"""The management API client: one NIP-98-signed httpx client per node.

Connections are reused; every call has a timeout; only 503 readiness answers are retried (a
node restarting during a rollout answers 503 for a while); every error names the node, the
method and the cause, e.g. ``node ovh-1 / rollout.start refused: substitutes-missing: ...``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import httpx
from pydantic import BaseModel

from tribesqa.clients.keys import AdminKey
from tribesqa.clients.nip98 import Nip98Auth
from tribesqa.clients.tls import tls_context
from tribesqa.contract import parse_method_result
from tribesqa.waiting import (
    SYSTEM_CLOCK,
    Clock,
    Observation,
    Verdict,
    WaitTerminal,
    WaitTimeout,
    poll_until,
)


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


class CallRecorder(Protocol):
    """Where a client reports its calls (``tribesqa.history.HistoryRecorder``)."""

    def call(self, node: str, method: str, params: dict[str, Any], run: Any) -> Any: ...

    def exchange(
        self,
        node: str,
        what: str,
        params: Any,
        send: Callable[[], tuple[int, Any]],
        *,
        write: bool = False,
    ) -> tuple[int, Any]: ...

    def probe(
        self, node: str, body: bytes, send: Callable[[], tuple[int, Any]]
    ) -> tuple[int, Any]: ...


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
        clock: Clock = SYSTEM_CLOCK,
        recorder: CallRecorder | None = None,
    ) -> None:
        self.node = node
        self.recorder = recorder
        self.admin_url = admin_url.rstrip("/")
        self.ready_timeout_s = ready_timeout_s
        self.retry_interval_s = retry_interval_s
        self._clock = clock
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
        """``GET /healthz``: (HTTP status, JSON answer or text); recorded as ``healthz``."""
        if self.recorder is not None:
            return self.recorder.exchange(self.node, "healthz", None, self._healthz)
        return self._healthz()

    def _healthz(self) -> tuple[int, Any]:
        try:
            response = self.http.get(f"{self.admin_url}/healthz", auth=None)
        except httpx.HTTPError as error:
            raise ManagementError(self.node, "healthz", "unreachable", _cause(error)) from None
        return response.status_code, _json_or_text(response)

    def _post(self, method: str, body: dict[str, Any]) -> tuple[int, Any]:
        try:
            response = self.http.post(self.endpoint, json=body)
        except httpx.HTTPError as error:
            raise ManagementError(self.node, method, "unreachable", _cause(error)) from None
        return response.status_code, _json_or_text(response)

    def _until_ready(self, method: str, body: dict[str, Any]) -> tuple[int, Any]:
        """Repeat the call while the node answers 503 (booting, restarting), up to node_ready.

        Through the one wait engine. An unreachable node ends the wait at once, as the first
        call would have; after the deadline the last answer (a 503) is returned.
        """

        def judge(observations: dict[str, Observation]) -> Verdict:
            seen = observations[self.node]
            if seen.error is not None:
                return Verdict(False, "unreachable", [self.node], terminal=seen.error)
            status = seen.value[0]
            return Verdict(status != 503, f"HTTP {status}", [] if status != 503 else [self.node])

        try:
            result = poll_until(
                [self.node],
                lambda _: self._post(method, body),
                judge,
                what=f"node {self.node} ready for {method}",
                timeout_s=self.ready_timeout_s,
                interval_s=self.retry_interval_s,
                clock=self._clock,
                max_workers=1,
            )
        except WaitTerminal as failure:
            cause = failure.result.observations[self.node].error or "no answer"
            raise ManagementError(self.node, method, "unreachable", cause) from None
        except WaitTimeout as timeout:
            return timeout.result.observations[self.node].value
        return result.observations[self.node].value

    def call(self, method: str, params: dict[str, Any] | None = None) -> Any:
        """Return the ``result`` of ``method``; raise ManagementError otherwise.

        With a ``recorder``, the call goes into the run history (a read as an observation, a
        change as invoke / ok / fail)."""
        if self.recorder is not None:
            return self.recorder.call(self.node, method, params or {}, self._call)
        return self._call(method, params)

    def _call(self, method: str, params: dict[str, Any] | None = None) -> Any:
        body = {"method": method, "params": params or {}}
        status, payload = self._post(method, body)
        if status == 503 and self.ready_timeout_s > 0:
            status, payload = self._until_ready(method, body)
        if not isinstance(payload, dict):
            raise ManagementError(
                self.node,
                method,
                "invalid-payload",
                f"HTTP {status}, body is not a JSON object: {str(payload)[:200]}",
                status,
            )
        if status == 200 and payload.get("ok") is True:
            return payload.get("result")
        code = str(payload.get("error") or f"http-{status}")
        message = str(payload.get("message") or "")
        if status == 503:
            message = f"still not ready after {self.ready_timeout_s:g} s {message}".strip()
        raise ManagementError(self.node, method, code, message, status)

    def call_typed(self, method: str, params: dict[str, Any] | None = None) -> BaseModel:
        """Like ``call`` but validated against the contract model of ``method``."""
        return parse_method_result(method, self.call(method, params), source=f"node {self.node}")

    def raw(
        self, body: bytes, headers: dict[str, str], *, what: str = "raw request"
    ) -> httpx.Response:
        """Send a hand-made request (unsigned unless the headers carry a signature).

        ``headers`` are sent as given (a ``host`` header too); ``what`` names the request in
        an error (e.g. ``node.info``).
        """
        try:
            return self.http.post(self.endpoint, content=body, headers=headers, auth=None)
        except httpx.HTTPError as error:
            raise ManagementError(self.node, what, "unreachable", _cause(error)) from None


def _cause(error: httpx.HTTPError) -> str:
    text = str(error) or type(error).__name__
    return f"{type(error).__name__}: {text}"[:300]


def _json_or_text(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text
