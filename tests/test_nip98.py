"""NIP-98: signing through httpx, verification, each rejection code, replay cache, speed."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tribesqa.clients.keys import AdminKey, schnorr_verify
from tribesqa.clients.nip98 import (
    NIP98_CODES,
    NIP98_KIND,
    Nip98Auth,
    Nip98Error,
    Nip98Verifier,
    authorization_for,
    authorization_header,
    build_auth_event,
    compute_event_id,
    parse_authorization_header,
)

NOW = 1_700_000_000
URL = "http://127.0.0.1:21001/api/admin/management?dry_run=1&note=a%20b"
BODY = b'{"method":"node.info","params":{}}'
ADMIN = AdminKey.from_hex("67dea2ed018072d675f5415ecfaed7d2597555e202d85b3d65ea4e58d2d92ffa")
STRANGER = AdminKey.from_hex("11" * 32)


class FakeClock:
    """A settable server clock."""

    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _verifier(**options: Any) -> Nip98Verifier:
    options.setdefault("clock", FakeClock())
    return Nip98Verifier([ADMIN.pubkey_hex], **options)


def _decode(header: str) -> dict[str, Any]:
    return json.loads(base64.b64decode(header.removeprefix("Nostr ")))


def _resign(event: dict[str, Any], key: AdminKey = ADMIN) -> dict[str, Any]:
    """Recompute id and signature after a test edits an event's fields."""
    event = {**event, "pubkey": key.pubkey_hex}
    event["id"] = compute_event_id(
        event["pubkey"], event["created_at"], event["kind"], event["tags"], event["content"]
    )
    event["sig"] = key.sign(bytes.fromhex(event["id"])).hex()
    return event


def _header(url: str = URL, method: str = "POST", body: bytes = BODY, at: int = NOW) -> str:
    return authorization_for(ADMIN, url, method, body, created_at=at)


# --------------------------------------------------------------------------- event building


def test_build_auth_event_follows_nip98_and_nip01() -> None:
    event = build_auth_event(ADMIN, URL, "post", BODY, created_at=NOW, nonce=False)
    assert event["kind"] == NIP98_KIND == 27235
    assert event["content"] == ""
    assert event["pubkey"] == ADMIN.pubkey_hex
    assert event["created_at"] == NOW
    assert event["tags"] == [
        ["u", URL],
        ["method", "POST"],
        ["payload", hashlib.sha256(BODY).hexdigest()],
    ]
    assert event["id"] == compute_event_id(ADMIN.pubkey_hex, NOW, 27235, event["tags"], "")
    assert schnorr_verify(ADMIN.pubkey, bytes.fromhex(event["id"]), bytes.fromhex(event["sig"]))


def test_empty_body_has_no_payload_tag() -> None:
    event = build_auth_event(ADMIN, URL, "GET", b"", created_at=NOW, nonce=False)
    assert [tag[0] for tag in event["tags"]] == ["u", "method"]


def test_nonce_tag_makes_identical_requests_distinct() -> None:
    first, second = (build_auth_event(ADMIN, URL, "POST", BODY, created_at=NOW) for _ in "ab")
    assert first["tags"][:3] == second["tags"][:3]
    assert first["tags"][3][0] == "nonce"
    assert first["id"] != second["id"]
    same = [build_auth_event(ADMIN, URL, "POST", BODY, NOW, nonce=False)["id"] for _ in "ab"]
    assert same[0] == same[1]


def test_event_id_matches_an_externally_signed_nip01_event() -> None:
    # A real signed event from another Nostr implementation (kind 96024, 64-zero content).
    pubkey = "2e7b0e5aae374d0ed1fab6cc877a969716ea48a710176a035398635e5d660dc1"
    event_id = compute_event_id(pubkey, 0, 96024, [], "0" * 64)
    assert event_id == "54ffbfbb8a4f76991c9f2401943b9b4d4f10084863ec7ea538bad2ded3d56892"
    signature = bytes.fromhex(
        "a35749d6174451de16fb286096858cb33d7b66c9583024fd2a5cd7b57a763ec8"
        "5d99ddb0711044498c362be7c82e524a9845e09f634bbf11d87fccc2bcfe2202"
    )
    assert schnorr_verify(bytes.fromhex(pubkey), bytes.fromhex(event_id), signature)


def test_event_id_hashes_non_ascii_as_raw_utf8() -> None:
    # NIP-01 serializes characters verbatim (ensure_ascii=False), not as \u escapes.
    raw = '[0,"ab",1,1,[["u","https://ex.ample/é"]],"ü"]'.encode()
    assert compute_event_id("ab", 1, 1, [["u", "https://ex.ample/é"]], "ü") == (
        hashlib.sha256(raw).hexdigest()
    )


# --------------------------------------------------------------------------- httpx round trip


@dataclass
class Captured:
    """The request a MockTransport saw."""

    request: httpx.Request | None = None


def _capturing_transport(captured: Captured) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        captured.request = request
        return httpx.Response(200, json={"ok": True, "result": {}})

    return httpx.MockTransport(handler)


def _verify_captured(captured: Captured) -> str:
    request = captured.request
    assert request is not None
    return _verifier().verify(
        request.headers.get("Authorization"), str(request.url), request.method, request.content
    )


def test_signed_httpx_request_verifies_against_url_with_query_method_and_body() -> None:
    captured = Captured()
    auth = Nip98Auth(ADMIN, clock=lambda: NOW)
    with httpx.Client(transport=_capturing_transport(captured), auth=auth) as client:
        response = client.post(URL, content=BODY)
    assert response.status_code == 200
    assert _verify_captured(captured) == ADMIN.pubkey_hex
    assert captured.request is not None
    event = _decode(captured.request.headers["Authorization"])
    assert ["u", URL] in event["tags"]  # exact URL including the query string
    assert ["payload", hashlib.sha256(BODY).hexdigest()] in event["tags"]


def test_params_and_streamed_body_are_signed_as_sent() -> None:
    captured = Captured()
    chunks = [b'{"method":', b'"sync.status"}']
    with httpx.Client(transport=_capturing_transport(captured)) as client:
        client.post(
            "http://127.0.0.1:21001/api/admin/management",
            params={"a": "1 2"},
            content=iter(chunks),
            auth=Nip98Auth(ADMIN, clock=lambda: NOW),
        )
    assert captured.request is not None
    event = _decode(captured.request.headers["Authorization"])
    assert event["tags"][0] == ["u", "http://127.0.0.1:21001/api/admin/management?a=1+2"]
    assert event["tags"][2] == ["payload", hashlib.sha256(b"".join(chunks)).hexdigest()]
    assert _verify_captured(captured) == ADMIN.pubkey_hex


def test_async_client_get_is_signed_without_payload_tag() -> None:
    captured = Captured()

    async def send() -> int:
        auth = Nip98Auth(ADMIN, clock=lambda: NOW)
        async with httpx.AsyncClient(transport=_capturing_transport(captured), auth=auth) as client:
            return (await client.get(URL)).status_code

    assert asyncio.run(send()) == 200
    assert _verify_captured(captured) == ADMIN.pubkey_hex
    assert captured.request is not None
    tag_names = [tag[0] for tag in _decode(captured.request.headers["Authorization"])["tags"]]
    assert tag_names == ["u", "method", "nonce"]


def test_each_request_gets_a_fresh_event() -> None:
    captured_headers: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        captured_headers.append(request.headers["Authorization"])
        return httpx.Response(200)

    auth = Nip98Auth(ADMIN, clock=lambda: NOW)
    with httpx.Client(transport=httpx.MockTransport(handler), auth=auth) as client:
        client.post(URL, content=BODY)
        client.post(URL, content=BODY)
    verifier = _verifier()
    for header in captured_headers:  # same content, but distinct ids: no false replay
        assert verifier.verify(header, URL, "POST", BODY) == ADMIN.pubkey_hex


# --------------------------------------------------------------------------- rejection codes


def _bad_signature() -> str:
    event = build_auth_event(ADMIN, URL, "POST", BODY, created_at=NOW)
    event["sig"] = event["sig"][:-2] + ("00" if event["sig"][-2:] != "00" else "01")
    return authorization_header(event)


# code -> (authorization header, url, method, body, verifier options)
REJECTIONS: dict[str, Callable[[], tuple[str | None, str, str, bytes, dict[str, Any]]]] = {
    "auth-required": lambda: (None, URL, "POST", BODY, {}),
    "invalid-authorization": lambda: ("Nostr not*base64", URL, "POST", BODY, {}),
    "invalid-auth-event": lambda: (_bad_signature(), URL, "POST", BODY, {}),
    "stale-auth-event": lambda: (_header(at=NOW - 61), URL, "POST", BODY, {}),
    "auth-url-tag-mismatch": lambda: (_header(), URL.partition("?")[0], "POST", BODY, {}),
    "auth-method-tag-mismatch": lambda: (_header(method="PUT"), URL, "POST", BODY, {}),
    "auth-payload-mismatch": lambda: (_header(), URL, "POST", BODY + b" ", {}),
    "forbidden-pubkey": lambda: (
        authorization_for(STRANGER, URL, "POST", BODY, created_at=NOW),
        URL,
        "POST",
        BODY,
        {},
    ),
    "replayed-auth-event": lambda: (_header(), URL, "POST", BODY, {"used_once": True}),
}


def test_rejection_table_covers_every_code_once() -> None:
    assert tuple(REJECTIONS) == NIP98_CODES
    assert len(set(NIP98_CODES)) == 9


# Literal ids: tribes-qa requirements reads marks without running the tests.
@pytest.mark.req(
    "AUTH-1", "AUTH-2", "AUTH-3", "AUTH-4", "AUTH-5", "AUTH-6", "AUTH-7", "AUTH-8", "AUTH-9"
)
@pytest.mark.parametrize("code", NIP98_CODES)
def test_each_rejection_code(code: str) -> None:
    header, url, method, body, options = REJECTIONS[code]()
    verifier = _verifier()
    if options.get("used_once"):
        assert verifier.verify(header, url, method, body) == ADMIN.pubkey_hex
    with pytest.raises(Nip98Error) as caught:
        verifier.verify(header, url, method, body)
    assert caught.value.code == code
    assert caught.value.http_status == 401
    assert str(caught.value).startswith(f"{code}: ")


@pytest.mark.req("AUTH-1")
@pytest.mark.parametrize(
    "header",
    [
        "",
        "   ",
    ],
)
def test_blank_header_is_auth_required(header: str) -> None:
    with pytest.raises(Nip98Error) as caught:
        _verifier().verify(header, URL, "POST", BODY)
    assert caught.value.code == "auth-required"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.mark.req("AUTH-2")
@pytest.mark.parametrize(
    "header",
    [
        "Bearer abc",
        "Nostr",
        "Nostr " + _b64(b"[1, 2]"),
        "Nostr " + _b64(b"{not json"),
        "Nostr " + _b64(b"\xff\xfe"),
        "Nostr " + "A" * 70_000,
    ],
    ids=["scheme", "no-token", "json-array", "not-json", "not-utf8", "huge"],
)
def test_malformed_authorization_is_invalid_authorization(header: str) -> None:
    with pytest.raises(Nip98Error) as caught:
        _verifier().verify(header, URL, "POST", BODY)
    assert caught.value.code == "invalid-authorization"


def _edited(**changes: Any) -> str:
    event = build_auth_event(ADMIN, URL, "POST", BODY, created_at=NOW)
    event.update(changes)
    return authorization_header(event)


def _without(field: str) -> str:
    event = build_auth_event(ADMIN, URL, "POST", BODY, created_at=NOW)
    del event[field]
    return authorization_header(event)


def _lone_surrogate_content() -> str:
    # ASCII JSON may carry an escaped lone surrogate, which has no UTF-8 form to hash.
    event = {**build_auth_event(ADMIN, URL, "POST", BODY, created_at=NOW), "content": "\ud800"}
    return "Nostr " + _b64(json.dumps(event).encode("ascii"))


@pytest.mark.req("AUTH-3")
@pytest.mark.parametrize(
    "header",
    [
        authorization_header(
            _resign({**build_auth_event(ADMIN, URL, "POST", BODY, created_at=NOW), "kind": 1})
        ),
        _edited(tags=[["u", URL], ["method", "POST"]]),  # content changed, id kept
        _edited(created_at=True),
        _edited(created_at=str(NOW)),
        _edited(pubkey=ADMIN.pubkey_hex.upper()),
        _edited(tags=[["u", 5]]),
        _edited(content=None),
        authorization_header(
            _resign({**build_auth_event(ADMIN, URL, "POST", BODY, created_at=NOW), "content": "hi"})
        ),
        _without("sig"),
        _without("id"),
        authorization_header(
            {
                **_resign(build_auth_event(ADMIN, URL, "POST", BODY, created_at=NOW), STRANGER),
                "pubkey": ADMIN.pubkey_hex,
            }
        ),
        _lone_surrogate_content(),
    ],
    ids=[
        "kind",
        "id-mismatch",
        "bool-created-at",
        "str-created-at",
        "upper-pubkey",
        "tag-not-string",
        "content-null",
        "content-not-empty",
        "no-sig",
        "no-id",
        "signed-by-other-key",
        "lone-surrogate",
    ],
)
def test_malformed_or_tampered_event_is_invalid_auth_event(header: str) -> None:
    with pytest.raises(Nip98Error) as caught:
        _verifier().verify(header, URL, "POST", BODY)
    assert caught.value.code == "invalid-auth-event"


@pytest.mark.req("AUTH-4")
def test_skew_window_is_inclusive_both_ways() -> None:
    for created_at in (NOW - 60, NOW + 60):
        assert _verifier().verify(_header(at=created_at), URL, "POST", BODY) == ADMIN.pubkey_hex
    with pytest.raises(Nip98Error, match="stale-auth-event"):
        _verifier().verify(_header(at=NOW + 61), URL, "POST", BODY)
    assert _verifier(max_skew_s=120).verify(_header(at=NOW - 100), URL, "POST", BODY)


@pytest.mark.req("AUTH-7")
def test_missing_payload_tag_with_body_is_payload_mismatch() -> None:
    header = _header(body=b"")
    assert _verifier().verify(header, URL, "POST", None) == ADMIN.pubkey_hex
    with pytest.raises(Nip98Error) as caught:
        _verifier().verify(header, URL, "POST", BODY)
    assert caught.value.code == "auth-payload-mismatch"
    assert "missing" in caught.value.message


@pytest.mark.req("AUTH-11")
def test_checks_run_in_contract_order() -> None:
    # Stale and for the wrong URL and from a stranger: staleness is reported first.
    header = authorization_for(STRANGER, URL + "&x", "GET", b"", created_at=NOW - 500)
    with pytest.raises(Nip98Error) as caught:
        _verifier().verify(header, URL, "POST", BODY)
    assert caught.value.code == "stale-auth-event"


def test_unknown_code_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unknown NIP-98 error code"):
        Nip98Error("nope", "x")


def test_parse_authorization_header_returns_the_event() -> None:
    event = build_auth_event(ADMIN, URL, "POST", BODY, created_at=NOW)
    assert parse_authorization_header(authorization_header(event)) == event
    assert parse_authorization_header("nostr " + authorization_header(event)[6:]) == event


# --------------------------------------------------------------------------- allowlist


@pytest.mark.req("AUTH-8")
def test_allow_and_revoke_change_who_is_accepted() -> None:
    verifier = _verifier()
    stranger_header = authorization_for(STRANGER, URL, "POST", BODY, created_at=NOW)
    verifier.allow(STRANGER.npub)
    assert verifier.allowed == {ADMIN.pubkey_hex, STRANGER.pubkey_hex}
    assert verifier.verify(stranger_header, URL, "POST", BODY) == STRANGER.pubkey_hex
    verifier.revoke(ADMIN.pubkey_hex)
    with pytest.raises(Nip98Error, match="forbidden-pubkey"):
        verifier.verify(_header(), URL, "POST", BODY)
    with pytest.raises(ValueError, match="64 hex"):
        verifier.allow("not-a-key")


# --------------------------------------------------------------------------- replay cache


@pytest.mark.req("AUTH-9")
def test_replay_rejected_on_second_use_but_accepted_without_protection() -> None:
    header = _header()
    protected = _verifier()
    assert protected.verify(header, URL, "POST", BODY) == ADMIN.pubkey_hex
    with pytest.raises(Nip98Error, match="replayed-auth-event"):
        protected.verify(header, URL, "POST", BODY)

    unprotected = _verifier(replay_protection=False)
    for _ in range(3):
        assert unprotected.verify(header, URL, "POST", BODY) == ADMIN.pubkey_hex
    assert unprotected.replay_cache_len == 0


@pytest.mark.req("AUTH-10")
def test_rejected_request_does_not_burn_the_event_id() -> None:
    verifier, header = _verifier(), _header()
    with pytest.raises(Nip98Error, match="auth-payload-mismatch"):
        verifier.verify(header, URL, "POST", b"tampered")
    assert verifier.verify(header, URL, "POST", BODY) == ADMIN.pubkey_hex


def test_replay_cache_forgets_ids_once_they_would_be_stale() -> None:
    clock = FakeClock()
    verifier = _verifier(clock=clock)
    verifier.verify(_header(at=NOW), URL, "POST", BODY)
    verifier.verify(_header(at=NOW + 30), URL, "POST", BODY)
    assert verifier.replay_cache_len == 2
    clock.now = NOW + 61  # the first id is now outside the window; the second is not
    verifier.verify(_header(at=NOW + 61), URL, "POST", BODY)
    assert verifier.replay_cache_len == 2
    clock.now = NOW + 200
    verifier.verify(_header(at=NOW + 200), URL, "POST", BODY)
    assert verifier.replay_cache_len == 1


def test_replay_cache_is_bounded() -> None:
    verifier = _verifier(replay_cache_size=3)
    headers = [_header(at=NOW - offset) for offset in range(5)]
    for header in headers:
        verifier.verify(header, URL, "POST", BODY)
    assert verifier.replay_cache_len == 3
    with pytest.raises(Nip98Error, match="replayed-auth-event"):
        verifier.verify(headers[0], URL, "POST", BODY)  # newest ids are the ones kept


class _SlowMembershipDict(dict[str, float]):
    """Replay-cache storage whose membership test yields the GIL, widening the race window."""

    def __contains__(self, key: object) -> bool:
        found = super().__contains__(key)
        time.sleep(0.001)  # any other thread now runs between "not seen" and "record"
        return found


@pytest.mark.req("AUTH-9")
def test_concurrent_replays_accept_exactly_once() -> None:
    threads = 16
    verifier, header = _verifier(), _header()
    # Without the lock around check-and-record every thread would pass the check before any
    # records the id; with it, exactly one wins.
    verifier._seen_expiry = _SlowMembershipDict()
    barrier = threading.Barrier(threads)

    def attempt(_: int) -> str:
        barrier.wait()
        try:
            return verifier.verify(header, URL, "POST", BODY)
        except Nip98Error as error:
            return error.code

    with ThreadPoolExecutor(max_workers=threads) as pool:
        outcomes = list(pool.map(attempt, range(threads)))
    assert outcomes.count(ADMIN.pubkey_hex) == 1
    assert outcomes.count("replayed-auth-event") == threads - 1
