"""«Планировщик записи на прием» in a real browser on a registrar's 1366×768 screen: six
doctors with long names and long service names fit as a time grid that scrolls inside its
own box (never the page sideways), no word is broken in the middle, the doctors' names stay
on top; «Новый прием», «Перенести», «Подтвердить запись» and «Отменить запись» from the grid.

The server runs in New York, the clinic in Vladivostok: «today» and «past» are the clinic's.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from clinic.db import transaction
from clinic.models import Appointment, Cabinet, Employee, Patient, Service
from clinic.services.settings import get_settings

from .conftest import REGISTRAR_PASSWORD

pytestmark = pytest.mark.browser

CLINIC_ZONE = "Asia/Vladivostok"
SCREEN = {"width": 1366, "height": 768}
SHOTS = Path("/tmp/schedule-shots")

DOCTORS = (
    ("Александрова", "Екатерина", "Владимировна", "Невролог"),
    ("Константинопольский", "Вячеслав", "Александрович", "Оториноларинголог"),
    ("Преображенская", "Антонина", "Святославовна", "Врач ультразвуковой диагностики"),
    ("Белоусов", "Олег", "Петрович", "Гастроэнтеролог"),
    ("Воскресенская", "Мария", "Игоревна", "Акушер гинеколог"),
    ("Терапевтов", "Олег", "Ильич", "Терапевт участковый"),
)
LONG_SERVICE = "Приём (осмотр, консультация) врача-невролога первичный с оформлением медицинского заключения"
EXTRA = "Принести результаты анализов крови и заключение кардиолога"


def clinic_today() -> date:
    return datetime.now(ZoneInfo(CLINIC_ZONE)).date()


def at(day: date, hh: int, mm: int = 0) -> datetime:
    return datetime.combine(day, datetime.min.time()).replace(hour=hh, minute=mm)



@pytest.fixture()
def board(sessions: sessionmaker[Session], server_in_new_york: None) -> dict[str, Any]:
    """Tomorrow (clinic time): six doctors, each with appointments; one cancelled and rebooked."""
    day = clinic_today() + timedelta(days=1)
    with transaction(sessions) as s:
        get_settings(s).timezone = CLINIC_ZONE
        doctors = [Employee(last_name=a, first_name=b, patronymic=c, specialty=d) for a, b, c, d in DOCTORS]
        patients = [
            Patient(last_name="Иванов", first_name="Пётр", patronymic="Сергеевич", phone="+79161234567"),
            Patient(last_name="Смирнова", first_name="Анна", patronymic="Юрьевна", phone="+79031112233"),
            Patient(last_name="Кузнецов-Водкин", first_name="Аристарх", patronymic="Феофилактович"),
            Patient(last_name="Орлова", first_name="Вера", patronymic="Павловна", phone="+79035556677"),
        ]
        cabinets = [Cabinet(number="105", name="Неврология"), Cabinet(number="212", name="Кабинет УЗИ")]
        services = [
            Service(code="B01.023.001", name=LONG_SERVICE, duration_min=20, price=0),
            Service(
                code="B04.047.002", name="Принести результаты анализов: повторный приём", duration_min=20
            ),
            Service(
                code="A04.16.001", name="Ультразвуковое исследование органов брюшной полости", duration_min=40
            ),
        ]
        s.add_all([*doctors, *patients, *cabinets, *services])
        s.flush()

        def book(doctor: int, patient: int, hh: int, mm: int, service: int = 0, **kw: Any) -> Appointment:
            appt = Appointment(
                patient_id=patients[patient].id, doctor_id=doctors[doctor].id,
                cabinet_id=cabinets[doctor % 2].id, service_id=services[service].id,
                starts_at=at(day, hh, mm), duration_min=services[service].duration_min,
                extra_info=kw.pop("extra_info", ""), cancel_reason=kw.pop("cancel_reason", ""),
                confirmation_status=kw.pop("confirmation_status", ""), confirmation_source="", **kw,
            )  # fmt: skip
            s.add(appt)
            return appt

        for i in range(len(doctors)):
            book(i, i % 4, 9, 0, extra_info=EXTRA if i % 2 else "")
            book(i, (i + 1) % 4, 9, 20, service=1)
            book(i, (i + 2) % 4, 11, 0, service=2 if i == 2 else 0)
        confirmed = book(0, 0, 10, 0, confirmation_status="confirmed", extra_info="Запись подтверждена")
        book(1, 1, 12, 0, status="cancelled", cancel_reason="По просьбе пациента")
        rebooked = book(1, 2, 12, 0)
        s.flush()
        return {
            "day": day,
            "doctors": [d.id for d in doctors],
            "patients": [p.id for p in patients],
            "services": [x.id for x in services],
            "cabinets": [c.id for c in cabinets],
            "confirmed": confirmed.id,
            "rebooked": rebooked.id,
        }


def log_in(page: Any, base: str) -> None:
    page.goto(base + "/login")
    page.get_by_label("Логин").fill("reg")
    page.get_by_label("Пароль").fill(REGISTRAR_PASSWORD)
    page.get_by_role("button", name="Войти").click()
    expect(page).to_have_url(re.compile(r"/schedule"))


def open_day(page: Any, base: str, day: date) -> None:
    page.set_viewport_size(SCREEN)
    log_in(page, base)
    page.goto(f"{base}/schedule?date={day.isoformat()}")
    expect(page.get_by_test_id("board")).to_be_visible()


def shot(page: Any, name: str) -> None:
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"))


# Every word (split at spaces) of each element's text lies on one line box: a word broken in
# the middle («Невролог|ический») would have two client rects.
BROKEN_WORDS = """
(selector) => {
  const broken = [];
  for (const el of document.querySelectorAll(selector)) {
    const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      const re = /\\S+/g;
      let m;
      while ((m = re.exec(node.data))) {
        const range = document.createRange();
        range.setStart(node, m.index);
        range.setEnd(node, m.index + m[0].length);
        const rects = [...range.getClientRects()].filter(r => r.width > 0);
        const lines = new Set(rects.map(r => Math.round(r.top)));
        if (lines.size > 1) broken.push(m[0]);
      }
    }
  }
  return broken;
}
"""


def test_six_doctors_fit_a_registrar_screen_without_broken_words(
    page: Any, live_url: str, users: Any, board: dict[str, Any]
) -> None:
    open_day(page, live_url, board["day"])
    expect(page.get_by_test_id("doctor-column")).to_have_count(6)
    expect(page.get_by_test_id("appointment")).to_have_count(6 * 3 + 3)
    shot(page, "board-1366")

    # the page itself never scrolls sideways; six doctors fit the board without scrolling
    width = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1], width
    grid = page.get_by_test_id("board").evaluate("b => [b.scrollWidth, b.clientWidth]")
    assert grid[0] <= grid[1], grid

    # whole words only: doctor names, specialties, services, patients, «Доп. информация»
    selectors = ".doctor-name, .doctor-specialty, .appt-service, .appt-patient, .appt .extra, .appt-head"
    assert page.evaluate(BROKEN_WORDS, selectors) == []
    for prop in ("word-break", "overflow-wrap", "hyphens"):
        values = page.eval_on_selector_all(
            ".doctor-name, .appt-service", f"els => [...new Set(els.map(e => getComputedStyle(e)['{prop}']))]"
        )
        assert values == [{"word-break": "normal", "overflow-wrap": "normal", "hyphens": "manual"}[prop]]
    # a long service is cut with «…», the whole name in its tooltip
    service = page.locator(".appt-service", has_text="Приём (осмотр, консультация)").first
    assert service.get_attribute("title") == LONG_SERVICE
    assert service.evaluate("e => e.scrollHeight > e.clientHeight")  # clamped, not spilling
    # each appointment lies inside its own doctor's column
    for doctor_id in board["doctors"]:
        header = page.locator(f"[data-testid=doctor-column][data-doctor-id='{doctor_id}']").bounding_box()
        for box in page.locator(f"[data-testid=appointment][data-doctor-id='{doctor_id}']").all():
            b = box.bounding_box()
            assert header["x"] - 1 <= b["x"] and b["x"] + b["width"] <= header["x"] + header["width"] + 1


def test_cancelled_and_rebooked_slot_sit_side_by_side(
    page: Any, live_url: str, users: Any, board: dict[str, Any]
) -> None:
    open_day(page, live_url, board["day"])
    column = page.locator(f"[data-testid=doctor-column][data-doctor-id='{board['doctors'][1]}']")
    pair = page.locator(f"[data-testid=appointment][data-doctor-id='{board['doctors'][1]}']").filter(
        has_text="12:00"
    )
    expect(pair).to_have_count(2)
    expect(pair.filter(has_text="Отменён")).to_contain_text("Причина: По просьбе пациента")
    a, b = (x.bounding_box() for x in pair.all())
    assert a["x"] + a["width"] <= b["x"] + 1 or b["x"] + b["width"] <= a["x"] + 1  # no overlap
    head = column.bounding_box()
    assert (
        head["x"] - 1 <= min(a["x"], b["x"])
        and max(a["x"] + a["width"], b["x"] + b["width"]) <= head["x"] + head["width"] + 1
    )


def test_header_and_time_column_stay_in_view_when_the_board_scrolls(
    page: Any, live_url: str, users: Any, board: dict[str, Any], sessions: sessionmaker[Session]
) -> None:
    with transaction(sessions) as s:  # ten doctors: more than the screen holds
        s.add_all(
            [
                Employee(last_name=f"Дополнительный{i}", first_name="Врач", specialty="Хирург")
                for i in range(4)
            ]
        )
    open_day(page, live_url, board["day"])
    box = page.get_by_test_id("board")
    assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")
    assert box.evaluate("b => b.scrollWidth > b.clientWidth")  # the doctors scroll, inside the board
    assert page.evaluate("() => document.documentElement.scrollHeight <= window.innerHeight + 1")

    box.evaluate("b => { b.scrollTop = 0; b.scrollLeft = 0; }")
    first = page.locator("[data-testid=doctor-column]").first
    top_before = first.bounding_box()["y"]
    box.evaluate("b => { b.scrollTop = 700; b.scrollLeft = 500; }")
    shot(page, "board-scrolled")
    board_box = box.bounding_box()
    corner = page.locator(".board-corner").bounding_box()
    assert abs(corner["y"] - board_box["y"]) <= 2 and abs(corner["x"] - board_box["x"]) <= 2
    header = page.locator("[data-testid=doctor-column]").nth(5).bounding_box()
    assert abs(header["y"] - top_before) <= 2  # the doctors' names did not scroll away
    time_cell = page.locator(".board-time").nth(12).bounding_box()
    assert abs(time_cell["x"] - board_box["x"]) <= 2  # the time column did not scroll away
    # the header is on top of the appointments, not under them
    on_top = page.evaluate(
        "([x, y]) => document.elementFromPoint(x, y).closest('.board-doctor, .board-corner') !== null",
        [header["x"] + 20, header["y"] + 10],
    )
    assert on_top


def _menu(page: Any, appointment: Any, item: str) -> None:
    appointment.click(button="right")  # ПКМ on the appointment
    entry = page.get_by_role("menuitem", name=item)
    expect(entry).to_be_visible()
    shot(page, f"menu-{item}")
    entry.click()


def test_new_appointment_from_a_free_slot(
    page: Any, live_url: str, users: Any, board: dict[str, Any], sessions: sessionmaker[Session]
) -> None:
    open_day(page, live_url, board["day"])
    doctor = board["doctors"][3]
    slot = page.locator(f"[data-testid=free-slot][data-doctor-id='{doctor}'][data-slot='14:00']")
    slot.hover()
    expect(slot).to_contain_text("Новый прием 14:00")
    slot.click()
    expect(page.get_by_role("heading", name="Новый прием")).to_be_visible()
    expect(page.get_by_label("Врач")).to_have_value(str(doctor))
    expect(page.get_by_label("Время")).to_have_value("14:00")
    expect(page.get_by_label("Дата")).to_have_value(board["day"].isoformat())

    page.get_by_label("Поиск пациента").fill("орлова")  # found while typing
    page.get_by_label("Орлова Вера Павловна").check()
    page.get_by_label("Услуга").select_option(label="Принести результаты анализов: повторный приём (20 мин)")
    page.get_by_label("Кабинет").select_option(label="Каб. 212 Кабинет УЗИ")
    page.get_by_label("Доп. информация").fill("Первичный приём после выписки")
    shot(page, "new-form")
    page.get_by_role("button", name="Записать").click()

    expect(page.get_by_role("status")).to_contain_text("Пациент записан: Орлова Вера Павловна")
    block = (
        page.get_by_test_id("appointment").filter(has_text="Орлова Вера Павловна").filter(has_text="14:00")
    )
    expect(block).to_have_attribute("data-doctor-id", str(doctor))
    expect(block).to_contain_text("14:00–14:20")
    expect(block).to_contain_text("Каб. 212")
    with transaction(sessions) as s:
        row = s.scalars(select(Appointment).where(Appointment.starts_at == at(board["day"], 14))).one()
        assert (row.doctor_id, row.patient_id, row.duration_min) == (doctor, board["patients"][3], 20)
        assert (row.status, row.extra_info, row.cabinet_id) == (
            "booked",
            "Первичный приём после выписки",
            board["cabinets"][1],
        )


def test_new_appointment_refused_on_a_busy_doctor_keeps_the_form(
    page: Any, live_url: str, users: Any, board: dict[str, Any], sessions: sessionmaker[Session]
) -> None:
    open_day(page, live_url, board["day"])
    page.get_by_test_id("new-appointment").click()
    page.get_by_label("Поиск пациента").fill("Смирнова")
    page.get_by_label("Смирнова Анна Юрьевна").check()
    page.get_by_label("Врач").select_option(str(board["doctors"][0]))
    page.get_by_label("Дата").fill(board["day"].isoformat())
    page.get_by_label("Время").fill("09:10")
    page.get_by_role("button", name="Записать").click()
    expect(page.get_by_test_id("form-errors")).to_contain_text("Врач уже занят в это время")
    shot(page, "new-refused")
    expect(page.get_by_label("Смирнова Анна Юрьевна")).to_be_checked()  # nothing to type again
    page.get_by_label("Время").fill("07:00")
    page.get_by_role("button", name="Записать").click()
    expect(page.get_by_test_id("form-errors")).to_contain_text("Время вне сетки расписания")
    page.get_by_label("Дата").fill((clinic_today() - timedelta(days=1)).isoformat())
    page.get_by_label("Время").fill("10:00")
    page.get_by_role("button", name="Записать").click()
    expect(page.get_by_test_id("form-errors")).to_contain_text("Время приёма уже прошло")
    with transaction(sessions) as s:
        booked = s.scalars(select(Appointment).where(Appointment.status == "booked")).all()
        assert len(booked) == 6 * 3 + 2  # the fixture's, nothing added


def test_move_an_appointment_to_another_doctor_and_time(
    page: Any, live_url: str, users: Any, board: dict[str, Any], sessions: sessionmaker[Session]
) -> None:
    open_day(page, live_url, board["day"])
    confirmed = page.locator(f"#appointment-{board['confirmed']}")
    expect(confirmed.get_by_test_id("confirmation-badge")).to_have_text("Запись подтверждена")
    _menu(page, confirmed, "Перенести")
    expect(page.get_by_role("heading", name="Перенести запись")).to_be_visible()
    shot(page, "move-form")
    page.get_by_label("Врач").select_option(str(board["doctors"][5]))
    page.get_by_label("Время").fill("15:40")
    page.get_by_role("button", name="Перенести").click()

    expect(page.get_by_role("status").first).to_contain_text("Запись перенесена")
    expect(page.get_by_role("status").first).to_contain_text("Подтверждение пациента сброшено")
    moved = page.locator(f"#appointment-{board['confirmed']}")
    expect(moved).to_have_attribute("data-doctor-id", str(board["doctors"][5]))
    expect(moved).to_contain_text("15:40–16:00")
    expect(moved.get_by_test_id("confirmation-badge")).to_have_count(0)
    expect(moved).not_to_contain_text("Запись подтверждена")
    with transaction(sessions) as s:
        row = s.get(Appointment, board["confirmed"])
        assert row.doctor_id == board["doctors"][5]
        assert row.starts_at == at(board["day"], 15, 40)
        assert (row.confirmation_status, row.confirmation_source, row.confirmed_at) == ("", "", None)


def test_confirm_then_cancel_with_a_reason(
    page: Any, live_url: str, users: Any, board: dict[str, Any], sessions: sessionmaker[Session]
) -> None:
    open_day(page, live_url, board["day"])
    target = page.locator(f"#appointment-{board['rebooked']}")
    _menu(page, target, "Подтвердить запись")
    expect(page.get_by_role("status")).to_contain_text("Запись подтверждена: Кузнецов-Водкин Аристарх")
    expect(target.get_by_test_id("confirmation-badge")).to_have_text("Запись подтверждена")
    shot(page, "confirmed")
    with transaction(sessions) as s:
        row = s.get(Appointment, board["rebooked"])
        assert (row.confirmation_status, row.confirmation_source) == ("confirmed", "registrar")
        assert row.confirmed_at is not None and row.extra_info == "Запись подтверждена"

    _menu(page, target, "Отменить запись")
    expect(page.get_by_role("heading", name="Отменить запись")).to_be_visible()
    page.get_by_role("button", name="Отменить запись").click()  # no reason: the browser asks for one
    expect(page.get_by_role("heading", name="Отменить запись")).to_be_visible()
    page.get_by_label("Причина отмены").fill("Заболевание")
    shot(page, "cancel-form")
    page.get_by_role("button", name="Отменить запись").click()
    expect(page.get_by_role("status")).to_contain_text("Запись отменена: Кузнецов-Водкин Аристарх")
    expect(target.get_by_test_id("status-badge")).to_have_text("Отменён")
    expect(target).to_contain_text("Причина: Заболевание")
    target.click(button="right")
    expect(page.get_by_role("menuitem", name="Отменить запись")).to_have_count(0)  # nothing left to cancel
    with transaction(sessions) as s:
        row = s.get(Appointment, board["rebooked"])
        assert (row.status, row.cancel_reason) == ("cancelled", "Заболевание")


def test_drag_an_appointment_onto_a_free_slot_moves_it(
    page: Any, live_url: str, users: Any, board: dict[str, Any], sessions: sessionmaker[Session]
) -> None:
    open_day(page, live_url, board["day"])
    target = page.locator(
        f"[data-testid=free-slot][data-doctor-id='{board['doctors'][4]}'][data-slot='13:00']"
    )
    target.scroll_into_view_if_needed()
    page.locator(f"#appointment-{board['rebooked']}").drag_to(target)
    expect(page.get_by_role("status").first).to_contain_text("Запись перенесена")
    moved = page.locator(f"#appointment-{board['rebooked']}")
    expect(moved).to_have_attribute("data-doctor-id", str(board["doctors"][4]))
    expect(moved).to_contain_text("13:00–13:20")
    with transaction(sessions) as s:
        row = s.get(Appointment, board["rebooked"])
        assert (row.doctor_id, row.starts_at) == (board["doctors"][4], at(board["day"], 13))


def test_today_is_the_clinics_and_opens_at_its_current_time(
    page: Any, live_url: str, users: Any, board: dict[str, Any], sessions: sessionmaker[Session]
) -> None:
    today = clinic_today()
    with transaction(sessions) as s:  # a visit across the whole clinic day: the grid holds "now"
        s.add(
            Appointment(
                patient_id=board["patients"][0], doctor_id=board["doctors"][0], starts_at=at(today, 0),
                duration_min=720, status="done", extra_info="", cancel_reason="", confirmation_status="",
                confirmation_source="",
            )
        )  # fmt: skip
        s.add(
            Appointment(
                patient_id=board["patients"][1], doctor_id=board["doctors"][0], starts_at=at(today, 12),
                duration_min=720, status="done", extra_info="", cancel_reason="", confirmation_status="",
                confirmation_source="",
            )
        )  # fmt: skip
    page.set_viewport_size(SCREEN)
    log_in(page, live_url)  # lands on today's board
    expect(page.get_by_test_id("day-title")).to_contain_text(f"{today:%d.%m.%Y}")
    now = datetime.now(ZoneInfo(CLINIC_ZONE))
    marker = page.locator(".board-time.is-now")
    expect(marker).to_have_count(1)
    expect(marker).to_be_in_viewport()  # the board opened at the clinic's current time
    slot = f"{now:%H}:{now.minute - now.minute % 20:02d}"
    expect(marker).to_have_text(slot)
    # slots already over offer no «Новый прием»; the current one and later do
    doctor = board["doctors"][1]
    free = page.locator(f"[data-testid=free-slot][data-doctor-id='{doctor}']")
    slots = free.evaluate_all("els => els.map(e => e.dataset.slot)")
    assert slots and min(slots) == slot
    shot(page, "today")


def test_f9_opens_new_appointment_as_in_the_manual(
    page: Any, live_url: str, users: Any, board: dict[str, Any]
) -> None:
    open_day(page, live_url, board["day"])
    page.keyboard.press("F9")
    expect(page.get_by_role("heading", name="Новый прием")).to_be_visible()
    expect(page.get_by_label("Дата")).to_have_value(board["day"].isoformat())


def test_a_smaller_screen_scrolls_the_board_not_the_page(
    page: Any, live_url: str, users: Any, board: dict[str, Any]
) -> None:
    page.set_viewport_size({"width": 1024, "height": 700})
    log_in(page, live_url)
    page.goto(f"{live_url}/schedule?date={board['day'].isoformat()}")
    expect(page.get_by_test_id("appointment")).to_have_count(6 * 3 + 3)
    assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")
    assert page.get_by_test_id("board").evaluate("b => b.scrollWidth > b.clientWidth")
    assert page.evaluate(BROKEN_WORDS, ".doctor-name, .appt-service, .appt-patient, .appt .extra") == []
    # every block, its «⋯» included, inside its own doctor's column
    for block in page.get_by_test_id("appointment").all():
        block.scroll_into_view_if_needed()
        head = page.locator(
            f"[data-testid=doctor-column][data-doctor-id='{block.get_attribute('data-doctor-id')}']"
        )
        h, b, m = head.bounding_box(), block.bounding_box(), block.locator("summary").bounding_box()
        assert h["x"] - 1 <= b["x"] and b["x"] + b["width"] <= h["x"] + h["width"] + 1
        assert b["x"] < m["x"] and m["x"] + m["width"] <= b["x"] + b["width"]
    shot(page, "board-1024")
