"""Deliberately bad management requests: each must be refused by a node's admin API (401), and
the one sender of every hand-made management request (``send``), refused or not.

Every request asks for ``node.info`` (read-only), so the probes are safe on a real fleet even
when a node wrongly accepts one. Events come from the one signer (``nip98.build_auth_event``)
with exactly one thing wrong (or, for the check-order probes, everything from one check on);
where the flaw is inside the signed event it is re-signed, so only that flaw can be refused.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from tribesqa.clients.keys import AdminKey
from tribesqa.clients.nip98 import (
    NIP98_CODES,
    NIP98_KIND,
    authorization_header,
    build_auth_event,
)
from tribesqa.clients.nip98 import compute_event_id as _event_id

if TYPE_CHECKING:
    from tribesqa.clients.management_client import ManagementClient

PROBE_METHOD = "node.info"
PROBE_BODY = json.dumps({"method": PROBE_METHOD, "params": {}}, separators=(",", ":")).encode()
# A node.info body the probes' events are not signed for (params a node ignores or refuses).
OTHER_BODY = json.dumps(
    {"method": PROBE_METHOD, "params": {"probe": "a body the event was not signed for"}},
    separators=(",", ":"),
).encode()
# Far beyond the contract's 60 s window and any sane clock skew between runner and node.
STALE_BY_S = 600
# A host nobody owns (RFC 2606 .invalid): what an attacker would put in the u tag and Host.
ARBITRARY_HOST = "admin.attacker.invalid:8443"


@dataclass(frozen=True)
class BadRequest:
    """One request to send: what is wrong with it, in words, and the refusal the contract wants."""

    flaw: str
    expected: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


def signed(
    key: AdminKey, url: str, *, body: bytes = PROBE_BODY, method: str = "POST", **changes: Any
) -> dict[str, Any]:
    """A NIP-98 event for ``method url`` with ``body``, with ``changes`` applied and re-signed.

    ``changes`` may set ``created_at``, ``kind`` or ``content``; the id and signature are those
    of the changed event, so the node sees a well-signed event with exactly that change.
    """
    event = build_auth_event(key, url, method, body, created_at=changes.pop("created_at", None))
    if changes:
        event.update(changes)
        event["id"] = _event_id(
            event["pubkey"], event["created_at"], event["kind"], event["tags"], event["content"]
        )
        event["sig"] = key.sign(bytes.fromhex(event["id"])).hex()
    return event


def send(
    client: ManagementClient, body: bytes, headers: dict[str, str], *, what: str
) -> tuple[int, Any]:
    """POST ``body`` with exactly ``headers`` to the client's management endpoint.

    Returns (HTTP status, the JSON answer or at most 200 characters of its text); ``what``
    names the request if the node cannot be reached. With the client's recorder, the request
    goes into the run history as ``probe.<method>`` with its status and error code (the body's
    method and params only: the headers, signature and all, never reach the history).
    """

    def post() -> tuple[int, Any]:
        response = client.raw(body, headers, what=what)
        try:
            return response.status_code, response.json()
        except ValueError:
            return response.status_code, response.text[:200]

    if client.recorder is None:
        return post()
    return client.recorder.probe(client.node, body, post)


def with_bad_signature(event: dict[str, Any]) -> dict[str, Any]:
    """The same event with one signature nibble changed."""
    sig = str(event["sig"])
    return {**event, "sig": ("1" if sig[0] == "0" else "0") + sig[1:]}


def header_for(event: dict[str, Any], host: str | None = None) -> dict[str, str]:
    """Request headers carrying ``event`` (and a ``Host`` header when one is forced)."""
    headers = {"content-type": "application/json", "authorization": authorization_header(event)}
    if host is not None:
        headers["host"] = host
    return headers


def host_port(url: str) -> str:
    """``host:port`` of an absolute URL (the default port of its scheme when it names none)."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{parts.hostname}:{port}"


def _now() -> int:
    return int(time.time())


def bad_request(flaw: str, key: AdminKey, endpoint: str) -> BadRequest:
    """The probe named ``flaw`` (one of ``FLAWS``) for a node whose management URL is ``endpoint``."""
    builder = _BUILDERS.get(flaw)
    if builder is None:
        raise ValueError(f"unknown bad request {flaw!r}; known: {', '.join(FLAWS)}")
    return builder(key, endpoint)


def _no_authorization(key: AdminKey, url: str) -> BadRequest:
    return BadRequest(
        "a request without an Authorization header",
        "auth-required",
        PROBE_BODY,
        {"content-type": "application/json"},
    )


def _malformed(key: AdminKey, url: str) -> BadRequest:
    return BadRequest(
        "a malformed Authorization header ('Nostr' and no base64 event)",
        "invalid-authorization",
        PROBE_BODY,
        {"content-type": "application/json", "authorization": "Nostr !!not-base64!!"},
    )


def _wrong_kind(key: AdminKey, url: str) -> BadRequest:
    event = signed(key, url, kind=1)
    return BadRequest(
        f"a NIP-98 event of kind 1 (not {NIP98_KIND})",
        "invalid-auth-event",
        PROBE_BODY,
        header_for(event),
    )


def _content(key: AdminKey, url: str) -> BadRequest:
    event = signed(key, url, content="let me in")
    return BadRequest(
        "a NIP-98 event with non-empty content", "invalid-auth-event", PROBE_BODY, header_for(event)
    )


def _bad_signature(key: AdminKey, url: str) -> BadRequest:
    event = with_bad_signature(signed(key, url))
    return BadRequest(
        "a NIP-98 event with a bad signature", "invalid-auth-event", PROBE_BODY, header_for(event)
    )


def _created_long_ago(key: AdminKey, url: str) -> BadRequest:
    event = signed(key, url, created_at=_now() - STALE_BY_S)
    return BadRequest(
        f"a stale NIP-98 event (created_at {STALE_BY_S} s ago)",
        "stale-auth-event",
        PROBE_BODY,
        header_for(event),
    )


def _created_in_the_future(key: AdminKey, url: str) -> BadRequest:
    event = signed(key, url, created_at=_now() + STALE_BY_S)
    return BadRequest(
        f"a stale NIP-98 event (created_at {STALE_BY_S} s in the future)",
        "stale-auth-event",
        PROBE_BODY,
        header_for(event),
    )


def _another_url(key: AdminKey, url: str) -> BadRequest:
    other = url.rstrip("/") + "/elsewhere"
    return BadRequest(
        f"a NIP-98 event signed for another URL ({other})",
        "auth-url-tag-mismatch",
        PROBE_BODY,
        header_for(signed(key, other)),
    )


def _another_method(key: AdminKey, url: str) -> BadRequest:
    return BadRequest(
        "a POST with a NIP-98 event signed for method GET",
        "auth-method-tag-mismatch",
        PROBE_BODY,
        header_for(signed(key, url, method="GET", body=PROBE_BODY)),
    )


def _another_body(key: AdminKey, url: str) -> BadRequest:
    return BadRequest(
        "a NIP-98 event whose payload tag is not the sha256 of the body",
        "auth-payload-mismatch",
        OTHER_BODY,
        header_for(signed(key, url)),
    )


def _foreign_key(key: AdminKey, url: str) -> BadRequest:
    stranger = AdminKey.generate()
    return BadRequest(
        f"a NIP-98 event signed by a key not on the allowlist ({stranger.pubkey_hex[:16]}...)",
        "forbidden-pubkey",
        PROBE_BODY,
        header_for(signed(stranger, url)),
    )


def _arbitrary_host(key: AdminKey, url: str) -> BadRequest:
    parts = urlsplit(url)
    forged = f"{parts.scheme}://{ARBITRARY_HOST}{parts.path}"
    return BadRequest(
        f"a NIP-98 event whose u tag and Host header both name {ARBITRARY_HOST}",
        "auth-url-tag-mismatch",
        PROBE_BODY,
        header_for(signed(key, forged), host=ARBITRARY_HOST),
    )


_BUILDERS = {
    "no authorization": _no_authorization,
    "malformed authorization": _malformed,
    "wrong kind": _wrong_kind,
    "content": _content,
    "bad signature": _bad_signature,
    "created long ago": _created_long_ago,
    "created in the future": _created_in_the_future,
    "another url": _another_url,
    "another method": _another_method,
    "another body": _another_body,
    "key not on the allowlist": _foreign_key,
    "arbitrary host": _arbitrary_host,
}
FLAWS: tuple[str, ...] = tuple(_BUILDERS)


def failing_from(check: int, endpoint: str) -> BadRequest:
    """An event that fails every NIP-98 check from ``check`` (3-8, contract numbering) to 8.

    Checks 3 (bad signature), 4 (stale), 5 (another URL), 6 (another method), 7 (another body)
    and 8 (a key not on the allowlist): the node must answer the code of ``check``, the first
    that fails, whatever the later ones say.
    """
    if not 3 <= check <= 8:
        raise ValueError(f"check {check}: the chained probes cover checks 3 to 8")
    signer = AdminKey.generate()  # not on any allowlist: check 8 fails in every probe
    url = endpoint.rstrip("/") + "/elsewhere" if check <= 5 else endpoint
    method = "GET" if check <= 6 else "POST"
    created_at = _now() - STALE_BY_S if check <= 4 else None
    event = signed(signer, url, method=method, created_at=created_at)
    if check == 3:
        event = with_bad_signature(event)
    body = OTHER_BODY if check <= 7 else PROBE_BODY
    names = ["bad signature", "stale", "another URL", "another method", "another body", "key"]
    return BadRequest(
        f"a NIP-98 event failing check{'s ' + str(check) + '-8' if check < 8 else ' 8'} "
        f"({', '.join(names[check - 3 :])})",
        CHECK_CODES[check],
        body,
        header_for(event),
    )


# The contract's numbering of the NIP-98 checks (docs/contract.md, 1-9) -> their refusal codes.
CHECK_CODES: dict[int, str] = {number: code for number, code in enumerate(NIP98_CODES, start=1)}
