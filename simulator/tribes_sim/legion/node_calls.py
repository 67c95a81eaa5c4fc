"""Legion's NIP-98-signed calls to the nodes' management API.

Mixed into ``Legion``.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp

from tribes_sim.http_auth import authorization
from tribes_sim.legion.refusal import LegionRefusal


class NodeCallsMixin:
    """Legion's part: signed management calls to nodes (uses the attributes Legion sets up)."""

    async def call(
        self, node: dict[str, Any], method: str, params: dict[str, Any] | None = None
    ) -> Any:
        body = json.dumps({"method": method, "params": params or {}}).encode()
        return await self._call_encoded(node, method, body)

    async def _call_encoded(self, node: dict[str, Any], method: str, body: bytes) -> Any:
        """POST an already-encoded management envelope (a push encodes once for every node)."""
        url = f"{node['admin_url']}/api/admin/management"
        for _attempt in range(50):
            headers = {
                "Authorization": authorization(self.key, url, "POST", body),
                "Content-Type": "application/json",
            }
            try:
                async with self.http.post(url, data=body, headers=headers) as response:
                    status = response.status
                    raw = await response.read()
            except (aiohttp.ClientError, TimeoutError) as error:
                raise LegionRefusal(
                    502, "node-unreachable", f"{node['name']} {method}: {error!r}"
                ) from None
            if status == 503:
                await asyncio.sleep(0.05)
                continue
            try:
                payload = json.loads(raw)
            except ValueError:
                raise LegionRefusal(
                    502, "invalid-payload", f"{node['name']} {method}: HTTP {status} {raw[:200]!r}"
                ) from None
            if not isinstance(payload, dict) or not payload.get("ok"):
                payload = payload if isinstance(payload, dict) else {}
                raise LegionRefusal(
                    502,
                    payload.get("error", "node-error"),
                    f"{node['name']} {method}: {payload.get('message')}",
                )
            return payload["result"]
        raise LegionRefusal(504, "not-ready", f"{node['name']} {method}: still not ready")

    def running_nodes(self) -> list[dict[str, Any]]:
        return [
            n
            for n in self.nodes.values()
            if n["status"] in ("ready", "decommissioned", "provisioning")
            and not n.get("down")
            and n.get("admin_url")
        ]
