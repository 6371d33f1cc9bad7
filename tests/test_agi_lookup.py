"""FastAGI patient lookup without Asterisk: the protocol spoken by a fake Asterisk over TCP,
the time budget (fail-open), and a connection that closes before the headers end."""

from __future__ import annotations

import asyncio
import time
from datetime import date

import aiorun
from sqlalchemy.orm import Session, sessionmaker

from agi.server import FastAgiServer, PatientLookup, short_name
from clinic.db import transaction
from clinic.models import Patient


async def _agi_call(port: int, script: str, arg: str) -> list[str]:
    """Act as Asterisk: send the AGI headers, answer every command with 200, collect them."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    headers = f"agi_network: yes\nagi_network_script: {script}\nagi_callerid: {arg}\nagi_arg_1: {arg}\n\n"
    writer.write(headers.encode())
    commands = []
    while line := await reader.readline():
        commands.append(line.decode().strip())
        writer.write(b"200 result=1\n")
        await writer.drain()
    writer.close()
    return commands


def test_lookup_sets_name_and_id_by_last_ten_digits(sessions: sessionmaker[Session]) -> None:
    with transaction(sessions) as s:
        p = Patient(
            last_name="Иванов",
            first_name="Пётр",
            patronymic="Сергеевич",
            phone="+79161234567",
            birth_date=date(1980, 1, 2),
        )
        s.add(p)
        s.flush()
        pid = p.id

    async def go() -> tuple[list[str], list[str], list[str]]:
        lookup = PatientLookup(sessions, budget=2.0)
        server = FastAgiServer({"patient_lookup": lookup})
        port = await server.start("127.0.0.1", 0)
        try:
            known = await _agi_call(port, "patient_lookup", "89161234567")
            unknown = await _agi_call(port, "patient_lookup", "+79990001122")
            bad_route = await _agi_call(port, "nope", "89161234567")
            return known, unknown, bad_route
        finally:
            await server.stop()
            lookup.close()

    known, unknown, bad_route = aiorun.run(go)
    assert known == [
        'SET VARIABLE CALLERID(name) "Иванов П.С."',
        f"SET VARIABLE PATIENT_ID {pid}",
        "SET VARIABLE AGI_LOOKUP found",
    ]
    assert unknown == ["SET VARIABLE AGI_LOOKUP none"]
    assert bad_route == []
    assert short_name("Петрова Анна") == "Петрова А."


def test_lookup_over_budget_fails_open() -> None:
    class SlowSessions:
        def __call__(self) -> Session:
            time.sleep(1.0)  # a database that hangs: the lookup must not wait for it
            raise RuntimeError("unreachable")

    async def go() -> tuple[list[str], float]:
        lookup = PatientLookup(SlowSessions(), budget=0.1)  # type: ignore[arg-type]
        server = FastAgiServer({"patient_lookup": lookup})
        port = await server.start("127.0.0.1", 0)
        try:
            started = time.monotonic()
            cmds = await _agi_call(port, "patient_lookup", "89161234567")
            return cmds, time.monotonic() - started
        finally:
            await server.stop()
            lookup.close()

    cmds, _elapsed = aiorun.run(go)
    assert cmds == ["SET VARIABLE AGI_LOOKUP timeout"]


def test_connection_closed_before_headers_is_dropped() -> None:
    async def go() -> int:
        server = FastAgiServer({}, header_timeout=5)
        port = await server.start("127.0.0.1", 0)
        try:
            _r, w = await asyncio.open_connection("127.0.0.1", port)
            w.write(b"agi_network: yes\n")
            w.close()
            ok = await _agi_call(port, "x", "1")  # the server still answers the next one
            assert ok == []
            return server.handled
        finally:
            await server.stop()

    assert aiorun.run(go, timeout=10) == 0


async def _agi_raw(port: int, headers: dict[str, str]) -> None:
    """Act as Asterisk running a hangup handler: headers only, then wait for the hang-up."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(("".join(f"{k}: {v}\n" for k, v in headers.items()) + "\n").encode())
    await writer.drain()
    await reader.read()  # the server closes when it is done
    writer.close()


def test_call_log_route_writes_one_row_and_ignores_bad_arguments(sessions: sessionmaker[Session]) -> None:
    from sqlalchemy import select

    from agi.server import CallLog
    from clinic.models import Call

    def headers(uniqueid: str, kind: str, answered: str) -> dict[str, str]:
        args = [kind, "", "+79161234567", "ANSWER", answered, "40", uniqueid, "PJSIP/reg101-0000002a"]
        return {"agi_network": "yes", "agi_network_script": "call_log"} | {
            f"agi_arg_{i}": v for i, v in enumerate(args, start=1)
        }

    async def go() -> None:
        call_log = CallLog(sessions, budget=5.0)
        server = FastAgiServer({"call_log": call_log})
        port = await server.start("127.0.0.1", 0)
        try:
            await _agi_raw(port, headers("1764.1", "inbound", "25"))
            await _agi_raw(port, headers("1764.1", "inbound", "25"))  # reported twice: one row
            await _agi_raw(port, headers("1764.2", "sideways", "25"))  # unknown kind: nothing
            await _agi_raw(port, headers("1764.3", "outbound", "inf"))  # a duration that is not one
        finally:
            await server.stop()
            call_log.close()

    aiorun.run(go)
    with sessions() as s:
        rows = {c.uid: c for c in s.scalars(select(Call))}
    assert set(rows) == {"p-1764.1", "p-1764.3"}
    inbound = rows["p-1764.1"]
    assert (inbound.direction, inbound.result, inbound.number) == ("inbound", "answered", "+79161234567")
    assert rows["p-1764.3"].answered_at == rows["p-1764.3"].ended_at  # 0 s talked


async def _agi_call_with_key(port: int, script: str, arg: str, key: str | None) -> list[str]:
    """Act as Asterisk whose environment's MIS_AGI_KEY is `key` (None: a prober that
    does not know the protocol and answers nothing useful)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"agi_network: yes\nagi_network_script: {script}\nagi_arg_1: {arg}\n\n".encode())
    commands = []
    while line := await reader.readline():
        command = line.decode().strip()
        commands.append(command)
        if command == "GET VARIABLE ENV(MIS_AGI_KEY)":
            writer.write(b"200 result=0\n" if key is None else f"200 result=1 ({key})\n".encode())
        else:
            writer.write(b"200 result=1\n")
        await writer.drain()
    writer.close()
    return commands


def test_only_a_caller_with_the_dialplans_key_is_served(sessions: sessionmaker[Session]) -> None:
    """Issue 12 point 10: any local process could look patients up or write call-log rows."""
    with transaction(sessions) as s:
        s.add(Patient(last_name="Иванов", first_name="Пётр", patronymic="", phone="+79161234567"))

    async def go() -> tuple[list[str], list[str], list[str], int]:
        lookup = PatientLookup(sessions, budget=2.0)
        server = FastAgiServer({"patient_lookup": lookup}, secret="s3cret-key")
        port = await server.start("127.0.0.1", 0)
        try:
            ours = await _agi_call_with_key(port, "patient_lookup", "89161234567", "s3cret-key")
            wrong = await _agi_call_with_key(port, "patient_lookup", "89161234567", "guess")
            silent = await _agi_call_with_key(port, "patient_lookup", "89161234567", None)
            return ours, wrong, silent, server.refused
        finally:
            await server.stop()
            lookup.close()

    ours, wrong, silent, refused = aiorun.run(go)
    assert ours[0] == "GET VARIABLE ENV(MIS_AGI_KEY)"
    assert ours[1] == 'SET VARIABLE CALLERID(name) "Иванов П."'
    assert wrong == ["GET VARIABLE ENV(MIS_AGI_KEY)"]  # asked, refused, nothing revealed
    assert silent == ["GET VARIABLE ENV(MIS_AGI_KEY)"]
    assert refused == 2


def test_lookup_asks_the_robot_first_only_for_visits_to_confirm_with_the_setting_on(
    sessions: sessionmaker[Session],
) -> None:
    """ROBOT_ASK=1 sends the caller to our own robot before the registrars: only when its
    inbound confirmation is on and he has a booked, unanswered visit ahead."""
    from datetime import datetime, timedelta

    from clinic.models import Appointment, Employee
    from clinic.models.voice_robot import VoiceRobotSettings

    with transaction(sessions) as s:
        p = Patient(last_name="Иванов", first_name="Пётр", patronymic="", phone="+79161234567")
        doctor = Employee(last_name="Смирнов", first_name="Андрей", patronymic="", specialty="Терапевт")
        s.add_all([p, doctor])
        s.flush()
        ahead = datetime.now() + timedelta(days=2)  # in any zone: two days ahead
        visit = Appointment(patient_id=p.id, doctor_id=doctor.id, starts_at=ahead)
        s.add(visit)
        s.flush()
        visit_id = visit.id

    async def ask() -> list[str]:
        lookup = PatientLookup(sessions, budget=2.0)
        server = FastAgiServer({"patient_lookup": lookup})
        port = await server.start("127.0.0.1", 0)
        try:
            return await _agi_call(port, "patient_lookup", "89161234567")
        finally:
            await server.stop()
            lookup.close()

    off = aiorun.run(ask)  # the setting is off by default
    with transaction(sessions) as s:
        s.add(VoiceRobotSettings(inbound_confirm=True))
    on = aiorun.run(ask)
    with transaction(sessions) as s:
        row = s.get(Appointment, visit_id)
        assert row is not None
        row.confirmation_status = "confirmed"
    confirmed = aiorun.run(ask)
    assert "SET VARIABLE ROBOT_ASK 1" not in off
    assert on[-2:] == ["SET VARIABLE ROBOT_ASK 1", "SET VARIABLE AGI_LOOKUP found"]
    assert "SET VARIABLE ROBOT_ASK 1" not in confirmed and confirmed[-1] == "SET VARIABLE AGI_LOOKUP found"
