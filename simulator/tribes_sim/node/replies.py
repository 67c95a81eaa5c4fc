"""JSON answers of a node's HTTP listeners."""

from __future__ import annotations

from typing import Any

from aiohttp import web


def json_reply(status: int, body: dict[str, Any]) -> web.Response:
    return web.json_response(body, status=status)
