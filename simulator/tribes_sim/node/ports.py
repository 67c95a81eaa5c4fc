"""Where a node listens: per-provider port ranges and binding inside them."""

from __future__ import annotations

import contextlib
import random
import socket

# Below Linux's default ephemeral range (32768-60999): a node restarting on its saved ports must
# not find one taken by some process's outgoing connection.
PROVIDER_PORTS = {"hetzner": (12000, 17999), "scaleway": (18000, 23999), "ovh": (24000, 29999)}
OTHER_PROVIDER_PORTS = (30000, 32699)


def bind_socket(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.listen(128)
    sock.setblocking(False)
    return sock


def bind_in_range(host: str, low: int, high: int, rng: random.Random) -> socket.socket:
    """Bind a free port inside a provider's range (random start so parallel fleets don't clash)."""
    span = high - low + 1
    start = rng.randrange(span)
    for offset in range(span):
        port = low + (start + offset) % span
        with contextlib.suppress(OSError):
            return bind_socket(host, port)
    raise OSError(f"no free port in {low}-{high}")
