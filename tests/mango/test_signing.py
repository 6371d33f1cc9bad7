"""sign = sha256(vpbx_api_key + json + vpbx_api_salt) over compact UTF-8 JSON (API §2.4.3-2.4.4).

The API PDF's examples print a placeholder sign, so there is no official vector. The digests
below were computed outside Python with `printf '%s' '<key><json><salt>' | sha256sum`.
"""

from __future__ import annotations

from clinic.mango import compact_json, sign, signed_form, verify
from clinic.mango.signing import FIELD_JSON, FIELD_KEY, FIELD_SIGN

VECTOR_KEY = "key-1234"
VECTOR_SALT = "salt-5678"
VECTOR_JSON = '{"campaign_id":56919,"name":"Иванов Иван","number":"79001234567"}'
VECTOR_SIGN = "c609d64ad5f80f0924b2066c7d807be5e7268145163f94481f9ef2aab834bbb7"
EMPTY_SIGN = "bcc9154f011e270b8967aadbb5770e46131a2c3722bea67b3638636ac36d1a88"


def test_known_vector_with_cyrillic() -> None:
    assert sign(VECTOR_KEY, VECTOR_JSON, VECTOR_SALT) == VECTOR_SIGN


def test_known_vector_for_empty_object_as_custom_type_list_sends() -> None:
    assert signed_form(VECTOR_KEY, VECTOR_SALT, {})[FIELD_SIGN] == EMPTY_SIGN


def test_compact_json_has_no_spaces_and_keeps_cyrillic() -> None:
    payload = {"campaign_id": 56919, "name": "Иванов Иван", "number": "79001234567"}
    assert compact_json(payload) == VECTOR_JSON


def test_signed_form_has_exactly_the_three_documented_fields_and_no_salt() -> None:
    form = signed_form(
        VECTOR_KEY, VECTOR_SALT, {"campaign_id": 56919, "name": "Иванов Иван", "number": "79001234567"}
    )
    assert set(form) == {FIELD_KEY, FIELD_SIGN, FIELD_JSON} == {"vpbx_api_key", "sign", "json"}
    assert form == {"vpbx_api_key": VECTOR_KEY, "sign": VECTOR_SIGN, "json": VECTOR_JSON}
    assert all(VECTOR_SALT not in value for value in form.values())


def test_sign_changes_with_any_byte_of_the_json() -> None:
    spaced = '{"campaign_id": 56919,"name":"Иванов Иван","number":"79001234567"}'
    assert sign(VECTOR_KEY, spaced, VECTOR_SALT) != VECTOR_SIGN


def test_verify_accepts_the_right_sign_and_rejects_others() -> None:
    assert verify(VECTOR_KEY, VECTOR_SALT, VECTOR_JSON, VECTOR_SIGN)
    assert verify(VECTOR_KEY, VECTOR_SALT, VECTOR_JSON, VECTOR_SIGN.upper())
    assert not verify(VECTOR_KEY, "other-salt", VECTOR_JSON, VECTOR_SIGN)
    assert not verify(VECTOR_KEY, VECTOR_SALT, VECTOR_JSON, "")
