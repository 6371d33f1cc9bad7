"""The robot pages through the Flask test client: roles on the server, the directory form
and «Проверить подключение», server tasks, journal, exchange log, manual send."""

from __future__ import annotations

import re
import socket
from datetime import time

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.security import generate_password_hash

from clinic.config import Config
from clinic.db import transaction
from clinic.models import ROLE_ADMIN, ROLE_REGISTRAR, ExternalSystem, ServerTask, User
from clinic.robot.export import export_day
from clinic.robot.systems import ClientOptions
from webhooks.app import create_app

from .conftest import Clinic
from .support import CAMPAIGN, KEY, SALT, RunningEmulator, emulator_tasks, journal_lines

PASSWORD = "Pa55-word-x"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


class Web:
    def __init__(self, client: FlaskClient) -> None:
        self.client = client

    def get(self, url: str):  # type: ignore[no-untyped-def]
        return self.client.get(url)

    def post(self, url: str, data: dict[str, object], *, page: str):  # type: ignore[no-untyped-def]
        html = self.client.get(page).text
        match = _CSRF.search(html)
        assert match, f"no CSRF token on {page}"
        return self.client.post(url, data={**data, "csrf_token": match.group(1)})


@pytest.fixture()
def app(config: Config, sessions: sessionmaker[Session]) -> Flask:
    app = create_app(config, session_factory=sessions)
    app.config["TESTING"] = True
    return app


def _login(app: Flask, sessions: sessionmaker[Session], login: str, role: str) -> Web:
    with transaction(sessions) as session:
        session.add(
            User(
                login=login,
                full_name=login,
                password_hash=generate_password_hash(PASSWORD, method="pbkdf2:sha256:1000"),
                role=role,
                is_active=True,
                failed_logins=0,
            )
        )
    web = Web(app.test_client())
    reply = web.post("/login", {"login": login, "password": PASSWORD}, page="/login")
    assert reply.status_code == 302
    return web


@pytest.fixture()
def admin_web(app: Flask, sessions: sessionmaker[Session]) -> Web:
    return _login(app, sessions, "admin", ROLE_ADMIN)


@pytest.fixture()
def reg_web(app: Flask, sessions: sessionmaker[Session]) -> Web:
    return _login(app, sessions, "reg", ROLE_REGISTRAR)


ADMIN_PAGES = [
    "/admin/external-systems",
    "/admin/external-systems/new",
    "/admin/server-tasks",
    "/admin/journal",
    "/admin/exchange-log",
]


@pytest.mark.parametrize("url", ADMIN_PAGES)
def test_registrar_gets_403_on_admin_pages(reg_web: Web, url: str) -> None:
    reply = reg_web.get(url)

    assert reply.status_code == 403
    assert "Доступ запрещён" in reply.text


def test_registrar_cannot_post_to_admin_pages(reg_web: Web, sessions: sessionmaker[Session]) -> None:
    reply = reg_web.post(
        "/admin/external-systems/new",
        {"api_key": "x", "api_salt": "y", "campaign_id": "1"},
        page="/schedule",
    )

    assert reply.status_code == 403
    with sessions() as session:
        assert session.scalar(select(ExternalSystem)) is None


def test_anonymous_is_sent_to_login(app: Flask) -> None:
    reply = app.test_client().get("/admin/external-systems")

    assert reply.status_code == 302 and "/login" in reply.headers["Location"]


def test_admin_menu_has_the_robot_pages(admin_web: Web, reg_web: Web) -> None:
    admin_page = admin_web.get("/schedule").text
    reg_page = reg_web.get("/schedule").text

    for title in ("Внешние информационные системы", "Серверные задачи", "Журнал обмена"):
        assert title in admin_page
        assert title not in reg_page


def _system_form(emu_base: str, **overrides: str) -> dict[str, object]:
    form: dict[str, object] = {
        "name": "Mango Office",
        "api_key": KEY,
        "api_salt": SALT,
        "campaign_id": str(CAMPAIGN),
        "base_url": emu_base,
        "rate_per_s": "5",
        "webhook_secret": "0123456789abcdef-secret",
        "webhook_ips": "",
        "digit_status": "1=1 2=2",
        "is_active": "on",
        "field_time": "Время",
        "field_date": "Дата",
        "field_service": "Услуга",
        "field_doctor": "Специалист",
        "field_patient": "Пациент_ФИО",
    }
    form.update(overrides)
    return form


def test_directory_form_validates_in_russian_and_saves_nothing(
    admin_web: Web, sessions: sessionmaker[Session]
) -> None:
    reply = admin_web.post(
        "/admin/external-systems/new",
        _system_form(
            "ftp://x", api_key="", api_salt="", campaign_id="abc", webhook_ips="1.2.3.400", digit_status="x"
        ),
        page="/admin/external-systems/new",
    )

    assert reply.status_code == 400
    for message in (
        "Укажите уникальный код",
        "Укажите ключ авторизации",
        "ID кампании — целое положительное число",
        "Адрес должен начинаться с http:// или https://",
        "«1.2.3.400» — не IP-адрес и не сеть",
        "Формат: цифра=статус",
    ):
        assert message in reply.text
    with sessions() as session:
        assert session.scalar(select(ExternalSystem)) is None


def test_directory_saves_and_never_shows_the_secrets(
    admin_web: Web, sessions: sessionmaker[Session], emu: RunningEmulator
) -> None:
    reply = admin_web.post(
        "/admin/external-systems/new", _system_form(emu.api_base), page="/admin/external-systems/new"
    )
    assert reply.status_code == 302
    edit_url = reply.headers["Location"]

    page = admin_web.get(edit_url).text
    secret = "0123456789abcdef-secret"
    # issue 12 point 6: the key and the webhook secret are masked like the salt
    assert KEY not in page and SALT not in page and secret not in page
    assert "Ключ задан; оставьте пустым, чтобы не менять." in page
    assert f"Задан: ••••{KEY[-4:]}" in page and f"Задан: ••••{secret[-4:]}" in page

    # saving with the secret fields empty keeps them all
    again = admin_web.post(
        edit_url,
        _system_form(emu.api_base, api_key="", api_salt="", webhook_secret="", name="Манго"),
        page=edit_url,
    )
    assert again.status_code == 302
    with sessions() as session:
        system = session.scalar(select(ExternalSystem))
        assert system is not None and system.name == "Манго"
        assert (system.api_key, system.api_salt, system.webhook_secret) == (KEY, SALT, secret)
    # a form with an error does not echo a typed secret either
    bad = admin_web.post(edit_url, _system_form(emu.api_base, api_key="new-key-typed-now", campaign_id="x"),
                         page=edit_url)
    assert bad.status_code == 400 and "new-key-typed-now" not in bad.text
    cleared = admin_web.post(
        edit_url,
        _system_form(emu.api_base, webhook_secret="", webhook_ips="10.0.0.0/8", webhook_secret_clear="on"),
        page=edit_url,
    )
    assert cleared.status_code == 302
    with sessions() as session:
        assert session.scalar(select(ExternalSystem.webhook_secret)) == ""


def test_check_connection_caches_field_ids(
    admin_web: Web, sessions: sessionmaker[Session], emu: RunningEmulator
) -> None:
    edit_url = admin_web.post(
        "/admin/external-systems/new", _system_form(emu.api_base), page="/admin/external-systems/new"
    ).headers["Location"]

    reply = admin_web.post(edit_url + "/check", {}, page=edit_url)
    page = admin_web.get(reply.headers["Location"]).text

    assert "Подключение установлено" in page
    assert "Время = 5901" in page and "Пациент_ФИО = 5905" in page
    assert "ID поля: 5903" in page
    with sessions() as session:
        system = session.scalar(select(ExternalSystem))
        assert system is not None and system.last_check_ok is True


def test_check_connection_reports_a_bad_salt_and_a_missing_field(
    admin_web: Web, sessions: sessionmaker[Session], emu: RunningEmulator
) -> None:
    edit_url = admin_web.post(
        "/admin/external-systems/new",
        _system_form(emu.api_base, api_salt="not-the-salt"),
        page="/admin/external-systems/new",
    ).headers["Location"]
    bad_sign = admin_web.get(admin_web.post(edit_url + "/check", {}, page=edit_url).headers["Location"]).text

    admin_web.post(edit_url, _system_form(emu.api_base, field_service="Процедура"), page=edit_url)
    missing = admin_web.get(admin_web.post(edit_url + "/check", {}, page=edit_url).headers["Location"]).text

    assert "Mango Office ответил ошибкой 3102" in bad_sign
    assert "not-the-salt" not in bad_sign
    assert "В кампании нет пользовательских полей: Процедура" in missing


def test_check_connection_to_nowhere_says_so_in_russian(admin_web: Web) -> None:
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nobody listens there now: connection refused
    edit_url = admin_web.post(
        "/admin/external-systems/new",
        _system_form(f"http://127.0.0.1:{port}/vpbx/"),
        page="/admin/external-systems/new",
    ).headers["Location"]
    page = admin_web.get(admin_web.post(edit_url + "/check", {}, page=edit_url).headers["Location"]).text
    assert "Не удалось подключиться к Mango Office: проверьте адрес API" in page
    assert "Error" not in page  # no exception class names for the admin


def test_server_task_is_created_with_a_schedule(
    admin_web: Web, sessions: sessionmaker[Session], system_id: int
) -> None:
    bad = admin_web.post(
        "/admin/server-tasks",
        {"name": "Отправка сведений в Mango Office", "external_system_id": str(system_id), "run_at": "25:00"},
        page="/admin/server-tasks",
    )
    good = admin_web.post(
        "/admin/server-tasks",
        {
            "name": "Отправка сведений в Mango Office",
            "external_system_id": str(system_id),
            "run_at": "7:05",
            "is_enabled": "on",
        },
        page="/admin/server-tasks",
    )

    assert bad.status_code == 400 and "Время запуска в формате ЧЧ:ММ" in bad.text
    assert good.status_code == 302
    with sessions() as session:
        [task] = session.scalars(select(ServerTask)).all()
        assert (task.run_at, task.is_enabled, task.service_name) == ("07:05", True, "TMangoOfficeThread")
    listing = admin_web.get("/admin/server-tasks").text
    assert "TMangoOfficeThread" in listing


def test_run_now_sets_the_request(admin_web: Web, sessions: sessionmaker[Session], task_id: int) -> None:
    reply = admin_web.post(f"/admin/server-tasks/{task_id}/run", {}, page="/admin/server-tasks")

    assert reply.status_code == 302
    with sessions() as session:
        task = session.get(ServerTask, task_id)
        assert task is not None and task.run_requested is True


def test_journal_filters_by_service(
    admin_web: Web,
    sessions: sessionmaker[Session],
    task_id: int,
    clinic: Clinic,
    emu: RunningEmulator,
    options: ClientOptions,
) -> None:
    from clinic.models import JournalEntry
    from clinic.robot.server_task import run_export_task

    run_export_task(sessions, task_id, options=options)
    with sessions() as session, session.begin():
        session.add(JournalEntry(service="TSmsThread", message="Чужая строка"))

    only_mango = admin_web.get("/admin/journal?service=TMangoOfficeThread").text
    everything = admin_web.get("/admin/journal").text

    assert "Поток создан" in only_mango and "Поток разрушен" in only_mango
    assert "Чужая строка" not in only_mango
    assert "Чужая строка" in everything
    assert len(journal_lines(sessions)) == 7


def test_exchange_log_page_shows_masked_entries(
    admin_web: Web,
    sessions: sessionmaker[Session],
    system_id: int,
    clinic: Clinic,
    emu: RunningEmulator,
    options: ClientOptions,
) -> None:
    clinic.appointment()
    export_day(sessions, system_id, clinic.day, options=options)

    page = admin_web.get("/admin/exchange-log?owner=task/add").text

    assert "Mango Office task/add" in page
    assert "Mango Office custom-type/list" not in page
    assert SALT not in page and KEY not in page


def test_context_menu_offers_the_robot(reg_web: Web, clinic: Clinic) -> None:
    appointment = clinic.appointment()

    page = reg_web.get(f"/schedule?date={clinic.day.isoformat()}").text

    assert f'href="/robot/appointments/{appointment}"' in page
    assert "Отправить голосовому роботу" in page


def test_registrar_sends_by_hand_and_sees_the_result(
    reg_web: Web, sessions: sessionmaker[Session], system_id: int, clinic: Clinic, emu: RunningEmulator
) -> None:
    appointment = clinic.appointment(at=time(12, 0))
    url = f"/robot/appointments/{appointment}"

    reply = reg_web.post(url, {}, page=url)
    page = reg_web.get(reply.headers["Location"]).text

    assert "Отправлено голосовому роботу: задача Mango №" in page
    assert "Запись уже отправлена голосовому роботу" in page
    assert 'data-testid="robot-send"' not in page
    [task] = emulator_tasks(emu)
    assert task["fields"]["comment"] == str(appointment)


def test_manual_send_without_mango_configured_says_so(reg_web: Web, clinic: Clinic) -> None:
    appointment = clinic.appointment()
    url = f"/robot/appointments/{appointment}"

    page = reg_web.get(reg_web.post(url, {}, page=url).headers["Location"]).text

    assert "Mango Office не настроен" in page


def test_unknown_appointment_is_404(reg_web: Web) -> None:
    assert reg_web.get("/robot/appointments/999999").status_code == 404
    assert reg_web.get("/robot/appointments/99999999999").status_code == 404


@pytest.mark.parametrize(
    "query",
    ["before=abc", "before=99999999999999999999", "after=-1", "after=0", "before=1.5", "after=99999999999"],
)
def test_log_pages_take_any_anchor_without_a_500(admin_web: Web, query: str) -> None:
    for url in ("/admin/exchange-log", "/admin/journal"):
        reply = admin_web.get(f"{url}?owner=x%25_&{query}")
        assert reply.status_code == 200, (url, query)
        assert "Всего записей: 0" in reply.text
