"""Plugin API transports: loopback HTTP (where a target allows it) or curl over SSH on the node."""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable
from typing import Any

import httpx

from tribesqa.clients.ssh_client import SshCommandError, SshEndpointInfo, SshSessions
from tribesqa.clients.tls import tls_context
from tribesqa.config import fill_template
from tribesqa.targets.base import PluginTransport, PluginTransportError


class HttpPluginTransport(PluginTransport):
    """Direct HTTP to ``http://127.0.0.1:<plugin port>`` (the simulator's nodes share our host)."""

    def __init__(self, base_url_of: Callable[[str], str], timeout_s: float) -> None:
        self.base_url_of = base_url_of
        self.http = httpx.Client(timeout=timeout_s, verify=tls_context())

    def request(self, node: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        url = f"{self.base_url_of(node)}/plugins-api/supertest/{path.lstrip('/')}"
        try:
            response = self.http.request(method, url, json=body)
        except httpx.HTTPError as error:
            raise PluginTransportError(
                f"node {node}: plugin API {method} {path} unreachable: {type(error).__name__}: {error}"
            ) from None
        try:
            return response.status_code, response.json()
        except ValueError:
            return response.status_code, response.text

    def close(self) -> None:
        self.http.close()


class SshPluginTransport(PluginTransport):
    """``curl`` on the node over SSH, as the real runner does (the plugin API is node-local)."""

    def __init__(
        self,
        sessions: SshSessions,
        endpoint_of: Callable[[str], SshEndpointInfo],
        template: str,
        timeout_s: float,
    ) -> None:
        self.sessions = sessions
        self.endpoint_of = endpoint_of
        self.template = template
        self.timeout_s = timeout_s

    def request(self, node: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data_args = "" if body is None else "--data-binary " + shlex.quote(json.dumps(body))
        # The path is quoted: a query string's ``?`` and ``&`` must reach curl, not the shell.
        command = fill_template(
            self.template,
            method=shlex.quote(method),
            path=shlex.quote(path.lstrip("/")),
            data_args=data_args,
        )
        try:
            result = self.sessions.run(
                node,
                self.endpoint_of(node),
                command,
                purpose=f"plugin API {method} {path}",
                timeout_s=self.timeout_s,
            )
        except SshCommandError as error:
            raise PluginTransportError(str(error)) from None
        text, _, status = result.stdout.rstrip("\n").rpartition("\n")
        if not status.strip().isdigit():
            raise PluginTransportError(
                f"node {node}: plugin API {method} {path} over SSH gave no HTTP status (rc {result.rc}): "
                f"{(result.stderr or result.stdout)[-300:]}"
            )
        code = int(status.strip())
        if code == 0:
            raise PluginTransportError(
                f"node {node}: plugin API {method} {path} unreachable over SSH: {result.stderr[-300:]}"
            )
        try:
            return code, json.loads(text) if text.strip() else None
        except ValueError:
            return code, text
