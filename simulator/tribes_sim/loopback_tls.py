"""One verifying TLS context per process for the simulator's HTTP clients.

httpx builds a context per ``Client`` unless given one, loading the CA bundle each time (~40 ms
of CPU, even for the ``http://`` loopback URLs Legion serves); a fleet run creates many clients.
"""

from __future__ import annotations

import functools
import ssl


@functools.cache
def client_tls_context() -> ssl.SSLContext:
    """The system's default verifying context (honours ``SSL_CERT_FILE`` / ``SSL_CERT_DIR``)."""
    return ssl.create_default_context()
