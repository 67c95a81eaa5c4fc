"""Admin key handling and BIP-340 Schnorr primitives (secp256k1 via coincurve).

An :class:`AdminKey` holds the secret that signs NIP-98 requests to node admin APIs. The secret
never appears in ``repr``/``str`` or in any error message: errors say what is wrong (length,
characters, checksum, which env var or file) without echoing the value.
"""

from __future__ import annotations

import hmac
import os
import re
import tempfile
from pathlib import Path

import coincurve

from tribesqa.clients.bech32 import Bech32Error, decode_bytes, encode_bytes

DEFAULT_ADMIN_KEY_ENV = "TRIBES_ADMIN_KEY"
SECP256K1_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
_HEX64 = re.compile(r"[0-9a-fA-F]{64}")


class KeyLoadError(ValueError):
    """An admin key could not be loaded or parsed; the message never contains the secret."""


# --------------------------------------------------------------------------- BIP-340 Schnorr


def _sign_with(private_key: coincurve.PrivateKey, msg32: bytes, aux32: bytes | None) -> bytes:
    """Sign the 32-byte ``msg32`` with ``private_key`` and ``aux32`` randomness.

    Only 32-byte messages: NIP-98 signs event ids (SHA-256 digests), and coincurve's public
    ``sign_schnorr`` covers exactly that (it re-verifies the signature before returning it).
    """
    if len(msg32) != 32:
        raise ValueError(
            f"BIP-340 signing takes a 32-byte message (a NIP-01 event id), got {len(msg32)} bytes"
        )
    aux = os.urandom(32) if aux32 is None else aux32
    if len(aux) != 32:
        raise ValueError("BIP-340 auxiliary randomness must be 32 bytes")
    return private_key.sign_schnorr(msg32, aux)


def _validated_secret(secret32: bytes) -> bytes:
    """Return ``secret32`` if it is a valid secp256k1 secret, else raise (without echoing it)."""
    if len(secret32) != 32:
        raise KeyLoadError(f"secret key must be 32 bytes, got {len(secret32)} bytes")
    if not 0 < int.from_bytes(secret32, "big") < SECP256K1_ORDER:
        raise KeyLoadError("secret key is not a valid secp256k1 scalar (zero or >= curve order)")
    return secret32


def schnorr_sign(secret32: bytes, msg32: bytes, aux32: bytes | None = None) -> bytes:
    """BIP-340 sign ``msg32`` with ``secret32``; return the 64-byte signature.

    ``aux32`` is the 32-byte auxiliary randomness; ``None`` draws fresh random bytes (what
    NIP-98 wants). ``msg32`` must be 32 bytes (an event id); other lengths raise ``ValueError``.
    """
    private_key = coincurve.PrivateKey(_validated_secret(secret32))
    return _sign_with(private_key, msg32, aux32)


def schnorr_pubkey(secret32: bytes) -> bytes:
    """Return the 32-byte x-only public key of ``secret32``."""
    return coincurve.PublicKeyXOnly.from_secret(_validated_secret(secret32)).format()


def schnorr_verify(pubkey_xonly32: bytes, msg: bytes, sig64: bytes) -> bool:
    """BIP-340 verify (any message length, through coincurve's public ``PublicKeyXOnly.verify``);
    malformed keys or signatures yield ``False`` rather than raising."""
    if len(pubkey_xonly32) != 32 or len(sig64) != 64:
        return False
    try:
        public_key = coincurve.PublicKeyXOnly(pubkey_xonly32)
    except ValueError:  # not an x coordinate on the curve, or >= field size
        return False
    return public_key.verify(sig64, msg)


def parse_pubkey(text: str) -> str:
    """Normalise a public key given as 64 hex characters or ``npub1...`` to lowercase hex.

    Raises ``ValueError`` if it is malformed or not a point on the curve.
    """
    candidate = text.strip()
    if candidate[:5].lower() == "npub1":
        try:
            raw = decode_bytes(candidate, "npub")
        except Bech32Error as error:
            raise ValueError(f"invalid npub: {error}") from None
    elif _HEX64.fullmatch(candidate):
        raw = bytes.fromhex(candidate)
    else:
        raise ValueError("public key must be 64 hex characters or an npub1... string")
    if len(raw) != 32:
        raise ValueError(f"public key must be 32 bytes, got {len(raw)} bytes")
    try:
        coincurve.PublicKeyXOnly(raw)
    except ValueError:
        raise ValueError("public key is not a valid secp256k1 x coordinate") from None
    return raw.hex()


# --------------------------------------------------------------------------- AdminKey


class AdminKey:
    """A secp256k1 admin secret that signs NIP-98 requests.

    Build one with :meth:`generate`, :meth:`from_hex`, :meth:`from_nsec`, :meth:`parse`,
    :meth:`from_env`, :meth:`from_file` or :meth:`load`. Only the public key is ever shown.
    """

    __slots__ = ("_private_key", "_pubkey_xonly")

    def __init__(self, secret32: bytes) -> None:
        """Wrap a raw 32-byte secret (prefer the named constructors)."""
        self._private_key = coincurve.PrivateKey(_validated_secret(bytes(secret32)))
        self._pubkey_xonly: bytes = self._private_key.public_key_xonly.format()

    # ----- constructors

    @classmethod
    def generate(cls) -> AdminKey:
        """Create a fresh random key."""
        while True:  # a random 32-byte string is out of range with probability ~2^-128
            try:
                return cls(os.urandom(32))
            except KeyLoadError:
                continue

    @classmethod
    def from_hex(cls, text: str) -> AdminKey:
        """Parse a 64-character hex secret."""
        if len(text) != 64:
            raise KeyLoadError(f"hex secret key must be 64 characters, got {len(text)}")
        if not _HEX64.fullmatch(text):
            raise KeyLoadError("hex secret key contains non-hexadecimal characters")
        return cls(bytes.fromhex(text))

    @classmethod
    def from_nsec(cls, text: str) -> AdminKey:
        """Parse a NIP-19 ``nsec1...`` bech32 secret."""
        try:
            raw = decode_bytes(text, "nsec")
        except Bech32Error as error:
            raise KeyLoadError(f"invalid nsec: {error}") from None
        return cls(raw)

    @classmethod
    def parse(cls, text: str) -> AdminKey:
        """Parse a secret given as hex or ``nsec1...``, ignoring surrounding whitespace."""
        candidate = text.strip()
        if not candidate:
            raise KeyLoadError("secret key is empty")
        if candidate[:5].lower() == "nsec1":
            return cls.from_nsec(candidate)
        return cls.from_hex(candidate)

    @classmethod
    def from_env(cls, var: str = DEFAULT_ADMIN_KEY_ENV) -> AdminKey:
        """Load the key from environment variable ``var`` (hex or nsec)."""
        value = os.environ.get(var)
        if value is None or not value.strip():
            raise KeyLoadError(f"environment variable {var} is not set or empty")
        try:
            return cls.parse(value)
        except KeyLoadError as error:
            raise KeyLoadError(f"environment variable {var}: {error}") from None

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> AdminKey:
        """Load the key from a file holding hex or nsec (as written by :func:`write_key_file`)."""
        key_path = Path(path)
        try:
            text = key_path.read_text(encoding="ascii")
        except FileNotFoundError:
            raise KeyLoadError(f"key file {key_path} does not exist") from None
        except UnicodeDecodeError:
            raise KeyLoadError(f"key file {key_path} is not ASCII text") from None
        except OSError as error:
            raise KeyLoadError(f"key file {key_path} cannot be read: {error.strerror}") from None
        try:
            return cls.parse(text)
        except KeyLoadError as error:
            raise KeyLoadError(f"key file {key_path}: {error}") from None

    @classmethod
    def load(
        cls,
        env_var: str = DEFAULT_ADMIN_KEY_ENV,
        file: str | os.PathLike[str] | None = None,
    ) -> AdminKey:
        """Load from ``env_var`` if it is set, otherwise from ``file``.

        A set-but-invalid env var is an error (no silent fallback to the file).
        """
        if os.environ.get(env_var, "").strip():
            return cls.from_env(env_var)
        if file is None:
            raise KeyLoadError(
                f"no admin key: environment variable {env_var} is not set and no key file was given"
            )
        try:
            return cls.from_file(file)
        except KeyLoadError as error:
            raise KeyLoadError(
                f"no admin key: environment variable {env_var} is not set, and {error}"
            ) from None

    # ----- public views

    @property
    def pubkey(self) -> bytes:
        """The 32-byte x-only public key."""
        return self._pubkey_xonly

    @property
    def pubkey_hex(self) -> str:
        """The x-only public key as 64 lowercase hex characters (Nostr's ``pubkey``)."""
        return self._pubkey_xonly.hex()

    @property
    def npub(self) -> str:
        """The public key as NIP-19 ``npub1...``."""
        return encode_bytes("npub", self._pubkey_xonly)

    def secret_hex(self) -> str:
        """The secret as hex: an explicit call, for writing key files only."""
        return self._private_key.secret.hex()

    def secret_nsec(self) -> str:
        """The secret as NIP-19 ``nsec1...``: an explicit call, for handing to other tools."""
        return encode_bytes("nsec", self._private_key.secret)

    def sign(self, msg32: bytes, aux32: bytes | None = None) -> bytes:
        """BIP-340 sign ``msg32`` (fresh random aux unless given); return 64 bytes."""
        return _sign_with(self._private_key, msg32, aux32)

    def __repr__(self) -> str:
        """Show the public key only."""
        return f"AdminKey(pubkey={self.pubkey_hex})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        """Keys are equal when their secrets are (compared in constant time)."""
        if not isinstance(other, AdminKey):
            return NotImplemented
        return hmac.compare_digest(self._private_key.secret, other._private_key.secret)

    def __hash__(self) -> int:
        """Hash on the public key."""
        return hash(self._pubkey_xonly)


def write_key_file(path: str | os.PathLike[str], key: AdminKey) -> Path:
    """Write ``key`` as hex to ``path`` with mode 0600, atomically; return the path.

    Missing parent directories are created with mode 0700.
    """
    key_path = Path(path)
    key_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    # mkstemp creates the file 0600 from the start, so the secret is never world-readable, and
    # os.replace makes a concurrent reader see either the old key or the new one, never half.
    fd, temp_name = tempfile.mkstemp(
        dir=key_path.parent, prefix=f".{key_path.name}.", suffix=".tmp"
    )
    try:
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(key.secret_hex() + "\n")
        os.chmod(temp_name, 0o600)
        os.replace(temp_name, key_path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
    return key_path
