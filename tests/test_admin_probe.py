"""The security suite's bad requests have exactly the flaw they claim (judged by the library's
own NIP-98 verifier, no node involved), and refusals are judged and worded as the contract says."""

from __future__ import annotations

import pytest

from tribesqa.checks.refusal import refusal_problem
from tribesqa.clients.admin_probe import (
    CHECK_CODES,
    FLAWS,
    PROBE_BODY,
    bad_request,
    failing_from,
    header_for,
    host_port,
    signed,
)
from tribesqa.clients.keys import AdminKey
from tribesqa.clients.nip98 import NIP98_CODES, Nip98Error, Nip98Verifier

ADMIN = AdminKey.from_hex("67dea2ed018072d675f5415ecfaed7d2597555e202d85b3d65ea4e58d2d92ffa")
ENDPOINT = "http://127.0.0.1:21001/api/admin/management"


def _refusal(headers: dict[str, str], body: bytes) -> str:
    with pytest.raises(Nip98Error) as caught:
        Nip98Verifier([ADMIN.pubkey_hex]).verify(
            headers.get("authorization"), ENDPOINT, "POST", body
        )
    return caught.value.code


@pytest.mark.parametrize("flaw", FLAWS)
def test_each_bad_request_fails_exactly_its_check(flaw: str) -> None:
    request = bad_request(flaw, ADMIN, ENDPOINT)
    assert _refusal(request.headers, request.body) == request.expected
    assert request.expected in NIP98_CODES


def test_a_probe_without_its_flaw_is_accepted() -> None:
    headers = header_for(signed(ADMIN, ENDPOINT))
    verifier = Nip98Verifier([ADMIN.pubkey_hex])
    assert (
        verifier.verify(headers["authorization"], ENDPOINT, "POST", PROBE_BODY) == ADMIN.pubkey_hex
    )


@pytest.mark.req("AUTH-11")
@pytest.mark.parametrize("check", range(3, 9))
def test_a_chained_probe_is_refused_by_its_first_check(check: int) -> None:
    request = failing_from(check, ENDPOINT)
    assert request.expected == CHECK_CODES[check]
    assert _refusal(request.headers, request.body) == CHECK_CODES[check]


def test_unknown_flaws_and_checks_are_named() -> None:
    with pytest.raises(ValueError, match="unknown bad request 'too old'; known: no authorization"):
        bad_request("too old", ADMIN, ENDPOINT)
    with pytest.raises(ValueError, match="check 9: the chained probes cover checks 3 to 8"):
        failing_from(9, ENDPOINT)


def test_host_port_names_the_default_port() -> None:
    assert host_port("https://node.example/api") == "node.example:443"
    assert host_port("http://127.0.0.1:8080/x") == "127.0.0.1:8080"


def test_refusal_judgement_and_wording() -> None:
    sent, expected = "a replayed NIP-98 event", "replayed-auth-event"
    refused = {"ok": False, "error": expected, "message": "used before"}
    assert refusal_problem("hetzner-1", "node.info", 401, refused, expected, sent=sent) is None
    assert refusal_problem("hetzner-1", "node.info", 200, {"ok": True}, expected, sent=sent) == (
        "node hetzner-1 accepted a replayed NIP-98 event for node.info (HTTP 200), "
        "expected 401 replayed-auth-event"
    )
    other = {"ok": False, "error": "forbidden-pubkey", "message": "not allowed"}
    assert refusal_problem("ovh-1", "node.info", 401, other, expected, sent=sent) == (
        "node ovh-1 refused a replayed NIP-98 event for node.info with HTTP 401 forbidden-pubkey, "
        "expected 401 replayed-auth-event (not allowed)"
    )
    assert refusal_problem("ovh-1", "node.info", 403, "<html>", expected, sent=sent) == (
        "node ovh-1 refused a replayed NIP-98 event for node.info with HTTP 403 a body that is "
        "not a JSON object, expected 401 replayed-auth-event (<html>)"
    )
