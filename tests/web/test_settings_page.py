"""«ЛПУ → Параметры»: validation with Russian messages, nothing saved on error, masked SMS key,
and the PBX applier called for telephony changes only — with the entered values, before they
are saved, which happens only when the PBX took them."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import pytest
from flask import Flask
from sqlalchemy.orm import Session, sessionmaker

from clinic.config import Config
from clinic.db import transaction
from clinic.models import ClinicSettings
from clinic.pbx_port import ApplyResult
from clinic.services.settings import ALL_FIELDS, get_settings

from .support import ADMIN_PASSWORD, RecordingApplier, Web

SMS_KEY = "64589EDB-8F29-C45C-1FB1-2EB497EFB170"

VALID_FORM = {
    "tab": "service",
    "name": "Поликлиника №1",
    "full_name": "ГБУЗ «Городская поликлиника №1»",
    "address": "г. Ставрополь, ул. Ленина, 1",
    "phone": "8 (8652) 99-03-99",
    "timezone": "Europe/Moscow",
    "sms_api_key": "",
    "sms_sender": "Clinic",
    "sip_domain": "pbx.clinic.ru",
    "sip_port": "5060",
    "rtp_start": "10000",
    "rtp_end": "10999",
    "lockout_enabled": "on",
    "lockout_attempts": "10",
    "exchange_log_days": "90",
}


class PendingApplier(RecordingApplier):
    """The PBX port as the settings page calls it: with the entered, not yet saved values.
    `stored` is what the database held while the applier ran."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        super().__init__()
        self.sessions = sessions
        self.pending: list[dict[str, object]] = []
        self.stored: list[dict[str, Any]] = []

    def __call__(self, author_id: int | None, *, pending: Mapping[str, object] | None = None) -> ApplyResult:
        self.pending.append(dict(pending or {}))
        self.stored.append(snapshot(self.sessions))
        return super().__call__(author_id)


@pytest.fixture()
def applier(sessions: sessionmaker[Session]) -> PendingApplier:
    return PendingApplier(sessions)


def snapshot(sessions: sessionmaker[Session]) -> dict[str, Any]:
    with transaction(sessions) as session:
        row = get_settings(session)
        return {field: getattr(row, field) for field in ALL_FIELDS}


def save(web: Web, **overrides: str | None) -> Any:
    form = {**VALID_FORM, **overrides}
    form = {key: value for key, value in form.items() if value is not None}  # None: checkbox unticked
    return web.post_form("/admin/settings", form)


@pytest.fixture()
def saved(admin_web: Web) -> Web:
    """Settings saved once with VALID_FORM, so later changes are measured against known values."""
    assert save(admin_web).status_code == 302
    return admin_web


def test_page_has_the_three_tabs_and_the_manual_labels(admin_web: Web) -> None:
    page = admin_web.text("/admin/settings")
    for label in (
        "Реквизиты", "Сервис", "Безопасность", "Наименование полное", "Ключ СМС-шлюза", "IP-телефония",
        "Домен SIP", "Порт SIP", "RTP с", "Блокировать учетные записи пользователей",
        "Количество попыток ввода пароля", "Требовать строгий пароль",
    ):  # fmt: skip
        assert label in page, label


def test_valid_form_is_saved(admin_web: Web, sessions: sessionmaker[Session]) -> None:
    response = save(admin_web, strong_passwords="on", exchange_log_days="30")
    assert response.status_code == 302
    assert response.location == "/admin/settings?tab=service"
    assert "Параметры сохранены" in admin_web.text(response.location)
    stored = snapshot(sessions)
    assert stored["name"] == "Поликлиника №1"
    assert stored["phone"] == "+78652990399"
    assert stored["sip_domain"] == "pbx.clinic.ru"
    assert (stored["sip_port"], stored["rtp_start"], stored["rtp_end"]) == (5060, 10000, 10999)
    assert stored["strong_passwords"] is True
    assert stored["exchange_log_days"] == 30
    assert stored["lockout_enabled"] is True


def test_unticked_checkboxes_are_saved_as_off(saved: Web, sessions: sessionmaker[Session]) -> None:
    assert save(saved, lockout_enabled=None, strong_passwords=None).status_code == 302
    stored = snapshot(sessions)
    assert stored["lockout_enabled"] is False
    assert stored["strong_passwords"] is False


BAD_INPUT = [
    ({"sip_port": "abc"}, "sip_port", "Порт SIP: укажите целое число от 1 до 65535"),
    ({"sip_port": "5 060"}, "sip_port", "Порт SIP: укажите целое число"),
    ({"sip_port": "50.6"}, "sip_port", "Порт SIP: укажите целое число"),
    ({"sip_port": "0"}, "sip_port", "Порт SIP: порт должен быть в диапазоне от 1 до 65535"),
    ({"sip_port": "-5"}, "sip_port", "в диапазоне от 1 до 65535"),
    ({"sip_port": "65536"}, "sip_port", "в диапазоне от 1 до 65535"),
    ({"sip_port": "99999999999999999999"}, "sip_port", "Порт SIP: укажите целое число"),
    ({"sip_port": ""}, "sip_port", "Порт SIP: укажите целое число"),
    ({"rtp_start": "десять"}, "rtp_start", "RTP с: укажите целое число"),
    ({"rtp_end": "70000"}, "rtp_end", "RTP по: порт должен быть в диапазоне"),
    ({"rtp_start": "20000", "rtp_end": "10000"}, "rtp_end", "RTP: порт «по» должен быть больше порта «с»"),
    ({"rtp_start": "10000", "rtp_end": "10000"}, "rtp_end", "RTP: порт «по» должен быть больше порта «с»"),
    ({"sip_port": "10500"}, "sip_port", "не должен попадать в диапазон RTP"),
    # every other port of the installation (defaults of clinic.config; the test config keeps them)
    ({"rtp_start": "8000", "rtp_end": "9000"}, "rtp_start", "Диапазон RTP 8000–9000 включает занятые порты"),
    ({"rtp_start": "8000", "rtp_end": "9000"}, "rtp_start", "8088 (HTTP/ARI Asterisk)"),
    ({"rtp_start": "8000", "rtp_end": "9000"}, "rtp_start", "выберите другой диапазон, например 10000–10999"),
    ({"rtp_start": "8080", "rtp_end": "8089"}, "rtp_start", "включает занятый порт 8088 (HTTP/ARI Asterisk)"),
    ({"rtp_start": "5030", "rtp_end": "5040"}, "rtp_start", "включает занятый порт 5038 (AMI Asterisk)"),
    ({"rtp_start": "4500", "rtp_end": "4600"}, "rtp_start", "включает занятый порт 4573 (FastAGI)"),
    ({"rtp_start": "8090", "rtp_end": "8190"}, "rtp_start", "8090 (API управления звонками)"),
    ({"rtp_start": "7000", "rtp_end": "8000"}, "rtp_start", "8000 (веб-интерфейс)"),
    ({"rtp_start": "55000", "rtp_end": "56000"}, "rtp_start", "55055 (приём вебхуков Mango Office и sms.ru)"),
    ({"sip_port": "8088"}, "sip_port", "Порт SIP 8088 уже занят: HTTP/ARI Asterisk"),
    ({"sip_port": "5038"}, "sip_port", "Порт SIP 5038 уже занят: AMI Asterisk"),
    ({"sip_port": "55055"}, "sip_port", "уже занят: приём вебхуков"),
    ({"sip_port": "80"}, "sip_port", "Порт SIP: порт 80 ниже 1024"),
    ({"rtp_start": "100", "rtp_end": "2000"}, "rtp_start", "RTP с: порт 100 ниже 1024"),
    ({"rtp_start": "10000", "rtp_end": "10009"}, "rtp_end", "10009 мал: 10 портов, а нужно не меньше 20"),
    ({"sip_domain": ""}, "sip_domain", "Укажите домен SIP"),
    ({"sip_domain": "pbx clinic.ru"}, "sip_domain", "Домен SIP: укажите имя хоста"),
    ({"sip_domain": "клиника.рф"}, "sip_domain", "Домен SIP: укажите имя хоста"),
    ({"sip_domain": "10.0.0.300"}, "sip_domain", "Домен SIP: укажите имя хоста"),
    ({"sip_domain": "-pbx.clinic.ru"}, "sip_domain", "Домен SIP: укажите имя хоста"),
    ({"sip_domain": "pbx..ru"}, "sip_domain", "Домен SIP: укажите имя хоста"),
    ({"sip_domain": "a" * 64 + ".ru"}, "sip_domain", "Домен SIP: укажите имя хоста"),
    ({"sip_domain": "sip://pbx.ru:5060"}, "sip_domain", "Домен SIP: укажите имя хоста"),
    ({"sip_domain": "fe80::1%eth0\n[clinic-endpoint](!)"}, "sip_domain", "Домен SIP: укажите имя хоста"),
    ({"sms_sender": "Клиника"}, "sms_sender", "Имя отправителя: до 11 символов"),
    ({"sms_sender": "ABCDEFGHIJKL"}, "sms_sender", "Имя отправителя: до 11 символов"),
    ({"sms_sender": "12345"}, "sms_sender", "латинские буквы (хотя бы одна)"),
    ({"sms_sender": "Clinic<b>"}, "sms_sender", "Имя отправителя"),
    ({"sms_api_key": "short"}, "sms_api_key", "Ключ СМС-шлюза: от 8 до 128 символов"),
    ({"sms_api_key": "****************************B170"}, "sms_api_key", "Ключ СМС-шлюза"),
    ({"sms_api_key": "ключ-ключ-ключ"}, "sms_api_key", "Ключ СМС-шлюза"),
    (
        {"lockout_attempts": "0"},
        "lockout_attempts",
        "Количество попыток ввода пароля: целое число от 1 до 100",
    ),
    ({"lockout_attempts": "101"}, "lockout_attempts", "целое число от 1 до 100"),
    ({"lockout_attempts": "десять"}, "lockout_attempts", "целое число от 1 до 100"),
    ({"lockout_attempts": ""}, "lockout_attempts", "целое число от 1 до 100"),
    ({"exchange_log_days": "-1"}, "exchange_log_days", "от 0 (бессрочно) до 3650 дней"),
    ({"exchange_log_days": "²"}, "exchange_log_days", "от 0 (бессрочно) до 3650 дней"),
    ({"name": ""}, "name", "Укажите наименование ЛПУ"),
    ({"name": "Я" * 201}, "name", "Наименование: не длиннее 200 символов"),
    ({"address": "Я" * 401}, "address", "Адрес: не длиннее 400 символов"),
    ({"phone": "12"}, "phone", "Некорректный номер телефона"),
    ({"phone": "телефон"}, "phone", "Некорректный номер телефона"),
    ({"timezone": "Mars/Olympus"}, "timezone", "Выберите часовой пояс из списка"),
]


@pytest.mark.parametrize(
    ("overrides", "field", "message"), BAD_INPUT, ids=[f"{f}-{n}" for n, (_, f, _) in enumerate(BAD_INPUT)]
)
def test_bad_input_is_refused_with_a_russian_message_and_nothing_is_saved(
    saved: Web,
    sessions: sessionmaker[Session],
    applier: RecordingApplier,
    overrides: dict[str, str],
    field: str,
    message: str,
) -> None:
    before = snapshot(sessions)
    applier.calls.clear()
    # A valid change to another field rides along: it must not be saved either.
    response = save(saved, **{"address": "г. Москва, ул. Новая, 2", **overrides})
    assert response.status_code == 422
    assert f'data-error-for="{field}"' in response.text
    assert message in response.text
    assert "Параметры не сохранены" in response.text
    assert snapshot(sessions) == before
    assert applier.calls == []


def test_entered_values_are_shown_again_after_an_error(saved: Web) -> None:
    page = save(saved, sip_port="abc", name="Новая клиника", rtp_start="12000").text
    assert 'value="abc"' in page
    assert 'value="Новая клиника"' in page
    assert 'value="12000"' in page


def test_the_tab_with_the_error_is_opened(saved: Web) -> None:
    page = save(saved, tab="requisites", lockout_attempts="x").text
    assert '<input type="hidden" name="tab" value="security" data-active-tab>' in page
    assert "tab-error" in page


def test_several_errors_are_reported_together(saved: Web) -> None:
    page = save(saved, sip_port="x", sip_domain="", lockout_attempts="0").text
    for field in ("sip_port", "sip_domain", "lockout_attempts"):
        assert f'data-error-for="{field}"' in page


def test_odd_rtp_start_is_saved_with_a_warning(saved: Web, sessions: sessionmaker[Session]) -> None:
    response = save(saved, rtp_start="10001")
    assert response.status_code == 302
    assert "рекомендуется чётный номер порта" in saved.text(response.location)
    assert snapshot(sessions)["rtp_start"] == 10001


def test_ipv4_ipv6_and_host_names_are_accepted(saved: Web, sessions: sessionmaker[Session]) -> None:
    for domain in ("192.168.1.10", "::1", "localhost", "PBX.Clinic.ru"):
        assert save(saved, sip_domain=domain).status_code == 302, domain
    assert snapshot(sessions)["sip_domain"] == "pbx.clinic.ru"


# --- the SMS key is a secret --------------------------------------------------------------


def test_sms_key_is_shown_masked_and_kept_when_left_blank(
    saved: Web, sessions: sessionmaker[Session], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    assert save(saved, sms_api_key=SMS_KEY).status_code == 302
    assert snapshot(sessions)["sms_api_key"] == SMS_KEY
    page = saved.text("/admin/settings")
    assert SMS_KEY not in page
    assert "*" * 32 + "B170" in page
    assert save(saved, sms_api_key="", name="Другое имя").status_code == 302
    assert snapshot(sessions)["sms_api_key"] == SMS_KEY
    assert SMS_KEY not in caplog.text


def test_sms_key_typed_with_an_error_elsewhere_is_not_echoed(
    saved: Web, sessions: sessionmaker[Session]
) -> None:
    page = save(saved, sms_api_key=SMS_KEY, sip_port="x").text
    assert SMS_KEY not in page
    assert snapshot(sessions)["sms_api_key"] == ""


def test_sms_key_can_be_removed(saved: Web, sessions: sessionmaker[Session]) -> None:
    save(saved, sms_api_key=SMS_KEY)
    assert "Удалить ключ" in saved.text("/admin/settings")
    assert save(saved, sms_api_key_clear="on").status_code == 302
    assert snapshot(sessions)["sms_api_key"] == ""
    assert "Ключ не задан" in saved.text("/admin/settings")


# --- the PBX applier ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides",
    [{"sip_port": "5070"}, {"sip_domain": "10.1.1.1"}, {"rtp_start": "10100"}, {"rtp_end": "12999"}],
)
def test_telephony_change_calls_the_applier_and_shows_its_message(
    saved: Web, applier: RecordingApplier, admin_id: int, overrides: dict[str, str]
) -> None:
    applier.calls.clear()
    response = save(saved, **overrides)
    assert applier.calls == [admin_id]
    page = saved.text(response.location)
    assert "АТС: конфигурация применена, Asterisk перезагружен" in page
    assert "flash-success" in page


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"name": "Другое имя"},
        {"sms_sender": "Other"},
        {"sms_api_key": SMS_KEY},
        {"lockout_attempts": "5"},
    ],
)
def test_unrelated_changes_do_not_call_the_applier(
    saved: Web, applier: RecordingApplier, overrides: dict[str, str]
) -> None:
    applier.calls.clear()
    response = save(saved, **overrides)
    assert response.status_code == 302
    assert applier.calls == []
    assert 'role="status">АТС' not in saved.text(response.location)  # no PBX flash (the menu has «АТС»)


def test_telephony_values_go_to_the_pbx_before_they_are_saved(
    saved: Web, applier: PendingApplier, sessions: sessionmaker[Session]
) -> None:
    applier.pending.clear()
    applier.stored.clear()
    assert save(saved, rtp_start="12000", rtp_end="12999", name="Другое имя").status_code == 302
    assert applier.pending == [{"rtp_end": 12999, "rtp_start": 12000}]
    assert applier.stored[0]["rtp_start"] == 10000  # not yet saved while Asterisk was asked
    stored = snapshot(sessions)
    assert (stored["rtp_start"], stored["rtp_end"], stored["name"]) == (12000, 12999, "Другое имя")


def test_a_change_the_pbx_rejects_is_not_saved_and_its_reason_is_shown(
    saved: Web, applier: PendingApplier, sessions: sessionmaker[Session]
) -> None:
    before = snapshot(sessions)
    applier.result = ApplyResult(
        ok=False,
        message="Проверка не пройдена: абонент reg101 не загружен; предыдущая конфигурация восстановлена",
    )
    response = save(saved, rtp_start="12000", rtp_end="12999", name="Другое имя")
    assert response.status_code == 422
    page = response.text
    assert "Asterisk не принял новые параметры телефонии, они не сохранены" in page
    assert "Проверка не пройдена: абонент reg101 не загружен; предыдущая конфигурация восстановлена" in page
    assert 'data-error-for="pbx"' in page
    assert '<input type="hidden" name="tab" value="service" data-active-tab>' in page
    assert 'value="12000"' in page and 'value="12999"' in page and 'value="Другое имя"' in page
    assert "Параметры сохранены" not in page
    assert snapshot(sessions) == before  # nothing of the form is saved, not even the name
    # and nothing was left for the next page either
    assert "Параметры сохранены" not in saved.text("/admin/settings")


def test_a_change_that_waits_for_a_restart_is_said_so(saved: Web, applier: RecordingApplier) -> None:
    applier.result = ApplyResult(ok=True, message="конфигурация применена", warning="нужен перезапуск")
    page = saved.text(save(saved, sip_port="5070").location)
    assert "АТС: конфигурация применена" in page and "АТС: нужен перезапуск" in page
    assert "flash-warning" in page


def test_applier_crash_does_not_break_the_page(saved: Web, applier: RecordingApplier, sessions: Any) -> None:
    applier.error = RuntimeError("boom")
    response = save(saved, sip_port="5070")
    assert response.status_code == 503
    assert "Параметры телефонии не сохранены" in response.text
    assert "не удалось применить настройки" in response.text
    assert "boom" not in response.text
    assert snapshot(sessions)["sip_port"] == 5060


def test_the_range_must_fit_the_clinic_lines(
    saved: Web, sessions: sessionmaker[Session], make_user: Callable[..., int]
) -> None:
    for n in range(5):
        make_user(f"reg{n}", extension=f"20{n}", sip_id=f"reg20{n}", sip_md5_cred="0" * 32)
    make_user("nophone")  # a user without a SIP account holds no line
    response = save(saved, rtp_start="20000", rtp_end="20019")
    assert response.status_code == 422
    assert "RTP 20000–20019 мал: 20 портов, а нужно не меньше 30 (абонентов телефонии: 5" in response.text
    assert save(saved, rtp_start="20000", rtp_end="20029").status_code == 302
    assert "не меньше 30 портов (абонентов телефонии: 5)" in saved.text("/admin/settings")


def test_a_trunk_on_this_machine_keeps_its_port(saved: Web, sessions: sessionmaker[Session]) -> None:
    with transaction(sessions) as session:
        get_settings(session).trunk_host, get_settings(session).trunk_port = "127.0.0.1", 5120
    response = save(saved, sip_port="5120")
    assert response.status_code == 422
    assert "Порт SIP 5120 уже занят: транк 127.0.0.1:5120" in response.text
    with transaction(sessions) as session:
        get_settings(session).trunk_host = "sip.provider.ru"  # its port is on its own machine
    assert save(saved, sip_port="5120").status_code == 302


def test_the_page_names_the_ports_in_use(admin_web: Web, config: Config) -> None:
    page = admin_web.text("/admin/settings")
    assert f"{config.pbx.http_port} (HTTP/ARI Asterisk)" in page
    assert f"{config.pbx.ami_port} (AMI Asterisk)" in page
    assert "не меньше 20 портов" in page


def test_without_a_pbx_the_page_says_it_is_not_connected(
    config: Any, sessions: sessionmaker[Session], admin_id: int
) -> None:
    from webhooks.app import create_app

    app: Flask = create_app(config, pbx_apply=None, session_factory=sessions)
    web = Web(app.test_client())
    web.login("admin", ADMIN_PASSWORD)
    response = save(web, sip_port="5070")
    assert response.status_code == 302
    assert "АТС не подключена" in web.text(response.location)
    assert snapshot(sessions)["sip_port"] == 5070


def test_settings_row_is_created_on_first_visit(
    admin_web: Web, fetch: Callable[..., Any], sessions: Any
) -> None:
    admin_web.text("/admin/settings")
    with transaction(sessions) as session:
        assert session.query(ClinicSettings).count() == 1
