"""The services behind the pages, called the way the REST API will call them (JSON values,
partial updates)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from clinic.db import transaction
from clinic.hosts import is_host
from clinic.models import ClinicSettings
from clinic.services import ValidationError, parse_bool, parse_int
from clinic.services.auth import authenticate
from clinic.services.settings import get_settings, read_settings, update_settings
from clinic.services.users import create_user, update_user


def test_parse_helpers() -> None:
    assert parse_int(5060) == 5060
    assert parse_int(" 5060 ") == 5060
    for bad in ("5060a", "5.0", "", None, True, "+-5", "١٢٣", 1.5):
        assert parse_int(bad) is None, bad
    assert parse_bool(True) is True
    assert parse_bool("on") is True
    assert parse_bool("") is False
    assert parse_bool("maybe") is None


def test_is_host() -> None:
    for good in ("pbx.clinic.ru", "localhost", "10.0.0.1", "fe80::1", "xn--80aswg.xn--p1ai", "pbx.ru."):
        assert is_host(good), good
    for bad in ("", "pbx_1.ru", "-a.ru", "a-.ru", "1.2.3.4.5", "10.0.0.256", "a..b", "a b", "x" * 254,
                "fe80::1%eth0", "fe80::1%eth0\n[clinic-endpoint](!)", "fe80::1%" + "a" * 300, "пбх.рф"):
        assert not is_host(bad), bad  # an IPv6 scope id is free text (issue 12 point 8)


def test_partial_update_with_json_values(sessions: sessionmaker[Session]) -> None:
    with transaction(sessions) as session:
        result = update_settings(session, {"sip_port": 5070, "lockout_enabled": False})
        assert result.changed == {"sip_port", "lockout_enabled"}
        assert result.telephony_changed
    with transaction(sessions) as session:
        row = get_settings(session)
        assert (row.sip_port, row.lockout_enabled, row.rtp_start, row.name) == (5070, False, 10000, "Клиника")


def test_cross_field_rule_uses_stored_values(sessions: sessionmaker[Session]) -> None:
    with transaction(sessions) as session, pytest.raises(ValidationError) as caught:
        update_settings(session, {"rtp_start": 11000})  # stored rtp_end is 10999
    assert caught.value.errors == {"rtp_end": "RTP: порт «по» должен быть больше порта «с»"}


def test_no_change_is_reported_as_none(sessions: sessionmaker[Session]) -> None:
    with transaction(sessions) as session:
        result = update_settings(session, {"sip_port": 5060, "name": "Клиника"})
        assert result.changed == frozenset()
        assert not result.telephony_changed


def test_garbage_flag_is_an_error(sessions: sessionmaker[Session]) -> None:
    with transaction(sessions) as session, pytest.raises(ValidationError) as caught:
        update_settings(session, {"strong_passwords": "perhaps", "sip_port": [1]})
    assert set(caught.value.errors) == {"strong_passwords", "sip_port"}


def test_users_via_json(sessions: sessionmaker[Session]) -> None:
    with transaction(sessions) as session:
        saved = create_user(
            session,
            {"login": "api", "password": "Api-pass-1", "role": "admin", "extension": 201, "sip_id": "api201",
             "sip_password": "Lm3-Qr8-Zx5"},
        )  # fmt: skip
        assert saved.telephony_changed
        user_id = saved.user.id
    with transaction(sessions) as session:
        user = session.get(type(saved.user), user_id)
        assert user.extension == "201"
        again = update_user(session, user, {"full_name": "Робот"})
        assert again.changed == {"full_name"}
        assert not again.telephony_changed


def test_authenticate_locks_and_unlock_clears(sessions: sessionmaker[Session]) -> None:
    with transaction(sessions) as session:
        update_settings(session, {"lockout_attempts": 2})
        create_user(session, {"login": "reg1", "password": "Reg-pass-1"})
    for _ in range(2):
        with transaction(sessions) as session:
            assert not authenticate(session, "reg1", "wrong-one").ok
    with transaction(sessions) as session:
        result = authenticate(session, "reg1", "Reg-pass-1")
        assert not result.ok
        assert result.error is not None and "заблокирован" in result.error


def test_reading_pages_do_not_create_the_settings_row(
    registrar_web: Any, sessions: sessionmaker[Session]
) -> None:
    registrar_web.text("/schedule")
    registrar_web.text("/patients?q=Иванов")
    with transaction(sessions) as session:
        assert session.scalar(select(func.count(ClinicSettings.id))) == 0
        defaults = read_settings(session)
        assert (defaults.timezone, defaults.lockout_attempts, defaults.sip_port) == (
            "Europe/Moscow",
            10,
            5060,
        )
