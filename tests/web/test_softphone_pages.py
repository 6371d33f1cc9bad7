"""The softphone's web side: the choice of phone and the two device fields in the user form
(«IP-телефония»), the softphone window and its JSON endpoints, bad input refused in Russian
with 4xx, the websocket allowed by the softphone window's policy only. Runs on SQLite, and on
PostgreSQL when DATABASE_URL names one."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from sqlalchemy.orm import Session, sessionmaker

from clinic.db import transaction
from clinic.models import User
from clinic.security import sip_md5_cred
from clinic.softphone import web_password

from .support import RecordingApplier, Web
from .test_users_page import SIP_SECRET, by_login, create, edit


def _directives(policy: str) -> dict[str, str]:
    return dict(part.strip().split(" ", 1) for part in policy.split(";"))


def _telephony(**more: str) -> dict[str, str]:
    return {"tab": "telephony", "extension": "105", "sip_id": "reg105", "sip_password": SIP_SECRET, **more}


def test_the_telephony_tab_has_the_seeds_fields(admin_web: Web) -> None:
    page = admin_web.text("/admin/users/new?tab=telephony")
    for label in ("Какой телефон звонит", "Встроенный софтфон", "SIP-телефон", "Оба",
                  "Записывающее устройство", "Устройство воспроизведения"):
        assert label in page, label
    assert 'name="softphone_ring" value="sip" checked' in page  # a new user keeps the desk phone


def test_choice_and_devices_are_saved_and_the_choice_is_applied(
    admin_web: Web, sessions: sessionmaker[Session], applier: RecordingApplier
) -> None:
    response = create(admin_web, **_telephony(softphone_ring="both", mic_device="Гарнитура USB",
                                              speaker_device="Headset (Jabra EVOLVE 20)"))
    assert response.status_code == 302
    user = by_login(sessions, "ivanova")
    assert user is not None
    assert (user.softphone_ring, user.mic_device, user.speaker_device) == (
        "both", "Гарнитура USB", "Headset (Jabra EVOLVE 20)")
    assert len(applier.calls) == 1
    page = admin_web.text(f"/admin/users/{user.id}?tab=telephony")
    assert 'value="Гарнитура USB"' in page and 'name="softphone_ring" value="both" checked' in page
    # a new choice goes to the dialplan; new devices alone do not touch Asterisk
    assert edit(admin_web, user.id, **_telephony(softphone_ring="web", sip_password="")).status_code == 302
    assert len(applier.calls) == 2
    assert edit(admin_web, user.id, **_telephony(softphone_ring="web", sip_password="",
                                                 mic_device="Другой микрофон")).status_code == 302
    assert len(applier.calls) == 2
    assert by_login(sessions, "ivanova").mic_device == "Другой микрофон"  # type: ignore[union-attr]


@pytest.mark.parametrize(("field", "value", "message"), [
    ("softphone_ring", "desk", "Выберите, какой телефон звонит"),
    ("mic_device", "a\nb", "управляющие символы"),
    ("speaker_device", "x" * 201, "длиннее 200 символов"),
    ("sip_id", "reg105-web", "не может оканчиваться на «-web»"),
])
def test_bad_softphone_input_is_refused_in_russian(
    admin_web: Web, sessions: sessionmaker[Session], applier: RecordingApplier, field: str, value: str,
    message: str
) -> None:
    response = create(admin_web, **_telephony(**{field: value}))
    assert response.status_code == 422
    assert message in response.text
    assert by_login(sessions, "ivanova") is None
    assert applier.calls == []


@pytest.fixture()
def phone_user(make_user: Callable[..., int]) -> int:
    return make_user("reg105", extension="105", sip_id="reg105",
                     sip_md5_cred=sip_md5_cred("reg105", SIP_SECRET), mic_device="Старый микрофон")


def _login(app: Flask, login: str) -> Web:
    from .support import REGISTRAR_PASSWORD

    web = Web(app.test_client())
    assert web.login(login, REGISTRAR_PASSWORD).status_code == 302
    return web


def test_the_softphone_window_alone_may_open_asterisks_websocket(app: Flask, phone_user: int) -> None:
    web = _login(app, "reg105")
    page = web.get("/phone/softphone")
    assert page.status_code == 200
    assert "jssip.min.js" in page.text and "Записывающее устройство" in page.text
    assert "ws://127.0.0.1:8088" in _directives(page.headers["Content-Security-Policy"])["connect-src"]
    window = web.get("/phone")
    assert "ws://127.0.0.1:8088" not in window.headers["Content-Security-Policy"]
    assert 'data-testid="btn-open-softphone"' in window.text
    assert web.get("/static/vendor/jssip/jssip.min.js").status_code == 200
    assert "MIT" in web.get("/static/vendor/jssip/LICENSES.txt").text


def test_the_account_gives_the_browser_endpoint(app: Flask, phone_user: int) -> None:
    web = _login(app, "reg105")
    data = web.get("/phone/api/softphone").get_json()
    assert data["user"] == "reg105-web"
    assert data["uri"] == "sip:reg105-web@127.0.0.1"
    assert data["password"] == web_password(app.config["MIS"].secret_key, "reg105")
    assert data["ws_url"] == "ws://127.0.0.1:8088/ws"
    assert (data["ring"], data["mic_device"]) == ("sip", "Старый микрофон")
    assert data["ice_servers"] == []


def test_behind_nat_the_browser_gets_the_stun_server(
    app: Flask, phone_user: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MIS_STUN_SERVER", "stun.clinic.example:3478")
    data = _login(app, "reg105").get("/phone/api/softphone").get_json()
    assert data["ice_servers"] == [{"urls": "stun:stun.clinic.example:3478"}]


def test_without_an_extension_the_softphone_says_why(app: Flask, registrar_web: Web) -> None:
    response = registrar_web.get("/phone/api/softphone")
    assert response.status_code == 409
    assert "не настроен добавочный номер" in response.get_json()["error"]
    page = registrar_web.get("/phone/softphone")
    assert page.status_code == 200 and 'data-testid="no-extension"' in page.text
    assert "jssip.min.js" not in page.text  # no phone that cannot work


def test_devices_are_saved_from_the_softphone_window(
    app: Flask, phone_user: int, sessions: sessionmaker[Session]
) -> None:
    web = _login(app, "reg105")
    token = web.csrf("/phone")

    def post(body: Any) -> Any:
        raw = body if isinstance(body, str) else json.dumps(body)
        return web.client.post("/phone/api/softphone/devices", data=raw, content_type="application/json",
                               headers={"X-CSRFToken": token})

    ok = post({"mic_device": "Гарнитура", "speaker_device": ""})
    assert ok.status_code == 200 and ok.get_json()["mic_device"] == "Гарнитура"
    with transaction(sessions) as s:
        user = s.get(User, phone_user)
        assert user is not None and (user.mic_device, user.speaker_device) == ("Гарнитура", "")
    for body, status, message in (
        ("[]", 400, ""), ("{", 400, ""), ({}, 400, "Нет полей"),
        ({"mic_device": 5}, 422, "Нужна строка"), ({"speaker_device": "x" * 201}, 422, "длиннее 200"),
        ({"mic_device": "a\u2028b"}, 422, "управляющие символы"),
    ):
        response = post(body)
        assert response.status_code == status, body
        assert message in response.get_json()["error"], body
    no_csrf = web.client.post("/phone/api/softphone/devices", json={"mic_device": "x"})
    assert no_csrf.status_code == 400
    with transaction(sessions) as s:
        assert s.get(User, phone_user).mic_device == "Гарнитура"  # type: ignore[union-attr]


def test_anonymous_visitors_get_no_softphone_and_no_password(anon: Web) -> None:
    for url in ("/phone/softphone", "/phone/api/softphone"):
        response = anon.get(url)
        assert response.status_code == 302 and response.location.startswith("/login"), url
        assert "password" not in response.text
    refused = anon.client.post("/phone/api/softphone/devices", json={"mic_device": "x"})
    assert refused.status_code == 302 and refused.location.startswith("/login")
