"""What a registrar reads in the call log, the missed calls and the patient card's calls:
times on the clinic's clock whatever the server's zone, results named for the call's
direction (an outbound call nobody took is «Нет ответа», not «Пропущен»), and an answered
call's duration even when it is under a second."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from clinic.db import transaction
from clinic.models import Call, ClinicSettings
from clinic.models.calls import result_title

from .support import Web

# 12:07 UTC: 22:07 on the clinic's clock in Vladivostok (UTC+10), 07:07 in New York
STARTED = datetime(2026, 12, 6, 12, 7, 0, tzinfo=UTC)
ZONE = ZoneInfo("Asia/Vladivostok")



@pytest.fixture()
def vladivostok_clinic(sessions: sessionmaker[Session]) -> None:
    with transaction(sessions) as s:
        settings = s.scalars(select(ClinicSettings)).first()
        if settings is None:
            settings = ClinicSettings()
            s.add(settings)
        settings.timezone = "Asia/Vladivostok"


def _call(uid: str, **fields: Any) -> Call:
    row: dict[str, Any] = {
        "uid": uid,
        "direction": "outbound",
        "number": "+79090808820",
        "state": "ended",
        "started_at": STARTED,
        "ended_at": STARTED + timedelta(minutes=2),
    }
    row.update(fields)
    return Call(**row)


def _cells(page: str, uid: str) -> dict[str, str]:
    """The started / duration / result cells of the call's row, as text."""
    row = re.search(rf'<tr[^>]*data-call-uid="{uid}".*?</tr>', page, re.S)
    assert row is not None, uid
    cells = {}
    for name in ("started", "duration", "result"):
        cell = re.search(rf'<td[^>]*data-testid="call-{name}"[^>]*>(.*?)</td>', row.group(0), re.S)
        assert cell is not None, (uid, name)
        cells[name] = html.unescape(re.sub(r"<[^>]+>", "", cell.group(1))).strip()
    return cells


def test_times_are_on_the_clinics_clock_not_the_servers(
    server_in_new_york: None,
    vladivostok_clinic: None,
    registrar_web: Web,
    registrar_id: int,
    sessions: sessionmaker[Session],
    clinic: Callable[..., Any],
) -> None:
    patient = clinic("patient", last_name="Часовой", phone="+79090808820")
    recent = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    with transaction(sessions) as s:
        s.add(_call("evening", user_id=registrar_id, patient_id=patient, result="answered",
                    answered_at=STARTED + timedelta(seconds=10)))  # fmt: skip
        s.add(_call("missed1", direction="inbound", result="missed", started_at=recent, ended_at=recent))
    clinic_time = recent.astimezone(ZONE).strftime("%d.%m.%Y %H:%M:%S")

    assert _cells(registrar_web.text("/calls"), "evening")["started"] == "06.12.2026 22:07:00"
    assert _cells(registrar_web.text(f"/patients/{patient}"), "evening")["started"] == "06.12.2026 22:07:00"
    assert _cells(registrar_web.text("/calls/missed"), "missed1")["started"] == clinic_time


def test_results_are_named_for_the_direction_and_answered_calls_have_a_duration(
    registrar_web: Web, registrar_id: int, sessions: sessionmaker[Session]
) -> None:
    with transaction(sessions) as s:
        s.add_all(
            [
                _call("noanswer", user_id=registrar_id, result="missed", reason="Нет ответа"),
                _call("cancelled", user_id=registrar_id, result="cancelled", reason="Завершён регистратором"),
                # answered and put down within the second: 0:00 talked, not «—»
                _call("short", user_id=registrar_id, result="answered", answered_at=STARTED,
                      ended_at=STARTED + timedelta(milliseconds=400)),  # fmt: skip
                _call("incoming", direction="inbound", user_id=registrar_id, result="missed"),
            ]
        )
    page = registrar_web.text("/calls")
    noanswer = _cells(page, "noanswer")
    assert (noanswer["duration"], noanswer["result"]) == ("—", "Нет ответа")
    assert _cells(page, "cancelled")["result"] == "Отменён"
    assert (_cells(page, "short")["duration"], _cells(page, "short")["result"]) == ("0:00", "Отвечен")
    assert _cells(page, "incoming")["result"] == "Пропущен"


@pytest.mark.parametrize(
    ("direction", "result", "title"),
    [
        ("outbound", "missed", "Нет ответа"),
        ("inbound", "missed", "Пропущен"),
        ("outbound", "cancelled", "Отменён"),
        ("outbound", "answered", "Отвечен"),
        ("inbound", "busy", "Занято"),
    ],
)
def test_result_title(direction: str, result: str, title: str) -> None:
    assert result_title(direction, result) == title
