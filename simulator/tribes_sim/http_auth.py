"""NIP-98 HTTP authentication as a simulated node checks it, and as Legion signs its calls.

``Authorization: Nostr <base64 of a signed Nostr event>``; the event is kind 27235 with empty
content and the tags ``u`` (the exact absolute request URL, query included), ``method`` and, for a
request with a body, ``payload`` (sha256 hex of the body). Its id is NIP-01's (sha256 of the
compact JSON array ``[0, pubkey, created_at, kind, tags, content]``) and its signature is BIP-340
over the id. The checks, their order and the refusal codes are the admin API's, as
``docs/contract.md`` fixes them ("NIP-98 authentication"); each refusal is a 401. The URL the
``u`` tag is checked against is the node's canonical admin URL (its caller's business, see
``node/admin_api.py``), never one rebuilt from the request's ``Host`` header.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import secrets
import time
from collections.abc import Callable, Iterable
from typing import Any

from tribes_sim.schnorr_keys import SchnorrKey, verify_schnorr

AUTH_KIND = 27235

# The admin API's NIP-98 refusal codes, in the order its checks run (docs/contract.md).
REFUSAL_CODES = (
    "auth-required",
    "invalid-authorization",
    "invalid-auth-event",
    "stale-auth-event",
    "auth-url-tag-mismatch",
    "auth-method-tag-mismatch",
    "auth-payload-mismatch",
    "forbidden-pubkey",
    "replayed-auth-event",
)

# The checks a deliberate fault switches off (docs/faults.md), by fault name. Each one makes the
# node accept what the contract says it must refuse; ``host-header-trusted`` is the admin API's
# (which URL it checks the ``u`` tag against), not the verifier's.
SKIPPABLE_CHECKS = {
    "auth-optional": "header",
    "auth-signature-unchecked": "event",
    "stale-auth-accepted": "clock",
    "auth-url-unchecked": "url",
    "auth-method-unchecked": "method",
    "auth-payload-unchecked": "payload",
    "allowlist-open": "allowlist",
    "replay-accepted": "replay",
    # Present but malformed headers let through; a missing header is still refused (check 1).
    "malformed-authorization-accepted": "header-format",
}

# aiohttp caps a header near 8 KiB already; this bounds the work before any signature check.
_MAX_HEADER_CHARS = 16 * 1024
_HEX64 = re.compile(r"[0-9a-f]{64}")
_HEX128 = re.compile(r"[0-9a-f]{128}")


class AuthRefused(Exception):
    """A request the admin API refuses (401); ``code`` is one of ``REFUSAL_CODES``."""

    status = 401

    def __init__(self, code: str, message: str) -> None:
        assert code in REFUSAL_CODES, code
        super().__init__(message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def event_id(pubkey: str, created_at: int, kind: int, tags: list[list[str]], content: str) -> str:
    """NIP-01 id; raises UnicodeEncodeError for text that is not valid UTF-8 (lone surrogates)."""
    # NIP-01: no whitespace, UTF-8 characters as they are (not \u escapes).
    canonical = json.dumps(
        [0, pubkey, created_at, kind, tags, content], ensure_ascii=False, separators=(",", ":")
    )
    return sha256_hex(canonical.encode("utf-8"))


# -- Legion's side: signing ------------------------------------------------------------------
def signed_auth_event(
    key: SchnorrKey, url: str, method: str, body: bytes, created_at: int | None = None
) -> dict[str, Any]:
    """A NIP-98 event for one request.

    A random ``nonce`` tag (ignored by verifiers) keeps two identical requests in the same second
    apart: their ids would otherwise be equal and the second refused as a replay.
    """
    tags = [["u", url], ["method", method.upper()]]
    if body:
        tags.append(["payload", sha256_hex(body)])
    tags.append(["nonce", secrets.token_hex(8)])
    stamp = int(time.time()) if created_at is None else created_at
    pubkey = key.public_hex
    identifier = event_id(pubkey, stamp, AUTH_KIND, tags, "")
    return {
        "id": identifier,
        "pubkey": pubkey,
        "created_at": stamp,
        "kind": AUTH_KIND,
        "tags": tags,
        "content": "",
        "sig": key.sign(bytes.fromhex(identifier)).hex(),
    }


def authorization(key: SchnorrKey, url: str, method: str, body: bytes = b"") -> str:
    """The ``Authorization`` header value that signs ``method url`` with ``body``."""
    event = signed_auth_event(key, url, method, body)
    encoded = base64.b64encode(json.dumps(event, separators=(",", ":")).encode())
    return "Nostr " + encoded.decode("ascii")


# -- the node's side: verifying --------------------------------------------------------------
def _decode_header(header: str | None) -> dict[str, Any]:
    if header is None or not header.strip():
        raise AuthRefused("auth-required", "the request has no Authorization header")
    if len(header) > _MAX_HEADER_CHARS:
        raise AuthRefused("invalid-authorization", "the Authorization header is too long")
    parts = header.split()
    # Auth schemes are case-insensitive (RFC 7235).
    if len(parts) != 2 or parts[0].lower() != "nostr":
        raise AuthRefused("invalid-authorization", "expected 'Authorization: Nostr <base64>'")
    try:
        decoded = base64.b64decode(parts[1], validate=True)
        event = json.loads(decoded.decode("utf-8"))
    except (binascii.Error, UnicodeDecodeError):
        raise AuthRefused("invalid-authorization", "the token is not base64 of UTF-8") from None
    except (ValueError, RecursionError):
        raise AuthRefused("invalid-authorization", "the token is not a JSON event") from None
    if not isinstance(event, dict):
        raise AuthRefused("invalid-authorization", "the token is not a JSON object")
    return event


def _well_formed(event: dict[str, Any]) -> str | None:
    """Why ``event`` is not a well-formed NIP-98 event (kind, content, field shapes), or None."""
    kind = event.get("kind")
    if type(kind) is not int or kind != AUTH_KIND:  # a JSON true is not the integer 1
        return f"kind is {kind!r:.40}, not {AUTH_KIND}"
    if event.get("content") != "":
        return "content must be empty"
    return _shape_problem(event)


def _shape_problem(event: dict[str, Any]) -> str | None:
    """Why the fields the later checks read are not usable, or None."""
    for name, shape in (("id", _HEX64), ("pubkey", _HEX64), ("sig", _HEX128)):
        value = event.get(name)
        if not isinstance(value, str) or not shape.fullmatch(value):
            return f"{name} is not lowercase hex of the right length"
    if type(event.get("created_at")) is not int:
        return "created_at is not an integer"
    tags = event.get("tags")
    if not isinstance(tags, list) or not all(
        isinstance(tag, list) and all(isinstance(part, str) for part in tag) for tag in tags
    ):
        return "tags is not a list of lists of strings"
    return None


def _tag(tags: list[list[str]], name: str) -> str | None:
    """The value of the first ``name`` tag."""
    return next((tag[1] for tag in tags if len(tag) > 1 and tag[0] == name), None)


class HttpAuthVerifier:
    """The admin API's NIP-98 check for one node (one event loop: no locking needed)."""

    def __init__(
        self,
        allowed_pubkeys: Iterable[str],
        *,
        window_s: float = 60.0,
        clock: Callable[[], float] = time.time,
        skip: Iterable[str] = (),
        cache_before_checks: bool = False,
        allowlist_first: bool = False,
        replay_capacity: int = 50_000,
    ) -> None:
        self.allowed = {key.lower() for key in allowed_pubkeys}
        self.window_s = window_s
        self.clock = clock
        # Checks switched off, only by deliberate faults (values of ``SKIPPABLE_CHECKS``).
        self.skip = frozenset(skip)
        unknown = self.skip - set(SKIPPABLE_CHECKS.values())
        assert not unknown, unknown
        # On only for the deliberate ``refused-event-cached`` fault: an event id enters the
        # replay cache before checks 3-8, so an event refused once is refused ever after.
        self.cache_before_checks = cache_before_checks
        # On only for the deliberate ``allowlist-checked-first`` fault: check 8 (allowlist) runs
        # before check 3 (id and signature), so a forged event from a stranger is answered
        # forbidden-pubkey instead of invalid-auth-event.
        self.allowlist_first = allowlist_first
        self.replay_capacity = replay_capacity
        # event id -> the time after which the event is stale anyway and can be forgotten.
        self._used: dict[str, float] = {}

    def verify(self, header: str | None, url: str, method: str, body: bytes) -> str | None:
        """Return the signer's pubkey, or raise ``AuthRefused`` for the first failed check.

        ``url`` is the node's canonical URL of the request (its admin URL, path and query).
        None: a request without usable authorization let through by the ``auth-optional`` fault.
        """
        skip = self.skip
        try:
            event = _decode_header(header)
        except AuthRefused as refused:
            if "header" in skip:
                return None
            if "header-format" in skip and refused.code == "invalid-authorization":
                return None
            raise
        problem = _shape_problem(event) if "event" in skip else _well_formed(event)
        if problem:
            raise AuthRefused("invalid-auth-event", f"not a NIP-98 event: {problem}")
        pubkey, created_at, tags = event["pubkey"], event["created_at"], event["tags"]
        now = self.clock()
        if self.cache_before_checks and "replay" not in skip:
            self._use_once(event["id"], created_at + self.window_s, now)
        if self.allowlist_first and "allowlist" not in skip and pubkey not in self.allowed:
            raise AuthRefused("forbidden-pubkey", f"{pubkey} is not on this node's allowlist")
        if "event" not in skip:
            self._check_id_and_signature(event)
        if "clock" not in skip and abs(now - created_at) > self.window_s:
            raise AuthRefused(
                "stale-auth-event",
                f"created_at is {created_at - now:+.0f} s off this node's clock "
                f"(at most {self.window_s:g} s either way)",
            )
        signed_url = _tag(tags, "u")
        if "url" not in skip and signed_url != url:
            raise AuthRefused(
                "auth-url-tag-mismatch",
                f"signed for {signed_url!r:.200}, this node's URL is {url!r:.200}",
            )
        signed_method = _tag(tags, "method")
        if "method" not in skip and signed_method != method.upper():
            raise AuthRefused(
                "auth-method-tag-mismatch",
                f"signed for method {signed_method!r:.40}, requested {method.upper()!r}",
            )
        signed_payload = _tag(tags, "payload")
        if (
            "payload" not in skip
            and (body or signed_payload is not None)
            and signed_payload != sha256_hex(body)
        ):
            raise AuthRefused(
                "auth-payload-mismatch",
                "no payload tag for a request with a body"
                if signed_payload is None
                else "the payload tag is not the sha256 of the body",
            )
        if "allowlist" not in skip and pubkey not in self.allowed:
            raise AuthRefused("forbidden-pubkey", f"{pubkey} is not on this node's allowlist")
        # Only an event that passed every check above enters the replay cache.
        if "replay" not in skip and not self.cache_before_checks:
            self._use_once(event["id"], created_at + self.window_s, now)
        return pubkey

    @staticmethod
    def _check_id_and_signature(event: dict[str, Any]) -> None:
        pubkey = event["pubkey"]
        try:
            expected = event_id(pubkey, event["created_at"], AUTH_KIND, event["tags"], "")
        except UnicodeEncodeError:
            raise AuthRefused("invalid-auth-event", "the event is not valid UTF-8") from None
        if expected != event["id"]:
            raise AuthRefused("invalid-auth-event", "the event id is not the hash of the event")
        if not verify_schnorr(
            bytes.fromhex(pubkey), bytes.fromhex(expected), bytes.fromhex(event["sig"])
        ):
            raise AuthRefused("invalid-auth-event", "the signature does not verify")

    def _use_once(self, identifier: str, forget_after: float, now: float) -> None:
        if identifier in self._used:
            raise AuthRefused("replayed-auth-event", f"event {identifier} was used before")
        if len(self._used) >= self.replay_capacity:
            # Stale ids are refused by the clock check already: drop those first, then (under a
            # flood) the oldest entries, which leaves those few replayable in their window.
            self._used = {key: until for key, until in self._used.items() if until >= now}
            while len(self._used) >= self.replay_capacity:
                del self._used[next(iter(self._used))]
        self._used[identifier] = forget_after
