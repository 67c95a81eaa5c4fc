"""NIP-98 for the ``requests`` library (RequestsLibrary sessions): one signature per request.

The library's own clients use httpx (:class:`tribesqa.clients.nip98.Nip98Auth`); this module is
the only one that imports ``requests``, which robotframework-requests brings in.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from requests import PreparedRequest
from requests.auth import AuthBase

from tribesqa.clients.keys import AdminKey
from tribesqa.clients.nip98 import authorization_for


class UnsignableBodyError(ValueError):
    """The body is a stream: its sha256 (the ``payload`` tag) is not known before sending."""


class Nip98RequestsAuth(AuthBase):
    """``requests`` auth that NIP-98-signs every prepared request with an admin key.

    The ``u`` tag is the prepared request's full URL (scheme, host, port, path, query) exactly
    as ``requests`` sends it: RequestsLibrary joins the session's base URL and the path before
    this runs, so the node verifies the URL that was signed. ``method`` is the request's
    method; ``payload`` is the sha256 of the body when there is one. Each request requests
    prepares gets a fresh event (``created_at`` from ``clock``, a random nonce), so sending the
    same call twice is never a replay; a transport-level retry (urllib3's ``max_retries``)
    resends the same signed bytes, which a node that saw the first copy refuses as a replay.
    Only the public key is ever shown.
    """

    def __init__(self, key: AdminKey, *, clock: Callable[[], float] = time.time) -> None:
        """Sign with ``key``; ``clock`` supplies ``created_at`` (inject one to simulate skew)."""
        self._key = key
        self._clock = clock

    @property
    def pubkey(self) -> str:
        """The signer's x-only public key (hex)."""
        return self._key.pubkey_hex

    def __call__(self, request: PreparedRequest) -> PreparedRequest:
        """Attach ``Authorization: Nostr <base64 event>`` for this request's URL, method and body."""
        body = request.body
        if body is None:
            raw = b""
        elif isinstance(body, bytes):
            raw = body
        elif isinstance(body, str):
            raw = body.encode("utf-8")
        else:
            raise UnsignableBodyError(
                f"NIP-98: cannot sign a streamed body ({type(body).__name__}) for "
                f"{request.method} {request.url}: pass data= or json= instead"
            )
        request.headers["Authorization"] = authorization_for(
            self._key, str(request.url), str(request.method), raw, int(self._clock())
        )
        return request

    def __repr__(self) -> str:
        """Show the public key only."""
        return f"Nip98RequestsAuth(pubkey={self.pubkey})"

    __str__ = __repr__
