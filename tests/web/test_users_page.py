"""«Пользователи системы»: create/edit validation, SIP credentials kept only as the MD5 digest,
and the PBX applier called when a user's telephony changes."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from clinic.db import transaction
from clinic.models import ROLE_ADMIN, User
from clinic.security import sip_md5_cred, verify_password
from clinic.services.settings import get_settings

from .support import ADMIN_PASSWORD, RecordingApplier, Web

SIP_SECRET = "Xq7-kLm2-Pz9"


def user_form(**overrides: str | None) -> dict[str, str]:
    form: dict[str, str | None] = {
        "tab": "main",
        "login": "ivanova",
        "full_name": "Иванова Елена Петровна",
        "role": "registrar",
        "is_active": "on",
        "password": "Reg-pass-1",
        "extension": "",
        "sip_id": "",
        "sip_password": "",
        **overrides,
    }
    return {key: value for key, value in form.items() if value is not None}


def create(web: Web, **overrides: str | None) -> Any:
    return web.post_form("/admin/users/new", user_form(**overrides))


def edit(web: Web, user_id: int, **overrides: str | None) -> Any:
    return web.post_form(f"/admin/users/{user_id}", user_form(**overrides))


def by_login(sessions: sessionmaker[Session], login: str) -> User | None:
    with transaction(sessions) as session:
        user = session.scalars(select(User).where(User.login == login)).first()
        if user is not None:
            session.expunge(user)
        return user


def count_users(sessions: sessionmaker[Session]) -> int:
    with transaction(sessions) as session:
        return len(session.scalars(select(User)).all())


def test_form_has_the_two_tabs(admin_web: Web) -> None:
    page = admin_web.text("/admin/users/new")
    for label in (
        "Основное",
        "IP-телефония",
        "Логин",
        "ФИО",
        "Роль",
        "Пароль",
        "Доб. номер",
        "ID SIP",
        "Пароль SIP",
    ):
        assert label in page, label


def test_create_registrar_who_can_then_log_in(admin_web: Web, sessions: Any, app: Any) -> None:
    response = create(admin_web)
    user = by_login(sessions, "ivanova")
    assert user is not None
    assert response.location == f"/admin/users/{user.id}?tab=main"
    assert "Пользователь «ivanova» сохранён" in admin_web.text(response.location)
    assert user.full_name == "Иванова Елена Петровна"
    assert user.role == "registrar"
    assert user.password_hash != "Reg-pass-1"
    assert verify_password(user.password_hash, "Reg-pass-1")
    assert "ivanova" in admin_web.text("/admin/users")
    assert Web(app.test_client()).login("ivanova", "Reg-pass-1").status_code == 302


BAD_USERS = [
    ({"login": ""}, "login", "Укажите логин"),
    ({"login": "x"}, "login", "Логин: от 2 до 64 символов"),
    ({"login": "иванова"}, "login", "латинские буквы"),
    ({"login": "ivan ova"}, "login", "Логин: от 2 до 64 символов"),
    ({"login": "admin"}, "login", "Логин «admin» уже занят"),
    ({"login": "ADMIN"}, "login", "уже занят"),
    ({"password": ""}, "password", "Укажите пароль"),
    ({"password": "12345"}, "password", "не менее 6 символов"),
    ({"password": "ivanova", "login": "ivanova"}, "password", "не должен совпадать с логином"),
    ({"role": "root"}, "role", "Выберите роль"),
    ({"full_name": "Я" * 201}, "full_name", "ФИО: не длиннее 200 символов"),
    ({"extension": "1"}, "extension", "Доб. номер: от 2 до 6 цифр"),
    ({"extension": "1234567"}, "extension", "Доб. номер: от 2 до 6 цифр"),
    ({"extension": "10a"}, "extension", "Доб. номер: от 2 до 6 цифр"),
    ({"extension": "１０１"}, "extension", "Доб. номер: от 2 до 6 цифр"),  # full-width digits
    ({"extension": "101"}, "sip_id", "укажите и доб. номер, и ID SIP"),
    ({"sip_id": "reg101"}, "extension", "укажите и доб. номер, и ID SIP"),
    ({"extension": "101", "sip_id": "reg:101", "sip_password": SIP_SECRET}, "sip_id", "ID SIP: от 2 до 64"),
    ({"extension": "101", "sip_id": "рег101", "sip_password": SIP_SECRET}, "sip_id", "ID SIP"),
    ({"extension": "101", "sip_id": "reg101"}, "sip_password", "Задайте пароль SIP"),
    ({"extension": "101", "sip_id": "reg101", "sip_password": "12345678"}, "sip_password", "слишком простой"),
    (
        {"extension": "101", "sip_id": "reg101", "sip_password": "short"},
        "sip_password",
        "не менее 8 символов",
    ),
    (
        {"extension": "101", "sip_id": "reg101", "sip_password": "xx101xx-abc"},
        "sip_password",
        "логин или номер",
    ),
    ({"extension": "101", "sip_id": "reg101", "sip_password": "Xq7 kLm2 Pz9"}, "sip_password", "пробелы"),
    ({"sip_password": SIP_SECRET}, "sip_password", "задаётся вместе с доб. номером и ID SIP"),
]


@pytest.mark.parametrize(
    ("overrides", "field", "message"), BAD_USERS, ids=[f"{f}-{n}" for n, (_, f, _) in enumerate(BAD_USERS)]
)
def test_bad_user_is_refused_with_a_russian_message(
    admin_web: Web,
    sessions: sessionmaker[Session],
    applier: RecordingApplier,
    overrides: dict[str, str],
    field: str,
    message: str,
) -> None:
    before = count_users(sessions)
    response = create(admin_web, **overrides)
    assert response.status_code == 422
    assert f'data-error-for="{field}"' in response.text
    assert message in response.text
    assert count_users(sessions) == before
    assert applier.calls == []


def test_passwords_are_never_echoed_after_an_error(admin_web: Web) -> None:
    page = create(
        admin_web, login="", password="Typed-pass-1", extension="101", sip_id="r1", sip_password=SIP_SECRET
    )
    assert "Typed-pass-1" not in page.text
    assert SIP_SECRET not in page.text
    assert 'value="101"' in page.text  # the rest is kept for correction


def test_duplicate_extension_and_sip_id(admin_web: Web, make_user: Callable[..., int]) -> None:
    make_user("petrov", extension="101", sip_id="petrov101", sip_md5_cred="0" * 32)
    page = create(admin_web, extension="101", sip_id="petrov101", sip_password=SIP_SECRET).text
    assert "Доб. номер 101 уже занят пользователем «petrov»" in page
    assert "ID SIP «petrov101» уже используется пользователем «petrov»" in page


def test_strong_passwords_setting_is_enforced(admin_web: Web, sessions: sessionmaker[Session]) -> None:
    with transaction(sessions) as session:
        get_settings(session).strong_passwords = True
    page = create(admin_web, password="onlyletters").text
    assert "Пароль должен содержать буквы и цифры" in page
    page = create(admin_web, password="qwerty").text
    assert "не менее 8 символов" in page
    assert create(admin_web, password="Strong-pass-42").status_code == 302


# --- SIP credentials -----------------------------------------------------------------------


def test_sip_password_is_stored_only_as_the_md5_digest(
    admin_web: Web, sessions: sessionmaker[Session], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    response = create(
        admin_web, tab="telephony", extension="101", sip_id="ivanova101", sip_password=SIP_SECRET
    )
    assert response.status_code == 302
    user = by_login(sessions, "ivanova")
    assert user is not None
    assert user.sip_md5_cred == sip_md5_cred("ivanova101", SIP_SECRET)
    with transaction(sessions) as session:
        row = session.get(User, user.id)
        stored = [str(getattr(row, column.key)) for column in User.__table__.columns]
    assert all(SIP_SECRET not in value for value in stored)
    page = admin_web.text(response.location)
    assert SIP_SECRET not in page
    assert user.sip_md5_cred not in page
    assert "Пароль SIP задан" in page
    assert "задан" in admin_web.text("/admin/users")
    assert SIP_SECRET not in caplog.text


def test_blank_sip_password_keeps_the_digest(
    admin_web: Web, sessions: sessionmaker[Session], applier: RecordingApplier
) -> None:
    create(admin_web, extension="101", sip_id="ivanova101", sip_password=SIP_SECRET)
    user = by_login(sessions, "ivanova")
    assert user is not None
    applier.calls.clear()
    response = edit(
        admin_web, user.id, password="", extension="101", sip_id="ivanova101", full_name="Иванова Е.П."
    )
    assert response.status_code == 302
    after = by_login(sessions, "ivanova")
    assert after is not None
    assert after.sip_md5_cred == user.sip_md5_cred
    assert after.password_hash == user.password_hash  # blank login password also kept
    assert after.full_name == "Иванова Е.П."
    assert applier.calls == []


def test_changing_sip_id_requires_the_sip_password_again(
    admin_web: Web, sessions: sessionmaker[Session]
) -> None:
    create(admin_web, extension="101", sip_id="ivanova101", sip_password=SIP_SECRET)
    user = by_login(sessions, "ivanova")
    assert user is not None
    page = edit(admin_web, user.id, password="", extension="101", sip_id="ivanova")
    assert page.status_code == 422
    assert "ID SIP изменён: задайте пароль SIP заново" in page.text
    ok = edit(admin_web, user.id, password="", extension="101", sip_id="ivanova", sip_password=SIP_SECRET)
    assert ok.status_code == 302
    after = by_login(sessions, "ivanova")
    assert after is not None
    assert after.sip_md5_cred == sip_md5_cred("ivanova", SIP_SECRET)


def test_clearing_extension_and_sip_id_switches_telephony_off(
    admin_web: Web, sessions: sessionmaker[Session], applier: RecordingApplier
) -> None:
    create(admin_web, extension="101", sip_id="ivanova101", sip_password=SIP_SECRET)
    user = by_login(sessions, "ivanova")
    assert user is not None
    applier.calls.clear()
    assert edit(admin_web, user.id, password="", extension="", sip_id="").status_code == 302
    after = by_login(sessions, "ivanova")
    assert after is not None
    assert (after.extension, after.sip_id, after.sip_md5_cred) == (None, None, None)
    assert len(applier.calls) == 1


def test_own_extension_is_not_a_duplicate(admin_web: Web, sessions: sessionmaker[Session]) -> None:
    create(admin_web, extension="101", sip_id="ivanova101", sip_password=SIP_SECRET)
    user = by_login(sessions, "ivanova")
    assert user is not None
    assert edit(admin_web, user.id, password="", extension="101", sip_id="ivanova101").status_code == 302


# --- the applier ---------------------------------------------------------------------------


def test_new_user_with_telephony_calls_the_applier(
    admin_web: Web, applier: RecordingApplier, admin_id: int
) -> None:
    response = create(admin_web, extension="101", sip_id="ivanova101", sip_password=SIP_SECRET)
    assert applier.calls == [admin_id]
    assert "АТС: конфигурация применена" in admin_web.text(response.location)


def test_new_user_without_telephony_does_not_call_the_applier(
    admin_web: Web, applier: RecordingApplier
) -> None:
    response = create(admin_web)
    assert applier.calls == []
    assert 'role="status">АТС' not in admin_web.text(response.location)  # no PBX flash (the menu has «АТС»)


@pytest.mark.parametrize(
    "overrides",
    [
        {"extension": "102"},
        {"sip_password": "Nw8-rTy4-Qa1"},
        {"sip_id": "other102", "sip_password": SIP_SECRET},
    ],
)
def test_telephony_edits_call_the_applier(
    admin_web: Web,
    sessions: sessionmaker[Session],
    applier: RecordingApplier,
    admin_id: int,
    overrides: dict[str, str],
) -> None:
    create(admin_web, extension="101", sip_id="ivanova101", sip_password=SIP_SECRET)
    user = by_login(sessions, "ivanova")
    assert user is not None
    applier.calls.clear()
    form = {"password": "", "extension": "101", "sip_id": "ivanova101", **overrides}
    response = edit(admin_web, user.id, **form)
    assert response.status_code == 302
    assert applier.calls == [admin_id]


@pytest.mark.parametrize(
    "overrides",
    [{"full_name": "Другая"}, {"password": "New-pass-77"}, {"role": "admin"}, {"login": "ivanova2"}],
)
def test_unrelated_user_edits_do_not_call_the_applier(
    admin_web: Web, sessions: sessionmaker[Session], applier: RecordingApplier, overrides: dict[str, str]
) -> None:
    create(admin_web, extension="101", sip_id="ivanova101", sip_password=SIP_SECRET)
    user = by_login(sessions, "ivanova")
    assert user is not None
    applier.calls.clear()
    form = {"password": "", "extension": "101", "sip_id": "ivanova101", **overrides}
    assert edit(admin_web, user.id, **form).status_code == 302
    assert applier.calls == []


def test_deactivating_a_user_with_telephony_calls_the_applier(
    admin_web: Web, sessions: sessionmaker[Session], applier: RecordingApplier
) -> None:
    create(admin_web, extension="101", sip_id="ivanova101", sip_password=SIP_SECRET)
    user = by_login(sessions, "ivanova")
    assert user is not None
    applier.calls.clear()
    assert (
        edit(
            admin_web, user.id, password="", extension="101", sip_id="ivanova101", is_active=None
        ).status_code
        == 302
    )
    assert len(applier.calls) == 1


# --- admins --------------------------------------------------------------------------------


def test_last_admin_cannot_be_demoted_or_disabled(admin_web: Web, admin_id: int, sessions: Any) -> None:
    for overrides in ({"role": "registrar"}, {"is_active": None}):
        page = edit(admin_web, admin_id, login="admin", password="", **overrides)
        assert page.status_code == 422
        assert "последнего администратора" in page.text
    with transaction(sessions) as session:
        admin = session.get(User, admin_id)
        assert admin.role == ROLE_ADMIN and admin.is_active


def test_admin_changing_own_password_stays_logged_in(admin_web: Web, admin_id: int, app: Any) -> None:
    response = edit(admin_web, admin_id, login="admin", role="admin", password="Brand-new-9")
    assert response.status_code == 302
    assert admin_web.get("/admin/users").status_code == 200
    assert Web(app.test_client()).login("admin", ADMIN_PASSWORD).status_code == 401
    assert Web(app.test_client()).login("admin", "Brand-new-9").status_code == 302


def test_unknown_user_is_404(admin_web: Web) -> None:
    assert admin_web.get("/admin/users/9999").status_code == 404
