"""BIP-173 bech32 (not bech32m) encoding, as NIP-19 uses for ``nsec``/``npub`` keys.

Error messages describe what is wrong with an input but never echo it: the strings decoded here
are often secret keys.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_CHARSET_INDEX = {char: value for value, char in enumerate(CHARSET)}
_GENERATOR = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)
# bech32 checksums make the polymod equal 1; bech32m (BIP-350) uses 0x2BC830A3 and is rejected.
_BECH32_CONST = 1
BIP173_MAX_LENGTH = 90
_CHECKSUM_LENGTH = 6


class Bech32Error(ValueError):
    """A string is not valid bech32, or does not carry the expected payload."""


def _polymod(values: Iterable[int]) -> int:
    """BCH checksum polymod over GF(32) from BIP-173."""
    checksum = 1
    for value in values:
        top = checksum >> 25
        checksum = (checksum & 0x1FFFFFF) << 5 ^ value
        for bit, generator in enumerate(_GENERATOR):
            if (top >> bit) & 1:
                checksum ^= generator
    return checksum


def _hrp_expand(hrp: str) -> list[int]:
    """Expand the human-readable part for checksum computation."""
    return [ord(char) >> 5 for char in hrp] + [0] + [ord(char) & 31 for char in hrp]


def _create_checksum(hrp: str, data: Sequence[int]) -> list[int]:
    """Compute the six checksum symbols for ``hrp`` and 5-bit ``data``."""
    polymod = _polymod([*_hrp_expand(hrp), *data, 0, 0, 0, 0, 0, 0]) ^ _BECH32_CONST
    return [(polymod >> 5 * (5 - index)) & 31 for index in range(_CHECKSUM_LENGTH)]


def bech32_encode(hrp: str, data: Sequence[int]) -> str:
    """Encode a human-readable part and 5-bit values as a lowercase bech32 string."""
    if not hrp or any(not 33 <= ord(char) <= 126 for char in hrp):
        raise Bech32Error("human-readable part must be 1+ printable ASCII characters")
    if hrp.lower() != hrp:
        raise Bech32Error("human-readable part must be lowercase")
    if any(not 0 <= value < 32 for value in data):
        raise Bech32Error("data values must be 5-bit integers")
    combined = [*data, *_create_checksum(hrp, data)]
    return hrp + "1" + "".join(CHARSET[value] for value in combined)


def bech32_decode(text: str, *, max_length: int = BIP173_MAX_LENGTH) -> tuple[str, list[int]]:
    """Decode a bech32 string into ``(hrp, 5-bit data without checksum)``.

    Applies every BIP-173 rule: printable ASCII only, no mixed case, at most ``max_length``
    characters, non-empty human-readable part, six-character checksum, valid data characters.
    """
    if len(text) > max_length:
        raise Bech32Error(f"bech32 string is longer than {max_length} characters")
    if any(not 33 <= ord(char) <= 126 for char in text):
        raise Bech32Error("bech32 string contains a character outside printable ASCII")
    if text.lower() != text and text.upper() != text:
        raise Bech32Error("bech32 string mixes upper and lower case")
    text = text.lower()
    separator = text.rfind("1")
    if separator < 1:
        raise Bech32Error("bech32 string has no human-readable part before the '1' separator")
    if separator + 1 + _CHECKSUM_LENGTH > len(text):
        raise Bech32Error("bech32 data part is shorter than the 6-character checksum")
    hrp, data_part = text[:separator], text[separator + 1 :]
    try:
        data = [_CHARSET_INDEX[char] for char in data_part]
    except KeyError:
        raise Bech32Error("bech32 data part contains a character outside the charset") from None
    if _polymod([*_hrp_expand(hrp), *data]) != _BECH32_CONST:
        raise Bech32Error("bech32 checksum is invalid")
    return hrp, data[:-_CHECKSUM_LENGTH]


def convert_bits(data: Iterable[int], from_bits: int, to_bits: int, *, pad: bool) -> list[int]:
    """Regroup a sequence of ``from_bits``-wide integers into ``to_bits``-wide integers.

    Without ``pad`` (decoding), leftover bits must be fewer than ``from_bits`` and all zero.
    """
    accumulator = 0
    bit_count = 0
    result: list[int] = []
    max_value = (1 << to_bits) - 1
    for value in data:
        if value < 0 or value >> from_bits:
            raise Bech32Error(f"value does not fit in {from_bits} bits")
        accumulator = (accumulator << from_bits) | value
        bit_count += from_bits
        while bit_count >= to_bits:
            bit_count -= to_bits
            result.append((accumulator >> bit_count) & max_value)
    if pad:
        if bit_count:
            result.append((accumulator << (to_bits - bit_count)) & max_value)
    elif bit_count >= from_bits or ((accumulator << (to_bits - bit_count)) & max_value):
        raise Bech32Error("bech32 payload has invalid padding")
    return result


def encode_bytes(hrp: str, payload: bytes) -> str:
    """Encode raw bytes under ``hrp`` (e.g. ``encode_bytes("npub", pubkey32)``)."""
    return bech32_encode(hrp, convert_bits(payload, 8, 5, pad=True))


def decode_bytes(text: str, expected_hrp: str) -> bytes:
    """Decode a bech32 string that must carry ``expected_hrp`` and return its raw bytes."""
    hrp, data = bech32_decode(text)
    if hrp != expected_hrp:
        # The hrp of an nsec/npub is not secret, and naming it makes the mistake obvious.
        raise Bech32Error(f"expected a '{expected_hrp}1...' string, got prefix '{hrp}'")
    return bytes(convert_bits(data, 5, 8, pad=False))
