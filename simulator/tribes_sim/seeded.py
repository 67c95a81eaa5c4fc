"""Every non-secret random choice of the simulator, from one seed (``SimConfig.seed``).

``TRIBES_SIM_SEED`` in the environment of whoever prepares a fleet (``tribes-qa run`` sets it)
lands in ``sim-config.json``, which Legion and every node host load. Each choice draws from its
own stream, derived from the seed, a purpose and an owner (``"<seed>:ports:hetzner-1:0"``), so the
order in which nodes start or calls arrive never changes what a node picks. Without a seed every
stream starts from the operating system's randomness, as before.

Seeded: port start offsets inside a provider's range, ids (plans, jobs, resync jobs, cases,
events, graph runs, node hosts, the tribe). NOT seeded, ever: keys (admin, Legion, node and SSH
host keys), BIP-340 auxiliary randomness and NIP-98 nonces. A seed is written in run.json and
attached to bug reports; it must never make a secret predictable.

Reproducible as far as the machine allows: a seeded port that is taken still moves on to the next
free one (two fleets with one seed on one machine share the same wishes). Ids carry an ``epoch``
(how many times their owner started, counted in a file beside its state) so a node or Legion that
restarts never hands out an id it handed out before, and a replay with the same restarts gets the
same ids again.
"""

from __future__ import annotations

import collections
import contextlib
import os
import random
import secrets
import uuid
from pathlib import Path

SEED_ENV = "TRIBES_SIM_SEED"


def seed_from_env() -> int | None:
    """``TRIBES_SIM_SEED`` as an int (``None`` when unset or empty); a bad value is an error."""
    text = os.environ.get(SEED_ENV, "").strip()
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"{SEED_ENV} must be an integer, got {text!r}") from None


def stream(seed: int | None, purpose: str, *owner: object) -> random.Random:
    """One random stream for ``purpose`` of ``owner``: fixed by the seed, else fresh."""
    if seed is None:
        return random.Random(secrets.randbits(64))
    # A str seed is hashed with SHA-512 (random's seed version 2): stable across processes.
    return random.Random(":".join([str(seed), purpose, *map(str, owner)]))


def next_epoch(path: Path) -> int:
    """How many times the owner of ``path`` started before (and count this start)."""
    epoch = 0
    with contextlib.suppress(OSError, ValueError):
        epoch = int(path.read_text().strip() or 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(str(epoch + 1))
    return epoch


class IdSource:
    """The ids one owner (a node, Legion) hands out; seeded, the n-th id of a kind is fixed."""

    def __init__(self, seed: int | None, owner: str, epoch: int = 0) -> None:
        self.seed = seed
        self.owner = owner
        self.epoch = epoch
        self.counts: collections.Counter[str] = collections.Counter()

    def token_hex(self, kind: str, nbytes: int) -> str:
        if self.seed is None:
            return secrets.token_hex(nbytes)
        self.counts[kind] += 1
        rng = stream(self.seed, f"id-{kind}", self.owner, self.epoch, self.counts[kind])
        return rng.randbytes(nbytes).hex()

    def uuid4(self, kind: str) -> str:
        if self.seed is None:
            return str(uuid.uuid4())
        return str(uuid.UUID(hex=self.token_hex(kind, 16), version=4))
