"""One verifying TLS context per process, shared by every HTTP client of the library.

httpx builds a fresh context for each ``Client`` (and for each ``httpx.get``), loading the whole
CA bundle every time: about 40 ms of CPU, even for ``http://`` URLs. A suite run creates dozens
of clients (one per node, per poll pool, per reachability probe), so a shared context saves
seconds of CPU that parallel runs on two cores feel directly.
"""

from __future__ import annotations

import functools
import ssl

import httpx


@functools.cache
def tls_context() -> ssl.SSLContext:
    """httpx's default verifying context (certifi, or ``SSL_CERT_FILE`` / ``SSL_CERT_DIR``)."""
    return httpx.create_ssl_context()
