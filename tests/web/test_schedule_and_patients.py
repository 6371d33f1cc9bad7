"""«Планировщик записи на прием» (a day by doctor), patient search and the patient card."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from clinic.clock import clinic_now
from webhooks.ui.formatting import years

from .support import Web

DAY = date(2025, 5, 22)


@pytest.fixture()
def day_schedule(clinic: Callable[..., int]) -> dict[str, int]:
    """Two doctors on DAY, one appointment on the next day, one cancelled."""
    ids = {
        "therapist": clinic("doctor", last_name="Терапевтов", first_name="Олег", specialty="Терапевт"),
        "surgeon": clinic("doctor", last_name="Хирургова", first_name="Нина", specialty="Хирург"),
        "ivanov": clinic(
            "patient", last_name="Иванов", first_name="Пётр", patronymic="Сергеевич", phone="+79161234567",
            birth_date=date(1980, 3, 15), phone_extra="+74951234567",
        ),
        "smirnova": clinic(
            "patient", last_name="Смирнова", first_name="Анна", phone="+79031112233", consent_sms=False
        ),
        "cab": clinic("cabinet", number="105", name="Терапия"),
        "svc": clinic("service", code="B01.047.001", name="Приём терапевта первичный"),
    }  # fmt: skip
    ids["a1"] = clinic(
        "appointment", patient_id=ids["ivanov"], doctor_id=ids["therapist"], cabinet_id=ids["cab"],
        service_id=ids["svc"], starts_at=datetime(2025, 5, 22, 9, 30), extra_info="Запись подтверждена",
    )  # fmt: skip
    ids["a2"] = clinic(
        "appointment", patient_id=ids["smirnova"], doctor_id=ids["surgeon"],
        starts_at=datetime(2025, 5, 22, 11, 0), status="cancelled", extra_info="Запись отменена",
    )  # fmt: skip
    ids["a3"] = clinic(
        "appointment", patient_id=ids["smirnova"], doctor_id=ids["therapist"],
        starts_at=datetime(2025, 5, 23, 8, 0), extra_info="На следующий день",
    )  # fmt: skip
    return ids


def rows(page: str) -> list[str]:
    return re.findall(r'<article class="appt status-[a-z_]+[^"]*".*?</article>', page, flags=re.S)


def test_scheduler_is_the_default_page(registrar_web: Web) -> None:
    response = registrar_web.get("/")
    assert response.location == "/schedule"


def test_day_shows_each_appointment_with_its_details(
    registrar_web: Web, day_schedule: dict[str, int]
) -> None:
    page = registrar_web.text("/schedule?date=2025-05-22")
    assert "Четверг, 22.05.2025" in page
    found = rows(page)
    assert len(found) == 2
    first = next(row for row in found if "Иванов" in row)
    for text in (
        "09:30",
        "Иванов Пётр Сергеевич",
        "Каб. 105 Терапия",
        "Приём терапевта первичный",
        "Записан",
    ):
        assert text in first, text
    assert "Запись подтверждена" in first
    assert f'href="/patients/{day_schedule["ivanov"]}"' in first
    assert "+7 916 123-45-67" in first
    second = next(row for row in found if "Смирнова" in row)
    assert "Отменён" in second and "Запись отменена" in second
    assert "На следующий день" not in page


def test_day_has_a_column_per_doctor(registrar_web: Web, day_schedule: dict[str, int]) -> None:
    page = registrar_web.text("/schedule?date=2025-05-22")
    columns = re.findall(r'data-testid="doctor-column" data-doctor-id="(\d+)"', page)
    assert sorted(map(int, columns)) == sorted([day_schedule["therapist"], day_schedule["surgeon"]])
    assert "Терапевтов Олег Ильич" in page
    assert "Хирургова Нина Ильич" in page


def test_prev_and_next_day_links(registrar_web: Web, day_schedule: dict[str, int]) -> None:
    page = registrar_web.text("/schedule?date=2025-05-22")
    assert 'href="/schedule?date=2025-05-21"' in page
    assert 'href="/schedule?date=2025-05-23"' in page
    next_day = registrar_web.text("/schedule?date=2025-05-23")
    assert "На следующий день" in next_day
    assert len(rows(next_day)) == 1


def test_doctor_filter(registrar_web: Web, day_schedule: dict[str, int]) -> None:
    page = registrar_web.text(f"/schedule?date=2025-05-22&doctor={day_schedule['surgeon']}")
    assert len(rows(page)) == 1
    assert "Смирнова" in page
    assert "Иванов Пётр" not in page


def test_empty_day(registrar_web: Web, day_schedule: dict[str, int]) -> None:
    assert "На этот день записей нет" in registrar_web.text("/schedule?date=2025-06-01")


@pytest.mark.parametrize("raw", ["garbage", "2025-13-40", "22.05.2025", "0" * 50])
def test_bad_date_shows_today_instead_of_failing(registrar_web: Web, raw: str) -> None:
    response = registrar_web.get(f"/schedule?date={raw}")
    assert response.status_code == 200
    assert "Некорректная дата" in response.text


def test_bad_doctor_filter_is_ignored(registrar_web: Web, day_schedule: dict[str, int]) -> None:
    page = registrar_web.text("/schedule?date=2025-05-22&doctor=abc")
    assert len(rows(page)) == 2


# --- patients ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    ["Иванов", "иванов", "ИВАНОВ", "ванов", "Иванов Пётр", "пётр иванов", "сергеевич"],
)
def test_search_by_name_fragments(registrar_web: Web, day_schedule: dict[str, int], query: str) -> None:
    page = registrar_web.text(f"/patients?q={query}")
    assert f'/patients/{day_schedule["ivanov"]}"' in page
    assert "Смирнова" not in page


@pytest.mark.parametrize(
    "query",
    ["9161234567", "8 (916) 123-45-67", "+7 916 123", "916-123-45", "89161234567", "4567", "74951234567"],
)
def test_search_by_phone_digits(registrar_web: Web, day_schedule: dict[str, int], query: str) -> None:
    page = registrar_web.client.get("/patients", query_string={"q": query}).text
    assert f'/patients/{day_schedule["ivanov"]}"' in page
    assert "Смирнова" not in page


def test_search_without_match_and_too_short(registrar_web: Web, day_schedule: dict[str, int]) -> None:
    assert "Пациенты не найдены" in registrar_web.text("/patients?q=Петросян")
    assert "Пациенты не найдены" in registrar_web.text("/patients?q=0000000")
    assert "не менее 2 символов" in registrar_web.text("/patients?q=И")


def test_search_treats_like_wildcards_literally(registrar_web: Web, day_schedule: dict[str, int]) -> None:
    assert "Пациенты не найдены" in registrar_web.client.get("/patients", query_string={"q": "%_%"}).text


def test_patient_card(registrar_web: Web, day_schedule: dict[str, int], clinic: Callable[..., int]) -> None:
    soon = datetime.now() + timedelta(days=30)
    clinic(
        "appointment", patient_id=day_schedule["ivanov"], doctor_id=day_schedule["surgeon"],
        starts_at=soon.replace(second=0, microsecond=0), extra_info="Будущий приём",
    )  # fmt: skip
    page = registrar_web.text(f"/patients/{day_schedule['ivanov']}")
    assert "Иванов Пётр Сергеевич" in page
    assert "15.03.1980" in page
    assert "+7 916 123-45-67" in page
    assert "+7 495 123-45-67" in page
    assert re.search(r'data-testid="consent-sms">да<', page)
    upcoming, past = page.split('data-testid="past"')
    assert "Будущий приём" in upcoming
    assert "22.05.2025 09:30" in past and "Запись подтверждена" in past


def test_patient_card_consents(registrar_web: Web, day_schedule: dict[str, int]) -> None:
    page = registrar_web.text(f"/patients/{day_schedule['smirnova']}")
    assert re.search(r'data-testid="consent-sms">нет<', page)
    assert re.search(r'data-testid="consent-calls">да<', page)


def test_unknown_patient_is_404(registrar_web: Web) -> None:
    assert registrar_web.get("/patients/424242").status_code == 404


def test_age_is_in_russian(
    registrar_web: Web, clinic: Callable[..., Any], sessions: sessionmaker[Session]
) -> None:
    # the card counts years by the clinic's calendar: by the server's, from 21:00 UTC on
    # 31 December the Moscow clinic was already a year on and the patient 22
    with sessions() as s:
        year = clinic_now(s).year
    born = date(year - 21, 1, 1)  # 21 full years on any day of the clinic's year
    patient = clinic("patient", last_name="Молодой", birth_date=born)
    assert "(21 год)" in registrar_web.text(f"/patients/{patient}")


@pytest.mark.parametrize(
    ("n", "text"), [(1, "1 год"), (3, "3 года"), (5, "5 лет"), (11, "11 лет"), (22, "22 года")]
)
def test_years_plural(n: int, text: str) -> None:
    assert years(n) == text
