"""BIP-340 Schnorr: the official test vectors (tests/data/bip340-test-vectors.csv)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from tribesqa.clients.keys import schnorr_pubkey, schnorr_sign, schnorr_verify

VECTORS_CSV = Path(__file__).parent / "data" / "bip340-test-vectors.csv"


def _load_vectors() -> list[dict[str, str]]:
    with VECTORS_CSV.open(newline="", encoding="ascii") as handle:
        return list(csv.DictReader(handle))


VECTORS = _load_vectors()
SIGNING_VECTORS = [row for row in VECTORS if row["secret key"]]
# NIP-98 signs 32-byte event ids only, so the library signs 32-byte messages only (coincurve's
# public sign_schnorr); vectors 15-18 (0, 1, 17, 100-byte messages) are verified, and signing
# them is refused with a clear error.
SIGNING_VECTORS_32 = [row for row in SIGNING_VECTORS if len(row["message"]) == 64]
OTHER_LENGTH_SIGNING_VECTORS = [row for row in SIGNING_VECTORS if len(row["message"]) != 64]


def _vector_id(row: dict[str, str]) -> str:
    return f"v{row['index']}-{row['comment'] or 'plain'}"[:60]


def test_vector_file_is_complete() -> None:
    # 0..18, including the 2022-12 arbitrary-length message vectors 15-18.
    assert [int(row["index"]) for row in VECTORS] == list(range(19))
    assert sorted({len(bytes.fromhex(row["message"])) for row in VECTORS}) == [0, 1, 17, 32, 100]


@pytest.mark.parametrize("row", SIGNING_VECTORS_32, ids=_vector_id)
def test_signing_reproduces_signature_and_public_key(row: dict[str, str]) -> None:
    secret = bytes.fromhex(row["secret key"])
    message = bytes.fromhex(row["message"])
    signature = schnorr_sign(secret, message, bytes.fromhex(row["aux_rand"]))
    assert signature.hex().upper() == row["signature"]
    assert schnorr_pubkey(secret).hex().upper() == row["public key"]


@pytest.mark.parametrize("row", OTHER_LENGTH_SIGNING_VECTORS, ids=_vector_id)
def test_signing_a_message_that_is_not_32_bytes_is_refused_clearly(row: dict[str, str]) -> None:
    message = bytes.fromhex(row["message"])
    with pytest.raises(ValueError, match=f"32-byte message .*got {len(message)} bytes"):
        schnorr_sign(bytes.fromhex(row["secret key"]), message, bytes.fromhex(row["aux_rand"]))


def test_the_other_length_vectors_are_the_four_of_2022() -> None:
    assert [int(row["index"]) for row in OTHER_LENGTH_SIGNING_VECTORS] == [15, 16, 17, 18]


@pytest.mark.parametrize("row", VECTORS, ids=_vector_id)
def test_verification_matches_expected_result(row: dict[str, str]) -> None:
    # Vectors 5 and 14 carry invalid public keys: they must give False, not raise.
    expected = {"TRUE": True, "FALSE": False}[row["verification result"]]
    verified = schnorr_verify(
        bytes.fromhex(row["public key"]),
        bytes.fromhex(row["message"]),
        bytes.fromhex(row["signature"]),
    )
    assert verified is expected


def test_malformed_lengths_verify_false_instead_of_raising() -> None:
    row = VECTORS[1]
    public_key, message = bytes.fromhex(row["public key"]), bytes.fromhex(row["message"])
    signature = bytes.fromhex(row["signature"])
    assert schnorr_verify(public_key, message, signature) is True
    assert schnorr_verify(public_key[:31], message, signature) is False
    assert schnorr_verify(public_key, message, signature[:63]) is False
    assert schnorr_verify(public_key, message, signature + b"\x00") is False


def test_fresh_aux_randomness_changes_signature_but_both_verify() -> None:
    secret = bytes.fromhex(SIGNING_VECTORS[1]["secret key"])
    message = b"\x42" * 32
    first, second = schnorr_sign(secret, message), schnorr_sign(secret, message)
    assert first != second
    assert schnorr_verify(schnorr_pubkey(secret), message, first)
    assert schnorr_verify(schnorr_pubkey(secret), message, second)


def test_aux_randomness_reaches_the_nonce() -> None:
    secret = bytes.fromhex(SIGNING_VECTORS[1]["secret key"])
    message = b"\x07" * 32
    with_zero_aux = schnorr_sign(secret, message, b"\x00" * 32)
    with_other_aux = schnorr_sign(secret, message, b"\x01" * 32)
    assert with_zero_aux != with_other_aux
    assert schnorr_verify(schnorr_pubkey(secret), message, with_other_aux)


def test_bad_aux_length_is_rejected() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        schnorr_sign(bytes.fromhex(SIGNING_VECTORS[1]["secret key"]), b"\x00" * 32, b"\x00" * 31)
