"""Every NIP-98 rejection (and the 400s) produced over real HTTP by a simulated node."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest
from fleetkit import JoinedCluster

from tribesqa.clients.keys import AdminKey
from tribesqa.clients.nip98 import authorization_header, build_auth_event
from tribesqa.contract import ErrorCode, ManagementResponse, parse_payload

pytestmark = pytest.mark.timeout(60)

NODE = "hetzner-1"
OTHER = "scaleway-1"
ARBITRARY_HOST = "admin.attacker.invalid:8443"
BODY = json.dumps({"method": "node.info", "params": {}}).encode()


@dataclass(frozen=True)
class Ctx:
    url: str
    key: AdminKey

    def sign(
        self,
        *,
        url: str | None = None,
        method: str = "POST",
        body: bytes = BODY,
        created_at: int | None = None,
        key: AdminKey | None = None,
    ) -> dict[str, object]:
        return build_auth_event(
            key or self.key, url or self.url, method, body, created_at=created_at
        )


def other_port(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"{parts.hostname}:{(parts.port or 80) + 1}"))


def tampered(ctx: Ctx) -> dict[str, str]:
    event = ctx.sign()
    event["created_at"] = int(event["created_at"]) + 1  # id no longer matches
    return {"Authorization": authorization_header(event)}


def bad_signature(ctx: Ctx) -> dict[str, str]:
    event = ctx.sign()
    sig = str(event["sig"])
    event["sig"] = ("0" if sig[0] != "0" else "1") + sig[1:]
    return {"Authorization": authorization_header(event)}


Case = Callable[[Ctx], tuple[dict[str, str], bytes]]
CASES: dict[str, tuple[str, Case]] = {
    "unsigned": ("auth-required", lambda ctx: ({}, BODY)),
    "not-nostr-scheme": (
        "invalid-authorization",
        lambda ctx: ({"Authorization": "Bearer abc"}, BODY),
    ),
    "garbage-base64": (
        "invalid-authorization",
        lambda ctx: ({"Authorization": "Nostr !!!not-base64!!!"}, BODY),
    ),
    "base64-not-json": (
        "invalid-authorization",
        lambda ctx: ({"Authorization": "Nostr " + base64.b64encode(b"nope").decode()}, BODY),
    ),
    "tampered-event": ("invalid-auth-event", lambda ctx: (tampered(ctx), BODY)),
    "bad-signature": ("invalid-auth-event", lambda ctx: (bad_signature(ctx), BODY)),
    "stale-created-at": (
        "stale-auth-event",
        lambda ctx: (
            {"Authorization": authorization_header(ctx.sign(created_at=int(time.time()) - 120))},
            BODY,
        ),
    ),
    "future-created-at": (
        "stale-auth-event",
        lambda ctx: (
            {"Authorization": authorization_header(ctx.sign(created_at=int(time.time()) + 120))},
            BODY,
        ),
    ),
    "u-tag-other-port": (
        "auth-url-tag-mismatch",
        lambda ctx: (
            {"Authorization": authorization_header(ctx.sign(url=other_port(ctx.url)))},
            BODY,
        ),
    ),
    "u-tag-with-query": (
        "auth-url-tag-mismatch",
        lambda ctx: ({"Authorization": authorization_header(ctx.sign(url=ctx.url + "?x=1"))}, BODY),
    ),
    "method-tag-get": (
        "auth-method-tag-mismatch",
        lambda ctx: ({"Authorization": authorization_header(ctx.sign(method="GET"))}, BODY),
    ),
    "payload-mismatch": (
        "auth-payload-mismatch",
        lambda ctx: (
            {"Authorization": authorization_header(ctx.sign())},
            json.dumps({"method": "diagnostics", "params": {}}).encode(),
        ),
    ),
    "key-not-allowlisted": (
        "forbidden-pubkey",
        lambda ctx: (
            {"Authorization": authorization_header(ctx.sign(key=AdminKey.generate()))},
            BODY,
        ),
    ),
    # The checks run in the contract's order: the first failing one is answered.
    "stale-and-forbidden": (
        "stale-auth-event",
        lambda ctx: (
            {
                "Authorization": authorization_header(
                    ctx.sign(key=AdminKey.generate(), created_at=int(time.time()) - 120)
                )
            },
            BODY,
        ),
    ),
    "wrong-url-and-method": (
        "auth-url-tag-mismatch",
        lambda ctx: (
            {
                "Authorization": authorization_header(
                    ctx.sign(url=other_port(ctx.url), method="GET")
                )
            },
            BODY,
        ),
    ),
    # The u tag names the node's own admin URL, never what the client's Host header says.
    "u-tag-and-host-arbitrary": (
        "auth-url-tag-mismatch",
        lambda ctx: (
            {
                "Authorization": authorization_header(
                    ctx.sign(url=f"http://{ARBITRARY_HOST}/api/admin/management")
                ),
                "Host": ARBITRARY_HOST,
            },
            BODY,
        ),
    ),
}
# The contract clause (docs/requirements.yaml) each case asserts.
CASE_REQS = {
    "unsigned": "AUTH-1",
    "not-nostr-scheme": "AUTH-2",
    "garbage-base64": "AUTH-2",
    "base64-not-json": "AUTH-2",
    "tampered-event": "AUTH-3",
    "bad-signature": "AUTH-3",
    "stale-created-at": "AUTH-4",
    "future-created-at": "AUTH-4",
    "u-tag-other-port": "AUTH-5",
    "u-tag-with-query": "AUTH-5",
    "method-tag-get": "AUTH-6",
    "payload-mismatch": "AUTH-7",
    "key-not-allowlisted": "AUTH-8",
    "stale-and-forbidden": "AUTH-11",
    "wrong-url-and-method": "AUTH-11",
    "u-tag-and-host-arbitrary": "AUTH-12",
}


@pytest.fixture(scope="module")
def ctx(cluster: JoinedCluster) -> Ctx:
    return Ctx(cluster.fleet.management_url(NODE), cluster.fleet.admin_key)


def post(url: str, headers: dict[str, str], body: bytes) -> httpx.Response:
    return httpx.post(
        url, content=body, headers={"Content-Type": "application/json", **headers}, timeout=10
    )


def assert_refused(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, (code, response.status_code, response.text)
    body = response.json()
    parse_payload(ManagementResponse, body, source=f"node {NODE} refusal")
    assert body["ok"] is False and body["error"] == code, body
    assert body.get("message"), body
    assert ErrorCode(code).http_status == status


# Literal ids: tribes-qa requirements reads marks without running the tests.
@pytest.mark.req(
    "AUTH-1",
    "AUTH-2",
    "AUTH-3",
    "AUTH-4",
    "AUTH-5",
    "AUTH-6",
    "AUTH-7",
    "AUTH-8",
    "AUTH-11",
    "AUTH-12",
)
@pytest.mark.parametrize("case", sorted(CASES))
def test_nip98_rejection(ctx: Ctx, case: str) -> None:
    code, build = CASES[case]
    headers, body = build(ctx)
    assert_refused(post(ctx.url, headers, body), 401, code)


def test_every_nip98_code_is_covered() -> None:
    from tribesqa.clients.nip98 import NIP98_CODES

    covered = {code for code, _ in CASES.values()} | {"replayed-auth-event"}
    assert covered == set(NIP98_CODES)


def test_every_case_names_its_requirement() -> None:
    assert sorted(CASE_REQS) == sorted(CASES)


@pytest.mark.req("AUTH-9")
def test_replay_of_the_exact_request_is_refused(ctx: Ctx) -> None:
    headers = {"Authorization": authorization_header(ctx.sign())}
    first = post(ctx.url, headers, BODY)
    assert first.status_code == 200 and first.json()["ok"] is True, first.text
    assert_refused(post(ctx.url, headers, BODY), 401, "replayed-auth-event")


@pytest.mark.req("AUTH-10")
def test_a_refused_event_does_not_enter_the_replay_cache(ctx: Ctx) -> None:
    headers = {"Authorization": authorization_header(ctx.sign())}
    other_body = json.dumps({"method": "node.info", "params": {"x": 1}}).encode()
    assert_refused(post(ctx.url, headers, other_body), 401, "auth-payload-mismatch")
    accepted = post(ctx.url, headers, BODY)
    assert accepted.status_code == 200 and accepted.json()["ok"] is True, accepted.text


@pytest.mark.req("AUTH-12")
@pytest.mark.parametrize("forge_host", [False, True])
def test_an_event_for_another_node_is_refused_whatever_the_host_header(
    cluster: JoinedCluster, ctx: Ctx, forge_host: bool
) -> None:
    """Signed for NODE's admin URL, sent to OTHER (with Host: NODE's host:port or not)."""
    headers = {"Authorization": authorization_header(ctx.sign())}
    if forge_host:
        headers["Host"] = urlsplit(ctx.url).netloc
    response = post(cluster.fleet.management_url(OTHER), headers, BODY)
    assert response.status_code == 401 and response.json()["error"] == "auth-url-tag-mismatch", (
        response.text
    )


def test_signed_but_invalid_requests_get_400(cluster: JoinedCluster, ctx: Ctx) -> None:
    fleet = cluster.fleet
    assert_refused(fleet.post_management(NODE, "no.such.method"), 400, "unknown-method")
    assert_refused(
        fleet.post_management(NODE, "rollout.status", {"job_id": 7}), 400, "invalid-params"
    )
    assert_refused(
        fleet.post_management(NODE, "rollout.preview", {"plugins": "supertest"}),
        400,
        "invalid-params",
    )
    assert_refused(
        fleet.post_management(NODE, "node.info", ["not", "an", "object"]), 400, "invalid-params"
    )
    # params must be an object when present: an empty list is not "no params".
    assert_refused(fleet.post_management(NODE, "node.info", []), 400, "invalid-params")
    null_params = b'{"method": "node.info", "params": null}'
    signed = {"Authorization": authorization_header(ctx.sign(body=null_params))}
    assert post(ctx.url, signed, null_params).status_code == 200
    for envelope in (b'{"method": ""}', b'{"params": {}}', b'["node.info"]'):
        signed = {"Authorization": authorization_header(ctx.sign(body=envelope))}
        assert_refused(post(ctx.url, signed, envelope), 400, "invalid-payload")
    not_json = b"{this is not json"
    signed = {"Authorization": authorization_header(ctx.sign(body=not_json))}
    assert_refused(post(ctx.url, signed, not_json), 400, "invalid-payload")
