import hashlib

import pytest

from clinic.security import (
    hash_password,
    mask,
    new_api_token,
    sip_md5_cred,
    token_digest,
    verify_password,
    weak_password_reason,
)


def test_password_hash_roundtrip_and_no_plaintext() -> None:
    h = hash_password("Klinika-2026")
    assert "Klinika-2026" not in h
    assert verify_password(h, "Klinika-2026")
    assert not verify_password(h, "klinika-2026")


def test_sip_digest_is_rfc2617_ha1() -> None:
    expected = hashlib.md5(b"101:mis-telephony:Zvonok-A1b2").hexdigest()
    assert sip_md5_cred("101", "Zvonok-A1b2") == expected


@pytest.mark.parametrize(
    "password",
    ["123", "password", "12345678", "aaaaaaaa1", "87654321", "room101pass1", "qwerty123"],
)
def test_weak_passwords_are_refused(password: str) -> None:
    assert weak_password_reason(password, extension="101") is not None


def test_reasonable_password_passes() -> None:
    assert weak_password_reason("Zvonok-A1b2", login="reg1", extension="101") is None


def test_mask_hides_all_but_the_tail() -> None:
    key = "64589EDB-8F29-C45C-1FB1-2EB497EFB170"
    masked = mask(key)
    assert masked.endswith("B170") and key[:-4] not in masked and len(masked) == len(key)
    assert mask("short") == "*****"
    assert mask("") == ""


def test_api_tokens_store_only_a_digest() -> None:
    token, digest = new_api_token()
    assert token not in digest and digest == token_digest(token) and len(digest) == 64
