"""The scenarios' operator surface: every management call the runner makes is a NIP-98-signed
``POST <admin_url>/api/admin/management`` (seed 001 §2), checked by the simulator's own verifier
(it shares no code with the signer)."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from tribes_sim.http_auth import HttpAuthVerifier
from tribesqa.clients.keys import AdminKey
from tribesqa.clients.management_client import ManagementClient


@pytest.mark.req("ROLL-1")
def test_management_calls_are_signed_posts_to_the_admin_management_endpoint() -> None:
    key = AdminKey.generate()
    verifier = HttpAuthVerifier([key.pubkey_hex])
    seen: list[tuple[str, str, str]] = []

    def node(request: httpx.Request) -> httpx.Response:
        body = request.read()
        signer = verifier.verify(
            request.headers.get("authorization"), str(request.url), request.method, body
        )
        seen.append((request.method, request.url.path, signer))
        return httpx.Response(200, json={"ok": True, "result": {"echo": json.loads(body)}})

    client = ManagementClient(
        "hetzner-1", "http://127.0.0.1:21001/", key, timeout_s=5, ready_timeout_s=0
    )
    client.http._transport = httpx.MockTransport(node)  # the wire, not the client's own code
    try:
        result = client.call("cluster_status")
    finally:
        client.close()
    assert result == {"echo": {"method": "cluster_status", "params": {}}}
    assert seen == [("POST", "/api/admin/management", key.pubkey_hex)]


@pytest.mark.req("ROLL-2")
def test_no_scenario_step_drives_a_node_through_tribes_deploy_exec() -> None:
    # Diagnostic-only (seed 001 §2): no suite, phrase, keyword, command template or shipped
    # target may act on or assert through it; the management API is the scenario surface.
    root = Path(__file__).resolve().parents[1]
    places = [
        path
        for folder in ("suites", "resources", "libraries", "variables")
        for path in sorted((root / folder).rglob("*"))
        if path.is_file() and path.suffix in {".robot", ".resource", ".py", ".yaml"}
    ]
    assert len(places) > 40, "the scan found almost nothing: wrong root?"
    users = [str(p.relative_to(root)) for p in places if "deploy-exec" in p.read_text("utf-8")]
    assert users == [], f"tribes-deploy-exec used outside diagnostics: {users}"
