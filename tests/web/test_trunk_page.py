"""«ЛПУ → IP-телефония → Транк»: validation with Russian messages, the password never shown
back, saving re-applies the PBX, registrars are kept out; the rendered trunk config."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from asterisk_conf.render import PbxInput, PhoneUser, render
from asterisk_conf.validate import validate
from clinic.db import transaction
from clinic.services.settings import get_settings

from .support import RecordingApplier, Web

GOOD = {
    "trunk_host": "sip.operator.ru",
    "trunk_port": "5060",
    "trunk_user": "clinic42",
    "trunk_password": "S3cret-trunk",
    "trunk_callerid": "8 (495) 123-45-67",
}


def _row(sessions: sessionmaker[Session]):  # type: ignore[no-untyped-def]
    with transaction(sessions) as s:
        row = get_settings(s)
        s.expunge(row)
        return row


def test_admin_saves_the_trunk_and_the_pbx_is_reapplied(
    admin_web: Web, applier: RecordingApplier, sessions: sessionmaker[Session]
) -> None:
    resp = admin_web.post_form("/admin/trunk", GOOD)
    assert resp.status_code == 302
    row = _row(sessions)
    assert (row.trunk_host, row.trunk_port, row.trunk_user, row.trunk_callerid) == (
        "sip.operator.ru",
        5060,
        "clinic42",
        "+74951234567",
    )
    assert row.trunk_password == "S3cret-trunk"
    assert len(applier.calls) == 1
    page = admin_web.text("/admin/trunk")
    assert "S3cret-trunk" not in page and "сохранён; пусто — не менять" in page
    # an empty password keeps the stored one; saving the same again does not re-apply
    assert admin_web.post_form("/admin/trunk", {**GOOD, "trunk_password": ""}).status_code == 302
    assert _row(sessions).trunk_password == "S3cret-trunk" and len(applier.calls) == 1


def test_bad_values_are_refused_with_russian_messages(
    admin_web: Web, applier: RecordingApplier, sessions: sessionmaker[Session]
) -> None:
    bad = {
        "trunk_host": "sip operator",
        "trunk_port": "70000",
        "trunk_user": "кто-то",
        "trunk_password": "a;b",
        "trunk_callerid": "12-34",
    }
    resp = admin_web.post_form("/admin/trunk", bad)
    assert resp.status_code == 422
    text = resp.text
    for expected in (
        "Адрес SIP-сервера: имя хоста или IP-адрес",
        "Порт должен быть числом от 1 до 65535",
        "Пользователь: латинские буквы",
        "Пароль не должен содержать",
        "Некорректный номер телефона",
    ):
        assert expected in text
    assert _row(sessions).trunk_host == "" and applier.calls == []
    need = admin_web.post_form("/admin/trunk", {**GOOD, "trunk_password": ""})
    assert need.status_code == 422 and "Для пользователя нужен пароль" in need.text


def test_registrar_cannot_open_the_trunk_page(registrar_web: Web) -> None:
    assert registrar_web.get("/admin/trunk").status_code == 403


# what every rendering below shares: the PBX without and with a trunk
BASE: dict[str, Any] = {
    "sip_domain": "127.0.0.1",
    "sip_port": 5060,
    "rtp_start": 10000,
    "rtp_end": 10999,
    "loopback": True,
    "http_port": 8088,
    "ari_user": "mis",
    "ari_password": "a" * 12,
}


def test_trunk_renders_valid_config_and_its_password_is_a_secret() -> None:
    inp = PbxInput(
        **BASE,
        ami_secret="b" * 12,
        users=(PhoneUser("101", "reg101", "0" * 32, "Регистратор"),),
        trunk="trunk",
        trunk_host="sip.operator.ru",
        trunk_port=5070,
        trunk_user="clinic42",
        trunk_password="S3cret-trunk",
        outbound_callerid="+74951234567",
    )
    files = render(inp)
    assert validate(files) == []
    pjsip = files["pjsip.conf"]
    assert "contact=sip:sip.operator.ru:5070" in pjsip and "outbound_auth=trunk-auth" in pjsip
    assert "endpoint_identifier_order=username,auth_username,ip" in pjsip
    assert "Dial(PJSIP/${EXTEN}@trunk" in files["extensions.conf"]
    assert "S3cret-trunk" in inp.secrets
    no_trunk = render(PbxInput(**BASE))
    assert "[trunk]" not in no_trunk["pjsip.conf"] and "Congestion" in no_trunk["extensions.conf"]
