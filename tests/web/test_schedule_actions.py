"""The scheduler's POST actions through the Flask test client: «Новый прием», «Перенести»,
«Подтвердить запись», «Отменить запись». Bad input gets a Russian reason and a 4xx, never a
500 and never a row; the day grid's rules; «today» and «past» in the clinic's time zone."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from clinic.db import transaction
from clinic.models import Appointment, Employee, Service
from clinic.services.settings import get_settings

from .support import Web

MOSCOW = ZoneInfo("Europe/Moscow")  # the clinic's zone unless a test sets another


def clinic_day(offset: int = 2) -> date:
    return datetime.now(MOSCOW).date() + timedelta(days=offset)


def at(day: date, hh: int, mm: int = 0) -> datetime:
    return datetime.combine(day, datetime.min.time()).replace(hour=hh, minute=mm)


@pytest.fixture()
def ids(clinic: Callable[..., int], sessions: sessionmaker[Session]) -> dict[str, Any]:
    day = clinic_day()
    out: dict[str, Any] = {
        "day": day,
        "therapist": clinic("doctor", last_name="Терапевтов"),
        "surgeon": clinic("doctor", last_name="Хирургова", first_name="Нина", specialty="Хирург"),
        "ivanov": clinic("patient", last_name="Иванов", phone="+79161234567"),
        "orlova": clinic("patient", last_name="Орлова", first_name="Вера", phone="+79035556677"),
        "cab": clinic("cabinet", number="105", name="Терапия"),
        "svc": clinic("service", code="B01.047.001", name="Приём терапевта первичный"),
    }
    out["booked"] = clinic(
        "appointment", patient_id=out["ivanov"], doctor_id=out["therapist"], cabinet_id=out["cab"],
        service_id=out["svc"], starts_at=at(day, 10), extra_info="Нужна справка",
    )  # fmt: skip
    return out


def count(sessions: sessionmaker[Session]) -> int:
    with transaction(sessions) as s:
        return s.scalar(select(func.count()).select_from(Appointment)) or 0


def form(ids: dict[str, Any], **changes: Any) -> dict[str, Any]:
    data = {
        "patient_id": ids["orlova"],
        "doctor_id": ids["surgeon"],
        "date": ids["day"].isoformat(),
        "time": "11:00",
        "service_id": ids["svc"],
        "cabinet_id": "",
        "duration_min": "",
        "extra_info": "",
    }
    return {**data, **changes}


def post_new(web: Web, data: dict[str, Any]) -> Any:
    return web.post_form("/schedule/new", data)


def messages(html: str) -> str:
    return " ".join(re.findall(r'data-error-for="[^"]+">([^<]*)<', html))


# --------------------------------------------------------------------------- «Новый прием»


def test_new_appointment_is_booked_and_shown_on_its_day(
    registrar_web: Web, ids: dict[str, Any], fetch: Callable[..., Any], sessions: sessionmaker[Session]
) -> None:
    response = post_new(registrar_web, form(ids, extra_info="Первичный"))
    assert response.status_code == 302
    new_id = int(response.location.rsplit("#appointment-", 1)[1])
    assert response.location.startswith(f"/schedule?date={ids['day'].isoformat()}")
    row = fetch(Appointment, new_id)
    assert (row.patient_id, row.doctor_id, row.starts_at) == (
        ids["orlova"],
        ids["surgeon"],
        at(ids["day"], 11),
    )
    assert (row.duration_min, row.status, row.extra_info) == (
        20,
        "booked",
        "Первичный",
    )  # the service's 20 min
    page = registrar_web.text(response.location)
    assert "Пациент записан: Орлова Вера" in page
    assert f'id="appointment-{new_id}"' in page


def test_admin_books_too(admin_web: Web, ids: dict[str, Any], sessions: sessionmaker[Session]) -> None:
    assert post_new(admin_web, form(ids)).status_code == 302
    assert count(sessions) == 2


@pytest.mark.parametrize(
    ("changes", "field", "text"),
    [
        ({"patient_id": ""}, "patient", "Выберите пациента"),
        ({"doctor_id": ""}, "doctor_id", "Выберите врача"),
        ({"time": ""}, "when", "Укажите дату и время приёма"),
        ({"date": "2025-02-30"}, "when", "Некорректная дата приёма"),
        ({"time": "25:00"}, "when", "Некорректное время приёма"),
        ({"time": "9.30"}, "when", "Некорректное время приёма"),
        ({"date": "1999-05-01"}, "when", "Год приёма должен быть от 2000 до 2099"),
        ({"patient_id": "abc"}, "patient", "Ожидается целое число"),
        ({"patient_id": "424242"}, "patient", "Пациент №424242 не найден"),
        ({"doctor_id": "99999999999"}, "doctor_id", "Допустимо от 1 до 2147483647"),
        ({"service_id": "777"}, "service_id", "Услуга №777 не найден"),
        ({"cabinet_id": "-1"}, "cabinet_id", "Допустимо от 1"),
        ({"duration_min": "0"}, "duration_min", "Допустимо от 1 до 720"),
        ({"extra_info": "x" * 2001}, "extra_info", "Не длиннее 2000 символов"),
        ({"time": "07:00"}, "when", "Время вне сетки расписания"),
        ({"time": "19:50"}, "when", "возможен с 08:00 до 20:00"),  # ends 20:10
        ({"doctor_id": "therapist", "time": "10:10"}, "when", "Врач уже занят в это время"),
    ],
)
def test_bad_new_appointment_is_refused_in_russian_and_nothing_is_written(
    registrar_web: Web,
    ids: dict[str, Any],
    sessions: sessionmaker[Session],
    changes: dict[str, Any],
    field: str,
    text: str,
) -> None:
    changes = {k: (ids[v] if v in ("therapist",) else v) for k, v in changes.items()}
    response = post_new(registrar_web, form(ids, **changes))
    assert response.status_code == 422
    assert f'data-error-for="{field}"' in response.text, messages(response.text)
    assert text in response.text
    assert "Запись не сохранена" in response.text
    assert count(sessions) == 1


def test_the_form_keeps_what_was_typed(registrar_web: Web, ids: dict[str, Any]) -> None:
    response = post_new(registrar_web, form(ids, time="07:00", extra_info="Позвонить накануне"))
    assert ">Позвонить накануне</textarea>" in response.text
    assert re.search(rf'value="{ids["orlova"]}" checked', response.text)  # the chosen patient stays
    assert re.search(rf'<option value="{ids["surgeon"]}" selected', response.text)


def test_a_past_time_is_refused(
    registrar_web: Web, ids: dict[str, Any], sessions: sessionmaker[Session]
) -> None:
    response = post_new(registrar_web, form(ids, date=clinic_day(-1).isoformat()))
    assert response.status_code == 422 and "Время приёма уже прошло" in response.text
    assert count(sessions) == 1


def test_the_grid_widens_to_an_imported_evening_appointment(
    registrar_web: Web, ids: dict[str, Any], clinic: Callable[..., int], sessions: sessionmaker[Session]
) -> None:
    clinic("appointment", patient_id=ids["ivanov"], doctor_id=ids["therapist"], starts_at=at(ids["day"], 21))
    page = registrar_web.text(f"/schedule?date={ids['day'].isoformat()}")
    assert "сетка 08:00–21:20" in page
    assert post_new(registrar_web, form(ids, time="20:40")).status_code == 302


def test_a_busy_cabinet_is_a_warning_not_a_refusal(
    registrar_web: Web, ids: dict[str, Any], sessions: sessionmaker[Session]
) -> None:
    response = post_new(registrar_web, form(ids, time="10:00", cabinet_id=ids["cab"]))
    assert response.status_code == 302
    page = registrar_web.text(response.location)
    assert "Внимание: в кабинете 105 в это время уже приём Терапевтов О.И." in page
    assert count(sessions) == 2


def test_a_post_without_the_csrf_token_changes_nothing(
    registrar_web: Web, ids: dict[str, Any], sessions: sessionmaker[Session], fetch: Callable[..., Any]
) -> None:
    assert registrar_web.client.post("/schedule/new", data=form(ids)).status_code == 400
    booked = ids["booked"]
    assert registrar_web.client.post(f"/schedule/appointments/{booked}/confirm").status_code == 400
    assert (
        registrar_web.client.post(f"/schedule/appointments/{booked}/cancel", data={"reason": "x"}).status_code
        == 400
    )
    assert count(sessions) == 1
    row = fetch(Appointment, booked)
    assert (row.status, row.confirmation_status) == ("booked", "")


def test_new_form_prefilled_from_a_free_slot_and_patient_search_without_javascript(
    registrar_web: Web, ids: dict[str, Any]
) -> None:
    slot = f"/schedule/new?doctor_id={ids['surgeon']}&date={ids['day'].isoformat()}&time=14:20"
    page = registrar_web.text(slot + "&q=орлова")
    assert re.search(rf'<option value="{ids["surgeon"]}" selected', page)
    assert 'name="time" type="time" value="14:20"' in page
    assert f'name="patient_id" value="{ids["orlova"]}"' in page and "Иванов Пётр" not in page
    assert "Пациенты не найдены" in registrar_web.text(slot + "&q=Петросян")
    assert "не менее 2 символов" in registrar_web.text(slot + "&q=О")
    assert registrar_web.get("/schedule/new?doctor_id=abc&patient_id=1e9&date=xx").status_code == 200
    assert registrar_web.get("/schedule/new?patient_id=²&back_doctor=²").status_code == 200


@pytest.mark.parametrize("raw", ["abc", "²", "-1", "0", "99999999999", "1.5"])
def test_a_strange_doctor_filter_shows_every_doctor(
    registrar_web: Web, ids: dict[str, Any], raw: str
) -> None:
    page = registrar_web.client.get("/schedule", query_string={"date": ids["day"].isoformat(), "doctor": raw})
    assert page.status_code == 200
    assert len(re.findall(r'data-testid="doctor-column"', page.text)) == 2


def test_patient_search_for_the_form(registrar_web: Web, ids: dict[str, Any]) -> None:
    found = registrar_web.client.get("/schedule/patients?q=8 903 555").get_json()
    assert found == {
        "patients": [
            {"id": ids["orlova"], "name": "Орлова Вера", "birth_date": "", "phone": "+7 903 555-66-77"}
        ],
        "too_short": False,
    }
    assert registrar_web.client.get("/schedule/patients?q=О").get_json() == {
        "patients": [],
        "too_short": True,
    }


# --------------------------------------------------------------------------- «Перенести»


def _confirm_by_robot(sessions: sessionmaker[Session], appointment_id: int) -> None:
    with transaction(sessions) as s:
        row = s.get(Appointment, appointment_id)
        row.confirmation_status, row.confirmation_source = "confirmed", "mango"
        row.extra_info = "Запись подтверждена\nНужна справка"


def test_move_changes_time_and_doctor_and_drops_the_confirmation(
    registrar_web: Web, ids: dict[str, Any], sessions: sessionmaker[Session], fetch: Callable[..., Any]
) -> None:
    _confirm_by_robot(sessions, ids["booked"])
    url = f"/schedule/appointments/{ids['booked']}/move"
    data = {"doctor_id": ids["surgeon"], "date": ids["day"].isoformat(), "time": "15:40", "cabinet_id": ""}
    response = registrar_web.post_form(url, data)
    assert response.status_code == 302
    row = fetch(Appointment, ids["booked"])
    assert (row.doctor_id, row.starts_at, row.cabinet_id) == (ids["surgeon"], at(ids["day"], 15, 40), None)
    assert (row.confirmation_status, row.confirmation_source, row.confirmed_at) == ("", "", None)
    assert row.extra_info == "Нужна справка"  # the stale phrase goes, staff's note stays
    page = registrar_web.text(response.location)
    assert "Запись перенесена" in page and "Подтверждение пациента сброшено" in page


def test_move_that_changes_nothing_keeps_the_confirmation(
    registrar_web: Web, ids: dict[str, Any], sessions: sessionmaker[Session], fetch: Callable[..., Any]
) -> None:
    _confirm_by_robot(sessions, ids["booked"])
    url = f"/schedule/appointments/{ids['booked']}/move"
    data = {
        "doctor_id": ids["therapist"],
        "date": ids["day"].isoformat(),
        "time": "10:00",
        "cabinet_id": ids["cab"],
    }
    response = registrar_web.post_form(url, data)
    assert response.status_code == 302
    assert "не изменились" in registrar_web.text(response.location)
    assert fetch(Appointment, ids["booked"]).confirmation_status == "confirmed"


@pytest.mark.parametrize(
    ("changes", "text"),
    [
        ({"time": "11:10", "doctor_id": "surgeon"}, "Врач уже занят в это время"),
        ({"time": ""}, "Укажите дату и время приёма"),
        ({"time": "06:00"}, "Время вне сетки расписания"),
        ({"doctor_id": "424242"}, "Врач №424242 не найден"),
        ({"doctor_id": "retired"}, "не работает"),
    ],
)
def test_bad_move_is_refused_and_the_appointment_stays(
    registrar_web: Web,
    ids: dict[str, Any],
    clinic: Callable[..., int],
    sessions: sessionmaker[Session],
    fetch: Callable[..., Any],
    changes: dict[str, str],
    text: str,
) -> None:
    clinic("appointment", patient_id=ids["orlova"], doctor_id=ids["surgeon"], starts_at=at(ids["day"], 11))
    retired = clinic("doctor", last_name="Уволенный")
    with transaction(sessions) as s:
        s.get(Employee, retired).is_active = False
    names = {"surgeon": ids["surgeon"], "retired": retired}
    data = {"doctor_id": ids["therapist"], "date": ids["day"].isoformat(), "time": "10:30", "cabinet_id": ""}
    data |= {k: names.get(v, v) for k, v in changes.items()}
    response = registrar_web.post_form(f"/schedule/appointments/{ids['booked']}/move", data)
    assert response.status_code == 422, response.status_code
    assert text in response.text and "Запись не перенесена" in response.text
    row = fetch(Appointment, ids["booked"])
    assert (row.doctor_id, row.starts_at) == (ids["therapist"], at(ids["day"], 10))


def test_unknown_appointment_is_404(registrar_web: Web, ids: dict[str, Any]) -> None:
    token = registrar_web.csrf("/schedule")
    for action in ("move", "cancel", "confirm"):
        response = registrar_web.client.post(
            f"/schedule/appointments/424242/{action}", data={"csrf_token": token}
        )
        assert response.status_code == 404, action
    assert registrar_web.get("/schedule/appointments/424242/move").status_code == 404
    assert registrar_web.get("/schedule/appointments/99999999999/cancel").status_code == 404


# --------------------------------------------------------------------------- confirm and cancel


def _post(web: Web, url: str, data: dict[str, Any] | None = None) -> Any:
    return web.client.post(url, data={**(data or {}), "csrf_token": web.csrf("/schedule")})


def test_confirm_writes_the_robots_fields_once(
    registrar_web: Web, ids: dict[str, Any], fetch: Callable[..., Any]
) -> None:
    url = f"/schedule/appointments/{ids['booked']}/confirm"
    response = _post(registrar_web, url)
    assert response.status_code == 302
    assert "Запись подтверждена: Иванов Пётр" in registrar_web.text(response.location)
    row = fetch(Appointment, ids["booked"])
    assert (row.confirmation_status, row.confirmation_source) == ("confirmed", "registrar")
    assert row.extra_info == "Запись подтверждена\nНужна справка"
    first = row.confirmed_at
    assert first is not None
    again = _post(registrar_web, url)
    assert "Запись уже подтверждена" in registrar_web.text(again.location)
    assert fetch(Appointment, ids["booked"]).confirmed_at == first  # the robot's stale rule needs the first


def test_confirmation_badge_on_the_board(registrar_web: Web, ids: dict[str, Any]) -> None:
    _post(registrar_web, f"/schedule/appointments/{ids['booked']}/confirm")
    page = registrar_web.text(f"/schedule?date={ids['day'].isoformat()}")
    block = re.search(rf'id="appointment-{ids["booked"]}".*?</article>', page, flags=re.S)
    assert block is not None
    assert re.search(r'data-testid="confirmation-badge"[^>]*>Запись подтверждена<', block.group(0))
    assert block.group(0).count(">Запись подтверждена<") == 1  # the badge, not the phrase again
    assert ">Нужна справка</div>" in block.group(0)  # «Доп. информация» without the phrase
    assert "Подтвердить запись" not in block.group(0)


def test_cancel_with_a_reason(registrar_web: Web, ids: dict[str, Any], fetch: Callable[..., Any]) -> None:
    url = f"/schedule/appointments/{ids['booked']}/cancel"
    empty = _post(registrar_web, url, {"reason": "  "})
    assert empty.status_code == 422 and "Обязательное поле" in empty.text
    long = _post(registrar_web, url, {"reason": "x" * 301})
    assert long.status_code == 422 and "Не длиннее 300 символов" in long.text
    assert fetch(Appointment, ids["booked"]).status == "booked"

    done = _post(registrar_web, url, {"reason": "Заболевание"})
    assert done.status_code == 302
    page = registrar_web.text(done.location)
    assert "Запись отменена: Иванов Пётр" in page and "Причина: Заболевание" in page
    row = fetch(Appointment, ids["booked"])
    assert (row.status, row.cancel_reason) == ("cancelled", "Заболевание")
    block = re.search(rf'id="appointment-{ids["booked"]}".*?</article>', page, flags=re.S)
    assert block is not None and re.search(r'data-testid="status-badge"[^>]*>Отменён<', block.group(0))

    again = _post(registrar_web, url, {"reason": "Другая"})
    assert "Запись уже отменена" in registrar_web.text(again.location)
    assert fetch(Appointment, ids["booked"]).cancel_reason == "Заболевание"
    refused = _post(registrar_web, f"/schedule/appointments/{ids['booked']}/confirm")
    assert "подтвердить её нельзя" in registrar_web.text(refused.location)
    assert fetch(Appointment, ids["booked"]).confirmation_status == ""


def test_a_visit_that_took_place_cannot_be_cancelled(
    registrar_web: Web, ids: dict[str, Any], sessions: sessionmaker[Session], fetch: Callable[..., Any]
) -> None:
    with transaction(sessions) as s:
        s.get(Appointment, ids["booked"]).status = "done"
    response = _post(registrar_web, f"/schedule/appointments/{ids['booked']}/cancel", {"reason": "Ошибка"})
    assert response.status_code == 422 and "Приём уже состоялся" in response.text
    assert fetch(Appointment, ids["booked"]).status == "done"


# --------------------------------------------------------------------------- the clinic's clock


@pytest.fixture()
def far_apart_zones(server_zone: Callable[[str], None], sessions: sessionmaker[Session]) -> ZoneInfo:
    """Server at UTC−12, clinic at UTC+14: their calendar dates always differ."""
    server_zone("Etc/GMT+12")
    with transaction(sessions) as s:
        get_settings(s).timezone = "Pacific/Kiritimati"
    return ZoneInfo("Pacific/Kiritimati")


def test_today_and_past_are_the_clinics(
    registrar_web: Web,
    far_apart_zones: ZoneInfo,
    clinic: Callable[..., int],
    sessions: sessionmaker[Session],
) -> None:
    clinic_now = datetime.now(far_apart_zones).replace(tzinfo=None, second=0, microsecond=0)
    assert clinic_now.date() != date.today()  # the server's own calendar is another day
    assert (
        f"{clinic_now:%d.%m.%Y}" in registrar_web.text("/schedule").split('data-testid="day-title"')[1][:80]
    )

    # an hour ago on the clinic's clock (a day ahead on the server's): refused as past
    target = clinic_now - timedelta(hours=1)
    doctor = clinic("doctor", last_name="Ночной")
    other = clinic("doctor", last_name="Круглосуточный")
    patient = clinic("patient", last_name="Полуночник")
    for start in (0, 12):  # widen that day's grid to the whole day
        with transaction(sessions) as s:
            s.add(
                Appointment(
                    patient_id=patient, doctor_id=other, starts_at=at(target.date(), start), duration_min=720,
                    extra_info="", cancel_reason="", confirmation_status="", confirmation_source="",
                )
            )  # fmt: skip
    data = {
        "patient_id": patient,
        "doctor_id": doctor,
        "date": target.date().isoformat(),
        "time": f"{target:%H:%M}",
    }
    response = registrar_web.post_form("/schedule/new", data)
    assert response.status_code == 422 and "Время приёма уже прошло" in response.text
    later = clinic_now + timedelta(hours=2)
    # near midnight the next clinic day has its own grid: the whole visit (an hour at most)
    # must end on this one
    if (later + timedelta(hours=1)).date() == target.date():
        data["time"] = f"{later:%H:%M}"
        assert registrar_web.post_form("/schedule/new", data).status_code == 302


def test_past_slots_of_today_offer_no_new_appointment(
    registrar_web: Web, far_apart_zones: ZoneInfo, clinic: Callable[..., int]
) -> None:
    doctor = clinic("doctor", last_name="Сегодняшний")
    before = datetime.now(far_apart_zones).replace(tzinfo=None)
    page = registrar_web.text("/schedule")
    now = datetime.now(far_apart_zones).replace(tzinfo=None)
    slots = re.findall(rf'data-testid="free-slot" data-doctor-id="{doctor}" data-slot="(\d\d:\d\d)"', page)
    # slots are times of the clinic's today, compared as moments: as text, the first 20 minutes
    # after its midnight bounded them by yesterday's "23:4x" and refused every slot of the day
    bound = (now - timedelta(minutes=20)).replace(second=0, microsecond=0)
    offered = [datetime.combine(now.date(), time.fromisoformat(slot)) for slot in slots]
    assert all(at >= bound for at in offered), (slots, now)
    if before.hour >= 8 and now.hour < 19:  # the whole request inside the working day
        assert slots and "is-now" in page


# --------------------------------------------------------------------------- grid rules


def test_slot_length_follows_the_services(
    registrar_web: Web, ids: dict[str, Any], clinic: Callable[..., int], sessions: sessionmaker[Session]
) -> None:
    assert "шаг 20 мин" in registrar_web.text(f"/schedule?date={ids['day'].isoformat()}")
    with transaction(sessions) as s:
        s.add(Service(code="U1", name="УЗИ", duration_min=30, price=0, is_active=True))
    assert "шаг 10 мин" in registrar_web.text(f"/schedule?date={ids['day'].isoformat()}")


def test_unit_slot_minutes_and_lanes() -> None:
    from clinic.services.schedule.grid import day_grid, slot_minutes
    from webhooks.ui.schedule_board import build_board

    assert [slot_minutes(d) for d in ([20, 30], [20, 40], [15, 20], [], [60], [45, 90])] == [
        10,
        20,
        15,
        15,
        60,
        45,
    ]
    day = date(2030, 1, 10)
    doctor = Employee(id=1, last_name="А", first_name="Б", patronymic="", is_active=True)

    def appt(i: int, hh: int, mm: int, status: str = "booked") -> Appointment:
        return Appointment(id=i, doctor_id=1, starts_at=at(day, hh, mm), duration_min=20, status=status)

    items = [appt(1, 9, 0, "cancelled"), appt(2, 9, 0), appt(3, 9, 40), appt(4, 22, 0)]
    grid = day_grid(day, items, 20)
    assert (grid.start, grid.end, grid.hours) == (at(day, 8), at(day, 22, 20), "08:00–22:20")
    assert day_grid(day, [appt(9, 23, 50)], 20).hours == "08:00–24:00"  # not «08:00–00:00»
    board = build_board(grid, [doctor], items, at(day, 0))
    [column] = board.columns
    assert column.lanes == 2
    placed = {b.appt.id: (b.row, b.span, b.column, b.width) for b in column.blocks}
    # header row 1, 08:00 row 2: 09:00 is row 5; the pair shares it, the 09:40 one takes both lanes
    assert placed == {1: (5, 1, 2, 1), 2: (5, 1, 3, 1), 3: (7, 1, 2, 2), 4: (44, 1, 2, 2)}


# (a lone surrogate is left out: no browser can send one, the test client cannot encode it)
NASTY = ["", " ", "²", "٣", "０９:３０", "-1", "0", "1e3", "99999999999999999999", "\x00", "x" * 5000, "[]"]


@pytest.mark.parametrize("value", NASTY)
def test_no_input_makes_a_500_or_a_row(
    registrar_web: Web,
    ids: dict[str, Any],
    sessions: sessionmaker[Session],
    fetch: Callable[..., Any],
    value: str,
) -> None:
    token = registrar_web.csrf("/schedule")
    booked = ids["booked"]
    for name in form(ids):
        response = registrar_web.client.post(
            "/schedule/new", data={**form(ids), name: value, "csrf_token": token}
        )
        assert response.status_code in (302, 422), (name, response.status_code)
    move = {"doctor_id": ids["therapist"], "date": ids["day"].isoformat(), "time": "10:00", "cabinet_id": ""}
    for name in move:
        data = {**move, name: value, "back_doctor": value, "csrf_token": token}
        response = registrar_web.client.post(f"/schedule/appointments/{booked}/move", data=data)
        assert response.status_code in (302, 422), (name, response.status_code)
    response = registrar_web.client.post(
        f"/schedule/appointments/{booked}/cancel",
        data={"reason": value, "back_doctor": value, "csrf_token": token},
    )
    assert response.status_code in (302, 422)
    for url in ("/schedule?date=", "/schedule?doctor=", "/schedule/new?time=", "/schedule/patients?q="):
        assert registrar_web.client.get(url + value[:200]).status_code == 200, url


def test_talons_taken_and_left_in_the_manuals_words(
    registrar_web: Web, ids: dict[str, Any], clinic: Callable[..., int]
) -> None:
    clinic(
        "appointment",
        patient_id=ids["orlova"],
        doctor_id=ids["surgeon"],
        starts_at=at(ids["day"], 9),
        status="cancelled",
    )
    page = registrar_web.text(f"/schedule?date={ids['day'].isoformat()}")
    # two doctors × 08:00–20:00 in 20-minute slots = 72; a booking takes one, a cancelled one none
    assert "Занято талонов: 1 · Осталось талонов: 71" in page
    assert "отменено: 1" in page
