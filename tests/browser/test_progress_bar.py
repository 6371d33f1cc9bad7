"""The live progress bar of a mailing's sending (issue 11, point 4), in a real browser: the
worker (`send_due`, as `mis-telephony worker` runs it) sends 300 SMS to the sms.ru emulator,
slowed down, and publishes its progress to ari_app's control API; ari_app's events listener
(the real AriApp, without Asterisk) passes it to the page's event stream; the bar appears,
advances, and at the end the page shows the mailing «Отправлено»."""

from __future__ import annotations

import dataclasses
import re
import tempfile
import threading
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web as aioweb
from eventskit import EventsListener, wait_until
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import expect
from smsru.support import API_ID, ServerThread, Sms
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.serving import make_server

from ari_app.control import make_app
from clinic.config import Config
from clinic.db import transaction
from clinic.models import (
    Appointment,
    Cabinet,
    ClinicSettings,
    Employee,
    ExternalSystem,
    Patient,
    ServerTask,
    SmsMessage,
    SmsTemplate,
)
from clinic.progress import Publisher
from clinic.robot.export import ExportProgress, ExportReport
from clinic.sms import jobs
from clinic.worker.jobs import JobContext
from emulators.smsru import EmulatorOptions
from emulators.smsru import create_app as create_emulator
from webhooks.app import create_app

from .conftest import ADMIN_PASSWORD

pytestmark = pytest.mark.browser
SHOTS = Path(tempfile.gettempdir()) / "progress-shots"
TOKEN = "c0ntrol-t0ken-for-progress"
PATIENTS = 300
TOMORROW = date.today() + timedelta(days=1)


@pytest.fixture()
def sms() -> Iterator[Sms]:
    # every reply of sms.ru takes a second: three batches of 100, one at a time, are seen
    app = create_emulator(
        EmulatorOptions(api_id=API_ID, clock="manual", balance=Decimal("100000"), latency=1.0)
    )
    with httpx.Client(trust_env=False) as http:
        running = Sms(ServerThread(app).start(), app.extensions["smsru_emulator"], http)
        yield running
        running.server.stop()
        running.emulator.stop()


@pytest.fixture()
def control_url(listener: EventsListener) -> Iterator[str]:
    """ari_app's control API (the real one) on the listener's loop, on a free port."""

    async def start() -> aioweb.AppRunner:
        runner = aioweb.AppRunner(
            make_app(listener.app.service, listener.app.notifier, listener.app.ari, TOKEN)
        )
        await runner.setup()
        await aioweb.TCPSite(runner, "127.0.0.1", 0).start()
        return runner

    runner = listener.run(start())
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        listener.run(runner.cleanup())


@pytest.fixture()
def cfg(config: Config, sms: Sms, listener: EventsListener, control_url: str) -> Config:
    pbx = dataclasses.replace(config.pbx, control_url=control_url, control_token=TOKEN)
    return dataclasses.replace(config, smsru_url=sms.url, pbx=pbx, events_port=listener.app.events_port)


@pytest.fixture()
def clinic(sessions: sessionmaker[Session], users: Any) -> None:
    with transaction(sessions) as s:
        s.add(ClinicSettings(name="Клиника Здоровье", sms_api_key=API_ID, sms_sender="Klinika",
                             sms_quiet_from=0, sms_quiet_to=0))  # fmt: skip
        doctor = Employee(
            last_name="Смирнов", first_name="Андрей", patronymic="Викторович", specialty="Терапевт"
        )
        cabinet = Cabinet(number="12", name="Терапия")
        s.add_all([doctor, cabinet])
        s.add(SmsTemplate(name="Напоминание", recipient_type="patient", is_default=True,
                          body="{patient_first_patronymic}, ждём вас {date} в {time}."))  # fmt: skip
        s.flush()
        start = datetime.combine(TOMORROW, datetime.min.time()) + timedelta(hours=8)
        for i in range(PATIENTS):
            patient = Patient(
                last_name=f"Пациент{i}", first_name="Анна", patronymic="", phone=f"+7903{i:07d}"
            )
            s.add(patient)
            s.flush()
            s.add(Appointment(patient_id=patient.id, doctor_id=doctor.id, cabinet_id=cabinet.id,
                              starts_at=start + timedelta(minutes=2 * i)))  # fmt: skip


@pytest.fixture()
def web(
    cfg: Config, sessions: sessionmaker[Session], listener: EventsListener, clinic: None
) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, create_app(cfg, session_factory=sessions), threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="live-app", daemon=True)
    thread.start()
    origin = f"http://127.0.0.1:{server.server_port}"
    listener.app.gateway.origins = {origin}
    try:
        yield origin
    finally:
        server.shutdown()
        thread.join(timeout=10)


def _numbers(bar: Any) -> tuple[int, int, int]:
    return tuple(int(bar.get_attribute(f"data-{k}") or -1) for k in ("sent", "failed", "left"))  # type: ignore[return-value]


def test_the_bar_appears_advances_and_the_page_shows_the_end(
    page: Any, web: str, cfg: Config, sessions: sessionmaker[Session], sms: Sms, monkeypatch: Any
) -> None:
    page.goto(web + "/login")
    page.get_by_label("Логин").fill("admin")
    page.get_by_label("Пароль").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Войти").click()
    expect(page).not_to_have_url(re.compile("/login"))
    page.goto(web + "/sms/mailings")
    page.get_by_test_id("mailing-new").click()
    page.get_by_label("Период отбора с").fill(TOMORROW.isoformat())
    page.get_by_label("по", exact=True).fill(TOMORROW.isoformat())
    page.get_by_label("Шаблон").select_option(label="Напоминание")
    page.get_by_test_id("mailing-save").click()
    page.get_by_test_id("mailing-fill").click()
    expect(page.get_by_test_id("mailing-recipient")).to_have_count(PATIENTS)
    page.get_by_test_id("mailing-more").locator("summary").click()
    page.get_by_test_id("mailing-send").click()
    expect(page.get_by_test_id("mailing-state")).to_have_text("Отправляется")
    expect(page.locator("body")).to_have_attribute("data-phone-events", "on")
    bar = page.get_by_test_id("progress-bar")
    expect(bar).to_be_hidden()  # nothing is sent yet: the old line says the page refreshes

    # the worker, one request at a time (8 in flight would send the 3 batches at once)
    monkeypatch.setattr(jobs, "CONCURRENCY", 1)
    worker = threading.Thread(target=jobs.send_due, args=(JobContext(cfg, sessions),), daemon=True)
    worker.start()

    expect(bar).to_be_visible(timeout=15_000)
    seen: set[tuple[int, int, int]] = set()

    def midway() -> bool:
        # read from the page: the bar counts what is done and what is left, in Russian
        if page.get_by_test_id("progress-bar").is_visible():
            seen.add(_numbers(page.get_by_test_id("progress-bar")))
        return any(0 < sent < PATIENTS and left > 0 for sent, _failed, left in seen)

    wait_until(midway, 15, "the bar midway")
    text = page.get_by_test_id("progress-text").inner_text()
    assert re.fullmatch(
        r"Отправлено (100|200) из 300 · ошибок 0 · осталось (200|100) · [\d,]+ СМС/с · до конца ≈ \d+ с", text
    ), text
    meter = page.locator("[data-testid=progress-bar] progress")
    assert 0 < float(meter.evaluate("m => m.value / m.max")) < 1
    assert bar.evaluate("b => getComputedStyle(b).display") == "flex"
    # the page-load «Итог» (all in the queue) and the «обновляется сама» line give way to the bar
    expect(page.get_by_test_id("mailing-outcome")).to_be_hidden()
    expect(page.get_by_test_id("mailing-progress")).to_be_hidden()
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / "mailing-midway.png"))

    worker.join(timeout=60)
    assert not worker.is_alive()
    # `done` reloads the page to its final state
    expect(page.get_by_test_id("mailing-state")).to_have_text("Отправлено", timeout=15_000)
    expect(page.get_by_test_id("mailing-outcome")).to_contain_text("отправлено 300")
    expect(page.get_by_test_id("progress-bar")).to_have_count(0)
    page.screenshot(path=str(SHOTS / "mailing-done.png"))
    with sessions() as s:
        assert set(s.scalars(select(SmsMessage.state))) == {"sent"}
    assert len(sms.messages()) == PATIENTS


@pytest.fixture()
def tasks_web(
    config: Config, sessions: sessionmaker[Session], listener: EventsListener, users: Any
) -> Iterator[tuple[str, int]]:
    with transaction(sessions) as s:
        system = ExternalSystem(name="Mango Office", api_key="k" * 16, api_salt="s" * 16, campaign_id=1,
                                base_url="http://127.0.0.1:9/", field_names="", field_ids="")  # fmt: skip
        s.add(system)
        s.flush()
        task = ServerTask(name="Отправка сведений в Mango Office", external_system_id=system.id,
                          is_enabled=True, run_at="09:00", poll_results=True)  # fmt: skip
        s.add(task)
        s.flush()
        task_id = task.id
    cfg = dataclasses.replace(config, events_port=listener.app.events_port)
    server = make_server("127.0.0.1", 0, create_app(cfg, session_factory=sessions), threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="live-app", daemon=True)
    thread.start()
    origin = f"http://127.0.0.1:{server.server_port}"
    listener.app.gateway.origins = {origin}
    try:
        yield origin, task_id
    finally:
        server.shutdown()
        thread.join(timeout=10)


def test_the_export_bar_on_server_tasks(page: Any, tasks_web: tuple[str, int], control_url: str) -> None:
    """What the worker's ExportProgress publishes shows in the task's row of «Серверные
    задачи»; `done` reloads the page (to the run's final «Последний запуск»)."""
    web, task_id = tasks_web
    page.goto(web + "/login")
    page.get_by_label("Логин").fill("admin")
    page.get_by_label("Пароль").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Войти").click()
    expect(page).not_to_have_url(re.compile("/login"))
    page.goto(web + "/admin/server-tasks")
    expect(page.locator("body")).to_have_attribute("data-phone-events", "on")
    row = page.locator(f"[data-testid=server-task-row][data-task-id='{task_id}']")
    bar = row.get_by_test_id("progress-bar")
    expect(bar).to_be_hidden()
    page.evaluate("window.__before_reload = true")

    tracker = ExportProgress(Publisher(control_url, TOKEN, interval=0.0), task_id)
    report = ExportReport(found=40, sent=12, failed=1)
    tracker(report)
    expect(bar).to_be_visible()
    expect(row.get_by_test_id("progress-text")).to_have_text(
        re.compile(
            r"Отправлено в Mango Office 12 из 40 · ошибок 1 · осталось 27 · "
            r"[\d\s,]+ записей/с · до конца ≈ \d+ с"
        )
    )
    report.sent = 30
    tracker(report)
    expect(bar).to_have_attribute("data-sent", "30")
    expect(bar).to_have_attribute("data-left", "9")
    assert bar.evaluate("b => getComputedStyle(b).display") == "flex"
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / "export-midway.png"))

    report.sent = 39
    tracker.finish(report)

    def reloaded() -> bool:
        try:
            return page.evaluate("window.__before_reload") is None
        except PlaywrightError:  # caught mid-navigation: ask again
            return False

    wait_until(reloaded, 10, "the page reloaded")
    expect(row.get_by_test_id("progress-bar")).to_be_hidden()
