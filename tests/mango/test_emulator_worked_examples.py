"""The Mango emulator against worked examples computed by hand from mango.md §1-§2.

sign = sha256(vpbx_api_key + json + vpbx_api_salt), lowercase hex over the UTF-8 bytes of the
compact `json` field. Every digest below was computed outside Python with
``printf '%s' '<key><json><salt>' | sha256sum``. The client's signer is checked against the
same vectors in a separate case, so a misreading shows as one side failing.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from clinic.mango import signing as client_signing
from emulators.mango.signing import expected_sign, sign_ok

from .support import KEY, SALT, RunningEmulator, post_raw

# (key, json, salt, sign)
VECTORS: list[tuple[str, str, str, str]] = [
    ("k", '{"campaign_id":56919}', "s", "694595ba90b0868a8719131078e7a666732da895f0308a1e81c288b283565991"),
    # Cyrillic goes in as UTF-8 bytes (d0 98 d0 b2 …), not as \u escapes.
    ("k", '{"name":"Иванов Иван"}', "s", "b839a94b3e77eccffcb1c5de2543c57d86318efa2d13d379c06c777f0cba1211"),
    (
        "key-1234",
        '{"campaign_id":56919,"name":"Иванов Иван","number":"79001234567"}',
        "salt-5678",
        "c609d64ad5f80f0924b2066c7d807be5e7268145163f94481f9ef2aab834bbb7",
    ),
    ("key-1234", "{}", "salt-5678", "bcc9154f011e270b8967aadbb5770e46131a2c3722bea67b3638636ac36d1a88"),
]

Signer = Callable[[str, str, str], str]
SIGNERS: dict[str, Signer] = {"emulator": expected_sign, "client": client_signing.sign}


@pytest.mark.parametrize("side", sorted(SIGNERS))
@pytest.mark.parametrize(("key", "text", "salt", "digest"), VECTORS)
def test_sign_worked_examples(side: str, key: str, text: str, salt: str, digest: str) -> None:
    assert SIGNERS[side](key, text, salt) == digest


@pytest.mark.parametrize(("key", "text", "salt", "digest"), VECTORS)
def test_emulator_accepts_only_the_exact_lowercase_digest(
    key: str, text: str, salt: str, digest: str
) -> None:
    assert sign_ok(key, text, salt, digest)
    assert not sign_ok(key, text, salt, digest.upper())
    assert not sign_ok(key, text + " ", salt, digest)
    assert not sign_ok(key, text, salt, "ж" * 64)  # non-ASCII: a mismatch, not an exception


def test_client_builds_the_worked_form() -> None:
    """The client's three fields for the second vector: compact JSON with Cyrillic as is."""
    form = client_signing.signed_form("k", "s", {"name": "Иванов Иван"})
    assert form == {
        "vpbx_api_key": "k",
        "sign": "b839a94b3e77eccffcb1c5de2543c57d86318efa2d13d379c06c777f0cba1211",
        "json": '{"name":"Иванов Иван"}',
    }


# printf '%s' 'test-vpbx-key-0001{}test-vpbx-salt-s3cr3t' | sha256sum
EMPTY_SIGN = "7ad2f0190832793e2daf9386864f77a5f6c28b390cc920300a40ce3135d65355"
# printf '%s' 'test-vpbx-key-0001{"campaign_id": 56919}test-vpbx-salt-s3cr3t' | sha256sum
PRETTY_SIGN = "5fbec76de79bbf73390032346aadb6e6cb59967d9c1410ea66eff12fa8ab59a8"
# printf '%s' 'test-vpbx-key-0001{"campaign_id":56919}test-vpbx-salt-s3cr3t' | sha256sum
COMPACT_SIGN = "e31e8a990aa00ace0f571fcff8cdf2db0e64572fe1c77287db26391f2cd259ca"


def test_worked_request_on_the_wire(emu: RunningEmulator) -> None:
    assert (KEY, SALT) == ("test-vpbx-key-0001", "test-vpbx-salt-s3cr3t")  # what the digests used
    good = post_raw(emu, "custom-type/list", {"vpbx_api_key": KEY, "sign": EMPTY_SIGN, "json": "{}"})
    assert good.status_code == 200
    # The documented odd shape (§2 step A): the list under "result", the code under "status".
    body = good.json()
    assert body["status"] == 200 and {f["name"] for f in body["result"]} >= {"Время", "Дата", "Услуга"}

    upper = post_raw(emu, "custom-type/list", {"vpbx_api_key": KEY, "sign": EMPTY_SIGN.upper(), "json": "{}"})
    assert upper.json()["result"] == 3102
    # A sign over other bytes than those sent (pretty JSON signed, compact sent) is 3102.
    compact = '{"campaign_id":56919}'
    wrong = post_raw(
        emu, "campaign-report/create", {"vpbx_api_key": KEY, "sign": PRETTY_SIGN, "json": compact}
    )
    assert wrong.json()["result"] == 3102
    right = post_raw(
        emu, "campaign-report/create", {"vpbx_api_key": KEY, "sign": COMPACT_SIGN, "json": compact}
    )
    assert right.status_code == 200 and right.json()["result"] == 1000


def test_task_add_worked_example_custom_fields_by_id(emu: RunningEmulator) -> None:
    """§2 steps A/B2: custom_fields are keyed by the field ids as strings, never by names;
    task/add answers {"result":1000,"task_id":…}. 5901 is the emulator's id for «Время»."""
    by_id = '{"campaign_id":56919,"number":"79001234567","comment":"A-1","custom_fields":{"5901":"10:30"}}'
    # printf '%s' 'test-vpbx-key-0001<by_id>test-vpbx-salt-s3cr3t' | sha256sum
    sign_by_id = "5d0250c06f5ba8256a5a870a5b8e4c04fa1f6d2087ae55b0e44ae5612e0d4809"
    added = post_raw(emu, "task/add", {"vpbx_api_key": KEY, "sign": sign_by_id, "json": by_id})
    assert added.status_code == 200
    reply = added.json()
    assert reply["result"] == 1000 and isinstance(reply["task_id"], int)

    by_name = '{"campaign_id":56919,"number":"79001234568","custom_fields":{"Время":"10:30"}}'
    # printf '%s' 'test-vpbx-key-0001<by_name>test-vpbx-salt-s3cr3t' | sha256sum
    sign_by_name = "4814b095bc18e20789fdacce626b170a44616f19d1129a31bc6438fc4b41d7a9"
    refused = post_raw(emu, "task/add", {"vpbx_api_key": KEY, "sign": sign_by_name, "json": by_name})
    assert refused.json()["result"] == 3100


def test_non_ascii_sign_is_a_mismatch_not_a_crash(emu: RunningEmulator) -> None:
    reply = post_raw(emu, "custom-type/list", {"vpbx_api_key": KEY, "sign": "подпись", "json": "{}"})
    assert (reply.status_code, reply.json()["result"]) == (400, 3102)
