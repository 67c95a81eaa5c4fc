"""secp256k1 keys of the simulated fleet: BIP-340 x-only public keys and Schnorr signatures.

The simulator stands in for the system under test, so it carries its own key handling rather than
the test library's: a bug shared by the signer and the verifier would otherwise pass every test.
Only coincurve's public API is used (``PrivateKey.sign_schnorr``, ``PublicKeyXOnly.verify``).

Key files hold the secret as 64 lowercase hex characters and a newline, mode 0600: the format
the test library reads the fleet's admin key from.
"""

from __future__ import annotations

import os
import secrets
import string
from pathlib import Path

import coincurve

# The order n of secp256k1's group: a secret key is an integer in [1, n - 1].
CURVE_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


class SchnorrKey:
    """One secp256k1 secret; its ``repr`` shows the public key only."""

    __slots__ = ("_private", "public")

    def __init__(self, secret: bytes) -> None:
        if len(secret) != 32 or not 0 < int.from_bytes(secret, "big") < CURVE_ORDER:
            # Never echo the secret: say only what is wrong with it.
            raise ValueError("a secp256k1 secret is 32 bytes, between 1 and the curve order")
        self._private = coincurve.PrivateKey(secret)
        #: The 32-byte x-only public key (BIP-340).
        self.public: bytes = self._private.public_key_xonly.format()

    @classmethod
    def generate(cls) -> SchnorrKey:
        while True:  # a random 256-bit string is out of range with probability ~2^-128
            secret = secrets.token_bytes(32)
            if 0 < int.from_bytes(secret, "big") < CURVE_ORDER:
                return cls(secret)

    @classmethod
    def from_hex(cls, text: str) -> SchnorrKey:
        text = text.strip()
        if len(text) != 64 or not set(text) <= set(string.hexdigits):
            raise ValueError("a hex secret key is 64 hexadecimal characters")
        return cls(bytes.fromhex(text))

    @property
    def public_hex(self) -> str:
        """The public key as Nostr writes it: 64 lowercase hex characters."""
        return self.public.hex()

    def secret_hex(self) -> str:
        """The secret as hex; only for writing key files."""
        return self._private.secret.hex()

    def sign(self, message32: bytes, aux32: bytes | None = None) -> bytes:
        """BIP-340 signature of a 32-byte message; fresh auxiliary randomness unless given."""
        if len(message32) != 32:
            raise ValueError("the simulator signs 32-byte messages (event ids) only")
        return self._private.sign_schnorr(message32, os.urandom(32) if aux32 is None else aux32)

    def __repr__(self) -> str:
        return f"SchnorrKey(public={self.public_hex})"


def verify_schnorr(public32: bytes, message: bytes, signature64: bytes) -> bool:
    """BIP-340 verification; a malformed key or signature is simply not valid."""
    if len(public32) != 32 or len(signature64) != 64:
        return False
    try:
        public = coincurve.PublicKeyXOnly(public32)
    except ValueError:  # no curve point has this x, or x is not below the field size
        return False
    return public.verify(signature64, message)


def write_key(path: Path, key: SchnorrKey) -> None:
    """Write ``key`` as hex to ``path`` (mode 0600 from creation, replaced atomically)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(key.secret_hex() + "\n")
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def read_key(path: Path) -> SchnorrKey:
    """Read a key file written by ``write_key``."""
    try:
        return SchnorrKey.from_hex(path.read_text(encoding="ascii"))
    except ValueError as error:
        raise ValueError(f"key file {path}: {error}") from None
