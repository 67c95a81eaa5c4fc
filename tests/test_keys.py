"""Admin key handling: hex/nsec parsing, env/file loading, secrecy of the secret, bech32."""

from __future__ import annotations

import os
import stat
import traceback
from pathlib import Path

import pytest

from tribesqa.clients.bech32 import Bech32Error, bech32_decode, bech32_encode, decode_bytes
from tribesqa.clients.keys import (
    SECP256K1_ORDER,
    AdminKey,
    KeyLoadError,
    parse_pubkey,
    schnorr_verify,
    write_key_file,
)

# NIP-19's published example pair.
NIP19_NSEC = "nsec1vl029mgpspedva04g90vltkh6fvh240zqtv9k0t9af8935ke9laqsnlfe5"
NIP19_SECRET_HEX = "67dea2ed018072d675f5415ecfaed7d2597555e202d85b3d65ea4e58d2d92ffa"
NIP19_NPUB = "npub10elfcs4fr0l0r8af98jlmgdh9c8tcxjvz9qkw038js35mp4dma8qzvjptg"
NIP19_PUBKEY_HEX = "7e7e9c42a91bfef19fa929e5fda1b72e0ebc1a4c1141673e2794234d86addf4e"
ENV_VAR = "TRIBES_TEST_ADMIN_KEY"


def _full_error_text(error: BaseException) -> str:
    """Everything a traceback would print, including chained exceptions."""
    return "".join(traceback.format_exception(error))


# --------------------------------------------------------------------------- parsing


def test_hex_and_nsec_round_trip_with_nip19_example() -> None:
    from_nsec = AdminKey.from_nsec(NIP19_NSEC)
    from_hex = AdminKey.from_hex(NIP19_SECRET_HEX)
    assert from_nsec == from_hex
    assert from_nsec.secret_hex() == NIP19_SECRET_HEX
    assert from_hex.secret_nsec() == NIP19_NSEC
    assert from_hex.pubkey_hex == NIP19_PUBKEY_HEX
    assert from_hex.npub == NIP19_NPUB


@pytest.mark.parametrize(
    "text",
    [
        f"  {NIP19_SECRET_HEX}\n",
        NIP19_SECRET_HEX.upper(),
        f"\t{NIP19_NSEC}\n",
        NIP19_NSEC.upper(),  # BIP-173 allows all-uppercase
    ],
    ids=["hex-padded", "hex-upper", "nsec-padded", "nsec-upper"],
)
def test_parse_accepts_hex_or_nsec_and_strips_whitespace(text: str) -> None:
    assert AdminKey.parse(text).secret_hex() == NIP19_SECRET_HEX


def test_generated_keys_differ_and_sign_verifiably() -> None:
    first, second = AdminKey.generate(), AdminKey.generate()
    assert first != second
    message = bytes(range(32))
    assert schnorr_verify(first.pubkey, message, first.sign(message))
    assert not schnorr_verify(second.pubkey, message, first.sign(message))
    assert AdminKey.parse(first.secret_hex()) == first


def test_parse_pubkey_accepts_hex_and_npub() -> None:
    assert parse_pubkey(NIP19_NPUB) == NIP19_PUBKEY_HEX
    assert parse_pubkey(NIP19_PUBKEY_HEX.upper()) == NIP19_PUBKEY_HEX
    with pytest.raises(ValueError, match="x coordinate"):
        parse_pubkey("ff" * 32)  # >= field size


# --------------------------------------------------------------------------- secrecy


def test_repr_and_str_show_only_the_public_key() -> None:
    key = AdminKey.from_hex(NIP19_SECRET_HEX)
    expected = f"AdminKey(pubkey={NIP19_PUBKEY_HEX})"
    assert repr(key) == expected
    assert str(key) == expected
    assert f"{key}" == expected
    assert NIP19_SECRET_HEX not in repr([key, {"k": key}])


_ALMOST_SECRET = NIP19_SECRET_HEX[:-1] + "g"
_NSEC_BAD_CHECKSUM = NIP19_NSEC[:-1] + ("q" if NIP19_NSEC[-1] != "q" else "p")


@pytest.mark.parametrize(
    ("bad_text", "reason"),
    [
        (_ALMOST_SECRET, "non-hexadecimal"),
        (NIP19_SECRET_HEX + "00", "64 characters"),
        (NIP19_SECRET_HEX[:-2], "64 characters"),
        ("00" * 32, "not a valid secp256k1 scalar"),
        (f"{SECP256K1_ORDER:064x}", "not a valid secp256k1 scalar"),
        (_NSEC_BAD_CHECKSUM, "checksum"),
        (NIP19_NPUB, "64 characters"),  # a public key is not a secret
        ("", "empty"),
    ],
    ids=["bad-char", "too-long", "too-short", "zero", "order", "nsec-checksum", "npub", "empty"],
)
def test_parse_errors_say_what_is_wrong_without_echoing_the_value(
    bad_text: str, reason: str
) -> None:
    with pytest.raises(KeyLoadError, match=reason) as caught:
        AdminKey.parse(bad_text)
    full_text = _full_error_text(caught.value)
    if bad_text:
        assert bad_text not in full_text
        assert bad_text.strip()[:40] not in full_text


def test_nsec_with_wrong_prefix_names_the_prefix_only() -> None:
    with pytest.raises(KeyLoadError, match="prefix 'npub'"):
        AdminKey.from_nsec(NIP19_NPUB)


# --------------------------------------------------------------------------- env and files


def test_from_env_reads_hex_or_nsec(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_VAR, NIP19_NSEC)
    assert AdminKey.from_env(ENV_VAR).secret_hex() == NIP19_SECRET_HEX
    monkeypatch.setenv(ENV_VAR, f" {NIP19_SECRET_HEX} ")
    assert AdminKey.from_env(ENV_VAR).pubkey_hex == NIP19_PUBKEY_HEX


def test_from_env_errors_name_the_variable_not_the_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)
    with pytest.raises(KeyLoadError, match=ENV_VAR):
        AdminKey.from_env(ENV_VAR)
    monkeypatch.setenv(ENV_VAR, _ALMOST_SECRET)
    with pytest.raises(KeyLoadError, match=f"{ENV_VAR}.*non-hexadecimal") as caught:
        AdminKey.from_env(ENV_VAR)
    assert _ALMOST_SECRET not in _full_error_text(caught.value)


def test_write_key_file_is_0600_and_round_trips(tmp_path: Path) -> None:
    key = AdminKey.generate()
    key_path = tmp_path / "secrets" / "admin.key"
    assert write_key_file(key_path, key) == key_path
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    assert key_path.read_text() == key.secret_hex() + "\n"
    assert AdminKey.from_file(key_path) == key
    assert list(key_path.parent.iterdir()) == [key_path]  # no temp file left behind


def test_write_key_file_tightens_an_existing_loose_file(tmp_path: Path) -> None:
    key_path = tmp_path / "admin.key"
    key_path.write_text("old\n")
    os.chmod(key_path, 0o644)
    key = AdminKey.generate()
    write_key_file(key_path, key)
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    assert AdminKey.from_file(str(key_path)) == key


def test_from_file_errors_name_the_path_not_the_value(tmp_path: Path) -> None:
    missing = tmp_path / "missing.key"
    with pytest.raises(KeyLoadError, match=f"{missing}.*does not exist"):
        AdminKey.from_file(missing)
    bad = tmp_path / "bad.key"
    bad.write_text(_ALMOST_SECRET + "\n")
    with pytest.raises(KeyLoadError, match=f"{bad}.*non-hexadecimal") as caught:
        AdminKey.from_file(bad)
    assert _ALMOST_SECRET not in _full_error_text(caught.value)


def test_load_prefers_env_then_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    file_key, env_key = AdminKey.generate(), AdminKey.generate()
    key_path = write_key_file(tmp_path / "admin.key", file_key)
    monkeypatch.setenv(ENV_VAR, env_key.secret_hex())
    assert AdminKey.load(ENV_VAR, key_path) == env_key
    monkeypatch.setenv(ENV_VAR, "   ")  # blank counts as unset
    assert AdminKey.load(ENV_VAR, key_path) == file_key
    monkeypatch.delenv(ENV_VAR)
    assert AdminKey.load(env_var=ENV_VAR, file=key_path) == file_key


def test_load_does_not_fall_back_when_env_is_invalid(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key_path = write_key_file(tmp_path / "admin.key", AdminKey.generate())
    monkeypatch.setenv(ENV_VAR, "nsec1notakey")
    with pytest.raises(KeyLoadError, match=ENV_VAR):
        AdminKey.load(ENV_VAR, key_path)


def test_load_without_any_source_names_both(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)
    with pytest.raises(KeyLoadError, match=f"{ENV_VAR} is not set and no key file"):
        AdminKey.load(ENV_VAR)
    missing = tmp_path / "nope.key"
    with pytest.raises(KeyLoadError, match=f"{ENV_VAR} is not set, and key file {missing}"):
        AdminKey.load(ENV_VAR, missing)


# --------------------------------------------------------------------------- bech32 (BIP-173)

BIP173_VALID = [
    "A12UEL5L",
    "a12uel5l",
    "an83characterlonghumanreadablepartthatcontainsthenumber1andtheexcludedcharactersbio1tt5tgs",
    "abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxw",
    "11qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqc8247j",
    "split1checkupstagehandshakeupstreamerranterredcaperred2y9e3w",
    "?1ezyfcl",
]
BIP173_INVALID = [
    " 1nwldj5",  # hrp character out of range
    "\x7f1axkwrx",  # hrp character out of range
    "an84characterslonghumanreadablepartthatcontainsthenumber1andtheexcludedcharactersbio1569pvx",
    "pzry9x0s0muk",  # no separator
    "1pzry9x0s0muk",  # empty hrp
    "x1b4n0q5v",  # invalid data character
    "li1dgmt3",  # too short checksum
    "de1lg7wt\xff",  # invalid character in checksum
    "A1G7SGD8",  # checksum computed with uppercase hrp
    "split1checkupstagehandshakeupstreamerranterredcaperred2y9e2w",  # bad checksum
    "a1lqfn3a",  # valid bech32m (BIP-350), not bech32
    "aBcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxw",  # mixed case
]


@pytest.mark.parametrize("text", BIP173_VALID)
def test_bech32_valid_vectors_decode_and_reencode(text: str) -> None:
    hrp, data = bech32_decode(text)
    assert bech32_encode(hrp, data) == text.lower()


@pytest.mark.parametrize("text", BIP173_INVALID)
def test_bech32_invalid_vectors_are_rejected(text: str) -> None:
    with pytest.raises(Bech32Error):
        bech32_decode(text)


def test_bech32_rejects_nonzero_padding() -> None:
    # 'nsec' + one 5-bit group: 5 leftover bits cannot be valid 8-bit padding.
    with pytest.raises(Bech32Error, match="padding"):
        decode_bytes(bech32_encode("nsec", [1]), "nsec")
