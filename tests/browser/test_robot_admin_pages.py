"""«Серверные задачи» and the two logs in a real browser: every header sits above its own
values, «Последний запуск» is a date and time on the clinic's clock (the server runs in
New York, the clinic in Vladivostok), and paging reaches the oldest rows of «Журнал обмена»
and «Журнал серверных задач» with the filter kept, newest first."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect
from sqlalchemy.orm import Session, sessionmaker

from clinic.db import transaction
from clinic.models import ExchangeLogEntry, ExternalSystem, JournalEntry, ServerTask, ServerTaskRun
from clinic.models.robot import RUN_DONE, RUN_FAILED
from clinic.services.settings import get_settings

from .conftest import ADMIN_PASSWORD
from .test_web_shell import log_in

pytestmark = pytest.mark.browser

CLINIC_ZONE = "Asia/Vladivostok"  # UTC+10, no daylight saving
STARTED = datetime(2025, 5, 22, 9, 10, tzinfo=UTC)  # 19:10 in Vladivostok, 05:10 in New York
SHOTS = Path("/tmp/mis-shots")



@pytest.fixture()
def tasks(sessions: sessionmaker[Session], server_in_new_york: None) -> dict[str, int]:
    with transaction(sessions) as s:
        get_settings(s).timezone = CLINIC_ZONE
        system = ExternalSystem(name="Mango Office", api_key="k" * 16, api_salt="s" * 16, campaign_id=1,
                                base_url="http://127.0.0.1:9/", field_names="", field_ids="")  # fmt: skip
        s.add(system)
        s.flush()
        ran = ServerTask(name="Отправка сведений в Mango Office", external_system_id=system.id,
                         is_enabled=True, run_at="09:00", poll_results=True)  # fmt: skip
        failed = ServerTask(name="Вечерняя отправка", external_system_id=system.id,
                            is_enabled=False, run_at="18:30", poll_results=False)  # fmt: skip
        never = ServerTask(name="Новая задача", external_system_id=system.id, is_enabled=True, run_at="07:05")
        s.add_all([ran, failed, never])
        s.flush()
        s.add_all([
            ServerTaskRun(task_id=ran.id, target_date=STARTED.date(), state=RUN_DONE,
                          started_at=STARTED - timedelta(days=1)),
            ServerTaskRun(task_id=ran.id, target_date=STARTED.date(), state=RUN_DONE, started_at=STARTED),
            ServerTaskRun(task_id=failed.id, target_date=STARTED.date(), state=RUN_FAILED,
                          started_at=STARTED + timedelta(minutes=5)),
        ])  # fmt: skip
        return {"ran": ran.id, "failed": failed.id, "never": never.id}


def _column_of(page: Any, header: str) -> int:
    headers = page.locator("[data-testid=server-tasks] thead th")
    texts = [t.strip() for t in headers.all_inner_texts()]
    return texts.index(header)


def _centre_x(box: dict[str, float]) -> float:
    return box["x"] + box["width"] / 2


def test_server_task_headers_stand_above_their_values(
    page: Any, live_url: str, users: Any, tasks: dict[str, int]
) -> None:
    log_in(page, live_url, "admin", ADMIN_PASSWORD)
    page.goto(live_url + "/admin/server-tasks")
    table = page.get_by_test_id("server-tasks")
    expect(table).to_be_visible()
    row = page.locator(f"[data-testid=server-task-row][data-task-id='{tasks['ran']}']")

    expected = {
        "Задача": ("name", "Отправка сведений в Mango Office"),
        "Имя сервиса": ("service", "TMangoOfficeThread"),
        "Система": ("system", "Mango Office"),
        "Ежедневно в": ("run_at", "09:00"),
        "Отчёт кампании": ("poll_results", None),
        "Последний запуск": ("last_run", "22.05.2025 19:10"),
        "Включена": ("is_enabled", None),
    }
    headers = table.locator("thead th")
    cells = row.locator("td")
    assert headers.count() == cells.count() == 8
    for title, (col, text) in expected.items():
        index = _column_of(page, title)
        cell = cells.nth(index)
        assert cell.get_attribute("data-col") == col, title
        header_box, cell_box = headers.nth(index).bounding_box(), cell.bounding_box()
        # the header's column is the value's column: each centre lies within the other's span
        assert header_box["x"] <= _centre_x(cell_box) <= header_box["x"] + header_box["width"], title
        assert cell_box["x"] <= _centre_x(header_box) <= cell_box["x"] + cell_box["width"], title
        assert header_box["y"] < cell_box["y"], title
        if col in ("name", "run_at"):
            expect(cell.locator("input")).to_have_value(text)
        elif col == "system":
            expect(cell.locator("select option:checked")).to_have_text(text)
        elif text is not None:
            expect(cell).to_contain_text(text)
        else:
            expect(cell.locator("input[type=checkbox]")).to_be_checked()
    last_run = cells.nth(_column_of(page, "Последний запуск"))
    expect(last_run).not_to_contain_text("05:10")  # not the server's clock
    failed_row = page.locator(f"[data-testid=server-task-row][data-task-id='{tasks['failed']}']")
    expect(failed_row.get_by_test_id("last-run")).to_contain_text("22.05.2025 19:15 (ошибка, см. журнал)")
    never_row = page.locator(f"[data-testid=server-task-row][data-task-id='{tasks['never']}']")
    expect(never_row.get_by_test_id("last-run")).to_have_text("не запускалась")
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / "server-tasks.png"), full_page=True)


def test_a_row_saves_its_own_values(
    page: Any, live_url: str, users: Any, tasks: dict[str, int], sessions: sessionmaker[Session]
) -> None:
    log_in(page, live_url, "admin", ADMIN_PASSWORD)
    page.goto(live_url + "/admin/server-tasks")
    row = page.locator(f"[data-testid=server-task-row][data-task-id='{tasks['failed']}']")
    row.get_by_label("Ежедневно в").fill("19:45")
    row.get_by_label("Включена").check()
    row.get_by_role("button", name="Сохранить").click()
    expect(page.get_by_text("Задача сохранена")).to_be_visible()
    with sessions() as s:
        saved, other = s.get(ServerTask, tasks["failed"]), s.get(ServerTask, tasks["ran"])
        assert saved is not None and other is not None
        assert (saved.run_at, saved.is_enabled, saved.poll_results) == ("19:45", True, False)
        assert (other.run_at, other.is_enabled) == ("09:00", True)  # the other row's form untouched


@pytest.fixture()
def exchange(sessions: sessionmaker[Session]) -> dict[str, list[int]]:
    """250 rows, every other one an UpdateStatus; ids grow with time."""
    base = datetime(2025, 5, 22, 0, 0, tzinfo=UTC)
    ids: dict[str, list[int]] = {"UpdateStatus": [], "task/add": []}
    with transaction(sessions) as s:
        for n in range(250):
            owner = "UpdateStatus" if n % 2 else "task/add"
            row = ExchangeLogEntry(at=base + timedelta(minutes=n), direction="in" if n % 2 else "out",
                                   owner=owner, elapsed_ms=n, payload=f"N{n}", response="{}")  # fmt: skip
            s.add(row)
            s.flush()
            ids[owner].append(row.id)
    return ids


def _row_ids(page: Any, testid: str) -> list[int]:
    return [int(v) for v in page.locator(f"[data-testid={testid}]").evaluate_all(
        "rows => rows.map(r => r.dataset.rowId)")]  # fmt: skip


def test_exchange_log_pages_reach_the_oldest_rows_with_the_filter_kept(
    page: Any, live_url: str, users: Any, exchange: dict[str, list[int]]
) -> None:
    log_in(page, live_url, "admin", ADMIN_PASSWORD)
    page.goto(live_url + "/admin/exchange-log")
    page.get_by_label("Владелец").fill("UpdateStatus")
    page.get_by_role("button", name="Отфильтровать").click()
    expect(page).to_have_url(re.compile(r"owner=UpdateStatus"))
    wanted = sorted(exchange["UpdateStatus"], reverse=True)  # 125 rows, newest first

    pager = page.get_by_test_id("exchange-pager")
    first = _row_ids(page, "exchange-row")
    assert first == wanted[:100]
    expect(pager.get_by_test_id("pager-total")).to_contain_text("Всего записей: 125")
    expect(pager.get_by_test_id("pager-newer")).to_have_count(0)
    pager.get_by_role("link", name="Старее").click()

    expect(page).to_have_url(re.compile(r"owner=UpdateStatus"))
    second = _row_ids(page, "exchange-row")
    assert second == wanted[100:]  # down to the oldest UpdateStatus row
    expect(page.get_by_label("Владелец")).to_have_value("UpdateStatus")
    owners = page.locator("[data-testid=exchange-row] td:nth-child(3)").all_inner_texts()
    assert set(owners) == {"UpdateStatus"}
    expect(pager.get_by_test_id("pager-older")).to_have_count(0)
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / "exchange-log-page2.png"), full_page=False)

    pager.get_by_role("link", name="Новее").click()
    assert _row_ids(page, "exchange-row") == wanted[:100]
    expect(page).to_have_url(re.compile(r"owner=UpdateStatus"))


def test_journal_pages_too(page: Any, live_url: str, users: Any, sessions: sessionmaker[Session]) -> None:
    with transaction(sessions) as s:
        s.add_all(
            [JournalEntry(service="TMangoOfficeThread", run_id=1, message=f"строка {n}") for n in range(130)]
        )
    log_in(page, live_url, "admin", ADMIN_PASSWORD)
    page.goto(live_url + "/admin/journal?service=TMangoOfficeThread")
    first = _row_ids(page, "journal-row")
    assert len(first) == 100 and first == sorted(first, reverse=True)
    page.get_by_test_id("journal-pager").get_by_role("link", name="Старее").click()
    expect(page).to_have_url(re.compile(r"service=TMangoOfficeThread"))
    second = _row_ids(page, "journal-row")
    assert len(second) == 30 and max(second) < min(first)
    expect(page.locator("[data-testid=journal-row]").last).to_contain_text("строка 0")
