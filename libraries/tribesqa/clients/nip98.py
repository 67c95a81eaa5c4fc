"""NIP-98 HTTP auth: signing requests (client side) and verifying them (server side).

A request carries ``Authorization: Nostr <base64(event JSON)>`` where the event is kind 27235
with tags ``["u", <exact absolute URL incl. query>]``, ``["method", <METHOD>]`` and, when the
body is non-empty, ``["payload", <sha256 hex of the body>]``; its id follows NIP-01 and its
signature is BIP-340 Schnorr over the id. :class:`Nip98Verifier` applies the node admin API's
checks in a fixed order, each failure raising :class:`Nip98Error` with one of
:data:`NIP98_CODES`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import heapq
import json
import re
import secrets
import threading
import time
from collections.abc import Callable, Generator, Iterable
from typing import Any

import httpx

from tribesqa.clients.keys import AdminKey, parse_pubkey, schnorr_sign, schnorr_verify

__all__ = [
    "NIP98_CODES",
    "NIP98_KIND",
    "AdminKey",
    "Nip98Auth",
    "Nip98Error",
    "Nip98Verifier",
    "authorization_for",
    "authorization_header",
    "build_auth_event",
    "compute_event_id",
    "parse_authorization_header",
    "schnorr_sign",
    "schnorr_verify",
]

NIP98_KIND = 27235
AUTH_SCHEME = "Nostr"

# The verifier's rejection codes, in the order the checks run.
NIP98_CODES: tuple[str, ...] = (
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

_LOWER_HEX_64 = re.compile(r"[0-9a-f]{64}")
_LOWER_HEX_128 = re.compile(r"[0-9a-f]{128}")
# Bounds the work an unauthenticated caller can make us do before any signature check.
_MAX_AUTHORIZATION_CHARS = 64 * 1024
_MAX_SHOWN_CHARS = 200


class Nip98Error(Exception):
    """A request failed NIP-98 verification; ``code`` is one of :data:`NIP98_CODES`."""

    http_status = 401

    def __init__(self, code: str, message: str) -> None:
        """Create an error with a machine ``code`` and a human ``message``."""
        if code not in NIP98_CODES:
            raise ValueError(f"unknown NIP-98 error code {code!r}")
        super().__init__(message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        """``<code>: <message>``."""
        return f"{self.code}: {self.message}"


def _shown(value: object) -> str:
    """Render a client-supplied value for an error message, truncated."""
    text = repr(value)
    return text if len(text) <= _MAX_SHOWN_CHARS else text[:_MAX_SHOWN_CHARS] + "..."


def _sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --------------------------------------------------------------------------- signing side


def compute_event_id(
    pubkey: str, created_at: int, kind: int, tags: list[list[str]], content: str
) -> str:
    """NIP-01 event id: sha256 of compact UTF-8 JSON ``[0,pubkey,created_at,kind,tags,content]``.

    Raises ``UnicodeEncodeError`` if a string holds a lone surrogate (not valid UTF-8).
    """
    serialized = json.dumps(
        [0, pubkey, created_at, kind, tags, content], separators=(",", ":"), ensure_ascii=False
    )
    return _sha256_hex(serialized.encode("utf-8"))


def build_auth_event(
    key: AdminKey,
    url: str,
    method: str,
    body: bytes = b"",
    created_at: int | None = None,
    *,
    nonce: bool = True,
) -> dict[str, Any]:
    """Build and sign a NIP-98 event for ``method url`` with ``body``.

    The payload tag is included whenever ``body`` is non-empty. ``created_at`` defaults to now.
    With ``nonce`` (the default) a random ``["nonce", <hex>]`` tag is appended: the event id
    covers only pubkey, created_at, kind, tags and content, so two identical requests in the
    same second (a poller) would otherwise share an id and the second would be rejected as a
    replay. Verifiers ignore unknown tags; ``nonce=False`` gives the minimal NIP-98 event.
    """
    tags = [["u", url], ["method", method.upper()]]
    if body:
        tags.append(["payload", _sha256_hex(body)])
    if nonce:
        tags.append(["nonce", secrets.token_hex(16)])
    timestamp = int(time.time()) if created_at is None else int(created_at)
    pubkey = key.pubkey_hex
    event_id = compute_event_id(pubkey, timestamp, NIP98_KIND, tags, "")
    return {
        "id": event_id,
        "pubkey": pubkey,
        "created_at": timestamp,
        "kind": NIP98_KIND,
        "tags": tags,
        "content": "",
        "sig": key.sign(bytes.fromhex(event_id)).hex(),  # fresh random aux per signature
    }


def authorization_header(event: dict[str, Any]) -> str:
    """The ``Authorization`` header value for a signed event: ``Nostr <base64(json)>``."""
    serialized = json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return f"{AUTH_SCHEME} {base64.b64encode(serialized).decode('ascii')}"


def authorization_for(
    key: AdminKey,
    url: str,
    method: str,
    body: bytes = b"",
    created_at: int | None = None,
    *,
    nonce: bool = True,
) -> str:
    """Sign and encode in one step, for HTTP clients other than httpx (e.g. aiohttp)."""
    return authorization_header(build_auth_event(key, url, method, body, created_at, nonce=nonce))


class Nip98Auth(httpx.Auth):
    """httpx auth that NIP-98-signs every request (works with ``Client`` and ``AsyncClient``).

    The ``u`` tag is ``str(request.url)``, the exact absolute URL including the query string;
    redirects are re-signed for their new URL because httpx runs the auth flow per request.
    """

    # Makes httpx read (or aread) a streamed body before auth_flow, so the payload hash is exact.
    requires_request_body = True

    def __init__(self, key: AdminKey, *, clock: Callable[[], float] = time.time) -> None:
        """Sign with ``key``; ``clock`` supplies ``created_at`` (inject one to simulate skew)."""
        self._key = key
        self._clock = clock

    @property
    def key(self) -> AdminKey:
        """The signing key."""
        return self._key

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """Attach a freshly signed ``Authorization`` header, then send."""
        event = build_auth_event(
            self._key,
            str(request.url),
            request.method,
            request.content,
            created_at=int(self._clock()),
        )
        request.headers["Authorization"] = authorization_header(event)
        yield request

    def __repr__(self) -> str:
        """Show the public key only."""
        return f"Nip98Auth(pubkey={self._key.pubkey_hex})"


# --------------------------------------------------------------------------- verifying side


def parse_authorization_header(authorization: str | None) -> dict[str, Any]:
    """Decode ``Nostr <base64(json)>`` into the event object, without validating the event.

    Raises :class:`Nip98Error` ``auth-required`` or ``invalid-authorization``.
    """
    if authorization is None or not authorization.strip():
        raise Nip98Error("auth-required", "missing Authorization header")
    if len(authorization) > _MAX_AUTHORIZATION_CHARS:
        raise Nip98Error("invalid-authorization", "Authorization header is too large")
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != AUTH_SCHEME.lower() or not token.strip():
        raise Nip98Error("invalid-authorization", "Authorization is not 'Nostr <base64 event>'")
    try:
        raw = base64.b64decode(token.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise Nip98Error("invalid-authorization", "Authorization token is not base64") from None
    try:
        event = json.loads(raw)
    except (ValueError, RecursionError):  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise Nip98Error("invalid-authorization", "Authorization token is not JSON") from None
    if not isinstance(event, dict):
        raise Nip98Error("invalid-authorization", "Authorization token is not a JSON object")
    return event


def _is_int(value: object) -> bool:
    """JSON integer check that rejects booleans (``True`` is an ``int`` in Python)."""
    return isinstance(value, int) and not isinstance(value, bool)


def _check_event_shape(event: dict[str, Any]) -> None:
    """Raise ``invalid-auth-event`` unless every NIP-01 field is present and well typed."""

    def invalid(reason: str) -> Nip98Error:
        return Nip98Error("invalid-auth-event", reason)

    kind = event.get("kind")
    if not _is_int(kind) or kind != NIP98_KIND:
        raise invalid(f"auth event kind must be {NIP98_KIND}, got {_shown(kind)}")
    for field in ("id", "pubkey"):
        value = event.get(field)
        if not isinstance(value, str) or not _LOWER_HEX_64.fullmatch(value):
            raise invalid(f"auth event field '{field}' must be 64 lowercase hex characters")
    sig = event.get("sig")
    if not isinstance(sig, str) or not _LOWER_HEX_128.fullmatch(sig):
        raise invalid("auth event field 'sig' must be 128 lowercase hex characters")
    if not _is_int(event.get("created_at")):
        raise invalid("auth event field 'created_at' must be an integer")
    if not isinstance(event.get("content"), str):
        raise invalid("auth event field 'content' must be a string")
    if event["content"]:
        # The contract's NIP-98 rule 3: an auth event carries no content.
        raise invalid("auth event content must be empty")
    tags = event.get("tags")
    if not isinstance(tags, list) or not all(
        isinstance(tag, list) and all(isinstance(item, str) for item in tag) for tag in tags
    ):
        raise invalid("auth event field 'tags' must be a list of lists of strings")


def _first_tag_value(tags: list[list[str]], name: str) -> str | None:
    """Value of the first ``[name, value, ...]`` tag, or ``None``."""
    for tag in tags:
        if len(tag) >= 2 and tag[0] == name:
            return tag[1]
    return None


class Nip98Verifier:
    """Server-side NIP-98 verification against an allowlist, with a bounded replay cache.

    Thread-safe: the allowlist is replaced copy-on-write and the replay check-and-record is one
    locked step, so concurrent handlers never both accept the same event id.
    """

    def __init__(
        self,
        allowed_pubkeys: Iterable[str] = (),
        *,
        max_skew_s: float = 60,
        clock: Callable[[], float] = time.time,
        replay_cache_size: int = 100_000,
        replay_protection: bool = True,
    ) -> None:
        """Accept events signed by ``allowed_pubkeys`` (hex or npub).

        ``clock`` is the server clock (inject one for skew tests); ``replay_protection=False``
        turns off the replay check (the simulator's deliberate ``replay-accepted`` fault).
        """
        if replay_cache_size < 1:
            raise ValueError("replay_cache_size must be at least 1")
        self._allowed: frozenset[str] = frozenset(parse_pubkey(key) for key in allowed_pubkeys)
        self._max_skew_s = max_skew_s
        self._clock = clock
        self._replay_cache_size = replay_cache_size
        self._replay_protection = replay_protection
        self._lock = threading.Lock()
        # event id -> expiry, plus a min-heap of (expiry, id) to evict in expiry order. An id
        # can be forgotten once its created_at is outside the skew window: it would be stale.
        self._seen_expiry: dict[str, float] = {}
        self._expiry_heap: list[tuple[float, str]] = []

    # ----- allowlist

    @property
    def allowed(self) -> frozenset[str]:
        """The allowed public keys (lowercase hex)."""
        return self._allowed

    def allow(self, pubkey: str) -> None:
        """Add a public key (hex or npub) to the allowlist."""
        normalized = parse_pubkey(pubkey)
        with self._lock:
            self._allowed = self._allowed | {normalized}

    def revoke(self, pubkey: str) -> None:
        """Remove a public key (hex or npub) from the allowlist; unknown keys are ignored."""
        normalized = parse_pubkey(pubkey)
        with self._lock:
            self._allowed = self._allowed - {normalized}

    @property
    def replay_protection(self) -> bool:
        """Whether a reused event id is rejected."""
        return self._replay_protection

    @property
    def replay_cache_len(self) -> int:
        """How many event ids the replay cache holds now."""
        return len(self._seen_expiry)

    # ----- verification

    def verify(self, authorization: str | None, url: str, method: str, body: bytes | None) -> str:
        """Verify a request's ``Authorization`` header; return the signer's pubkey (hex).

        ``url`` must be the exact absolute URL the client used (scheme, host, port, path and
        query); ``body`` is the raw request body (``None`` counts as empty). Raises
        :class:`Nip98Error`; checks run in the order of :data:`NIP98_CODES`.
        """
        body = body or b""
        event = parse_authorization_header(authorization)
        _check_event_shape(event)
        pubkey: str = event["pubkey"]
        event_id: str = event["id"]
        created_at: int = event["created_at"]
        tags: list[list[str]] = event["tags"]
        try:
            expected_id = compute_event_id(pubkey, created_at, NIP98_KIND, tags, event["content"])
        except UnicodeEncodeError:
            raise Nip98Error("invalid-auth-event", "auth event is not valid UTF-8") from None
        if expected_id != event_id:
            raise Nip98Error("invalid-auth-event", "auth event id does not match its content")
        if not schnorr_verify(
            bytes.fromhex(pubkey), bytes.fromhex(event_id), bytes.fromhex(event["sig"])
        ):
            raise Nip98Error("invalid-auth-event", "auth event signature is invalid")

        now = self._clock()
        if abs(now - created_at) > self._max_skew_s:
            raise Nip98Error(
                "stale-auth-event",
                f"auth event created_at is {created_at - now:+.0f} s from the server clock "
                f"(allowed ±{self._max_skew_s:g} s)",
            )
        url_tag = _first_tag_value(tags, "u")
        if url_tag != url:
            raise Nip98Error(
                "auth-url-tag-mismatch",
                f"u tag {_shown(url_tag)} does not match the request URL {_shown(url)}",
            )
        method_tag = _first_tag_value(tags, "method")
        if method_tag != method.upper():
            raise Nip98Error(
                "auth-method-tag-mismatch",
                f"method tag {_shown(method_tag)} does not match the request method "
                f"{_shown(method.upper())}",
            )
        payload_tag = _first_tag_value(tags, "payload")
        if payload_tag is not None or body:
            body_hash = _sha256_hex(body)
            if payload_tag != body_hash:
                raise Nip98Error(
                    "auth-payload-mismatch",
                    "payload tag is missing for a non-empty body"
                    if payload_tag is None
                    else "payload tag does not match the sha256 of the request body",
                )
        if pubkey not in self._allowed:
            raise Nip98Error("forbidden-pubkey", f"pubkey {pubkey} is not on the admin allowlist")
        if self._replay_protection:
            self._record_once(event_id, created_at, now)
        return pubkey

    def _record_once(self, event_id: str, created_at: int, now: float) -> None:
        """Atomically reject a seen id or remember a new one until it can no longer be fresh."""
        with self._lock:
            heap = self._expiry_heap
            while heap and heap[0][0] < now:
                _, expired_id = heapq.heappop(heap)
                del self._seen_expiry[expired_id]
            if event_id in self._seen_expiry:
                raise Nip98Error("replayed-auth-event", f"auth event {event_id} was already used")
            # Bound memory: past the size limit drop the ids closest to expiry, accepting that
            # such an id could be replayed in the rest of its window (needs > size req/window).
            while len(self._seen_expiry) >= self._replay_cache_size:
                _, dropped_id = heapq.heappop(heap)
                del self._seen_expiry[dropped_id]
            expiry = created_at + self._max_skew_s
            self._seen_expiry[event_id] = expiry
            heapq.heappush(heap, (expiry, event_id))
