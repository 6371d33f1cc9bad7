"""The directory's snapshot (`GET /phone/api/presence`) without ari_app: a session is
needed, the colleagues come from the database with «нет данных» rather than a guessed
state, and nothing of anyone's SIP account is in it."""

from __future__ import annotations

from collections.abc import Callable

from clinic.security import sip_md5_cred

from .support import Web


def test_the_snapshot_needs_a_session(anon: Web, registrar_id: int) -> None:
    resp = anon.get("/phone/api/presence")
    assert resp.status_code == 302 and "/login" in resp.location
    assert b"extension" not in resp.data


def test_without_ari_app_every_colleague_is_listed_with_no_data_and_no_secrets(
    registrar_web: Web, make_user: Callable[..., int]
) -> None:
    ivanov = make_user("ivanov", full_name="Иванов Иван", extension="101", sip_id="reg101",
                       sip_md5_cred=sip_md5_cred("reg101", "Secret-101"))  # fmt: skip
    make_user("petrov", full_name="Петров Пётр", extension="102", sip_id="reg102",
              sip_md5_cred=sip_md5_cred("reg102", "Secret-102"), is_active=False)  # fmt: skip
    make_user("nosip", full_name="Без Телефона", extension="103")  # no SIP account: no phone to show
    resp = registrar_web.get("/phone/api/presence")
    assert resp.status_code == 200
    data = resp.get_json()
    assert data["available"] is False
    only = {"id": ivanov, "name": "Иванов Иван", "extension": "101", "state": "unknown"}
    assert data["users"] == [{**only, "title": "нет данных", "seq": 0}]
    text = resp.get_data(as_text=True)
    for secret in ("reg101", sip_md5_cred("reg101", "Secret-101"), "Secret-101", "sip", "password"):
        assert secret not in text
