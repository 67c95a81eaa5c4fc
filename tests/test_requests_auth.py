"""NIP-98 for ``requests`` (RequestsLibrary sessions): what is signed is what is sent.

Requests are prepared by a real ``requests.Session`` the way RequestsLibrary does it (base URL
joined with a path, ``params=``, ``json=``/``data=``) and checked with the library's verifier
against the URL, method and body the session would put on the wire.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json

import pytest
import requests

from tribesqa.clients.keys import AdminKey
from tribesqa.clients.nip98 import Nip98Error, Nip98Verifier
from tribesqa.clients.requests_auth import Nip98RequestsAuth, UnsignableBodyError

NOW = 1_700_000_000
BASE = "http://127.0.0.1:21001"
ADMIN = AdminKey.from_hex("67dea2ed018072d675f5415ecfaed7d2597555e202d85b3d65ea4e58d2d92ffa")


def _prepared(method: str, path: str, **kwargs: object) -> requests.PreparedRequest:
    session = requests.Session()
    session.auth = Nip98RequestsAuth(ADMIN, clock=lambda: NOW)
    return session.prepare_request(requests.Request(method, f"{BASE}{path}", **kwargs))


def _event(prepared: requests.PreparedRequest) -> dict[str, object]:
    scheme, token = prepared.headers["Authorization"].split(" ", 1)
    assert scheme == "Nostr"
    return json.loads(base64.b64decode(token))


def _verify(prepared: requests.PreparedRequest, url: str | None = None) -> str:
    body = prepared.body if isinstance(prepared.body, bytes) else (prepared.body or "").encode()
    verifier = Nip98Verifier([ADMIN.pubkey_hex], clock=lambda: NOW)
    return verifier.verify(
        prepared.headers["Authorization"], url or str(prepared.url), str(prepared.method), body
    )


def test_a_json_post_signs_the_full_url_method_and_body_hash() -> None:
    prepared = _prepared(
        "post",
        "/api/admin/management",
        json={"method": "cluster_status", "params": {}},
        params={"probe": "1", "note": "a b"},
    )
    assert prepared.url == f"{BASE}/api/admin/management?probe=1&note=a+b"
    tags = {tag[0]: tag[1] for tag in _event(prepared)["tags"]}  # type: ignore[union-attr]
    assert tags["u"] == prepared.url
    assert tags["method"] == "POST"
    assert isinstance(prepared.body, bytes)
    assert tags["payload"] == hashlib.sha256(prepared.body).hexdigest()
    assert _verify(prepared) == ADMIN.pubkey_hex


def test_the_node_refuses_it_for_any_other_url() -> None:
    prepared = _prepared("post", "/api/admin/management", json={"method": "x"}, params={"a": "1"})
    with pytest.raises(Nip98Error) as caught:
        _verify(prepared, url=f"{BASE}/api/admin/management")
    assert caught.value.code == "auth-url-tag-mismatch"


def test_a_text_body_and_an_empty_body_are_signed_as_sent() -> None:
    text = _prepared("put", "/x", data="héllo")
    assert _verify(text) == ADMIN.pubkey_hex
    empty = _prepared("get", "/healthz")
    assert empty.body is None
    assert "payload" not in {tag[0] for tag in _event(empty)["tags"]}  # type: ignore[union-attr]
    assert _verify(empty) == ADMIN.pubkey_hex


def test_two_sends_of_one_call_are_two_events() -> None:
    first = _prepared("post", "/m", json={"method": "x"})
    second = _prepared("post", "/m", json={"method": "x"})
    assert _event(first)["id"] != _event(second)["id"]


def test_a_streamed_body_is_refused_with_the_request_named() -> None:
    with pytest.raises(UnsignableBodyError) as caught:
        _prepared("post", "/api/admin/management", data=io.BytesIO(b"{}"))
    assert f"POST {BASE}/api/admin/management" in str(caught.value)


def test_only_the_public_key_is_ever_shown() -> None:
    auth = Nip98RequestsAuth(ADMIN)
    shown = f"{auth!r} {auth!s} {auth.__dict__!r}"
    assert ADMIN.pubkey_hex in repr(auth)
    assert ADMIN.secret_hex() not in shown
    assert ADMIN.secret_nsec() not in shown
