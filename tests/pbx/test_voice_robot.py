"""The own voice robot on the real Asterisk: it calls the patient through the trunk (a
baresip phone "in the telephone network" that records what it hears), reads his
appointments with the local TTS and takes his key: 1 confirms, 2 cancels, 0 hands him to the
registrars with the screen pop; silence, wrong keys and a hang-up are retried on a
compressed clock, then one SMS, then «Не дозвонились». TTS failing plays the generic prompt;
Asterisk restarted mid-call: the round is not called again, the campaign resumes. A caller
with upcoming appointments confirms them himself before the registrars' queue."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sip_phone import BaresipPhone, PhoneSpec, event_type
from sqlalchemy import delete, select

from ari_app.app import ThreadedApp
from ari_app.robot.service import RobotService
from asterisk_conf import apply, runtime
from clinic.models import Appointment, Call, Employee, Service, SmsMessage
from clinic.models.schedule import STATUS_BOOKED, STATUS_CANCELLED
from clinic.models.voice_robot import (
    OUT_BUSY,
    OUT_CANCELLED,
    OUT_CONFIRMED,
    OUT_HANGUP,
    OUT_INTERRUPTED,
    OUT_NO_DTMF,
    OUT_OPERATOR,
    OUT_STALE,
    PHONE_SMS,
    PHONE_UNREACHED,
    VoiceAttempt,
    VoiceCampaign,
    VoiceItem,
    VoicePhone,
    VoiceRobotSettings,
)
from clinic.voice_robot import campaigns
from clinic.voice_robot.tts import Espeak

from .callkit import Control, SseReader, wait_idle, wait_until
from .pbxkit import PSTN_NUMBER, Pbx, ensure_patient, wait_registered

pytestmark = pytest.mark.pbx


class Clock:
    """The robot's clock, moved by the test: noon in Moscow, two days from now."""

    def __init__(self) -> None:
        today = datetime.now(UTC).date()
        self.now = datetime.combine(today + timedelta(days=2), datetime.min.time(), UTC) + timedelta(hours=9)

    def __call__(self) -> datetime:
        return self.now

    @property
    def visit_day(self) -> date:
        return self.now.date() + timedelta(days=1)  # the robot says «завтра»


class RecordingPhone(BaresipPhone):
    """The patient's phone behind the trunk, saving what it hears (baresip's sndfile)."""

    def __init__(self, folder: Path, spec: PhoneSpec, tone: Path) -> None:
        super().__init__(folder, spec, tone)
        self.records = folder / "heard"

    def start(self) -> RecordingPhone:
        import sip_phone

        original = sip_phone.write_config

        def with_recording(folder: Path, spec: PhoneSpec, tone: Path, more: Any = ()) -> None:
            original(folder, spec, tone, more)
            self.records.mkdir(parents=True, exist_ok=True)
            with open(folder / "config", "a") as cfg:
                cfg.write(f"module              sndfile.so\nsnd_path            {self.records}\n")

        sip_phone.write_config = with_recording  # type: ignore[assignment]
        try:
            super().start()
        finally:
            sip_phone.write_config = original  # type: ignore[assignment]
        return self

    def heard(self) -> list[Path]:
        return sorted(self.records.glob("*dec*.wav"), key=lambda p: p.stat().st_mtime)


@pytest.fixture(scope="module")
def patient_phone(pbx: Pbx, pstn: BaresipPhone, pbx_dir: Path) -> Iterator[RecordingPhone]:
    """The shared PSTN phone steps aside for one that records; it is back afterwards."""
    pstn.stop()
    phone = RecordingPhone(pbx_dir / "robot-patient", pstn.spec, pstn.tone).start()
    try:
        yield phone
    finally:
        phone.stop()
        pstn.start()


@pytest.fixture(scope="module")
def robot(ari_app: ThreadedApp, pbx: Pbx) -> Iterator[tuple[RobotService, Clock]]:
    service = ari_app.app.service.robot
    assert service is not None
    clock = Clock()
    before = service.clock
    service.clock = clock
    with pbx.sessions() as s, s.begin():
        s.execute(delete(VoiceRobotSettings))
        s.add(
            VoiceRobotSettings(
                trunk_channels=4,
                robot_channels=2,
                retries=2,
                retry_minutes=5,
                ring_seconds=15,
                dtmf_seconds=3,
                hours_from="09:00",
                hours_to="20:00",
                sms_wait_minutes=30,
                send_sms=True,
                inbound_confirm=False,
                greeting="Здравствуйте! Это клиника.",
            )
        )
    try:
        yield service, clock
    finally:
        service.clock = before
        _clean(pbx)
        with pbx.sessions() as s, s.begin():
            s.execute(delete(VoiceRobotSettings))


def _clean(pbx: Pbx) -> None:
    """Leave the shared patient as other tests expect him: only his own appointment."""
    with pbx.sessions() as s, s.begin():
        ours = select(Appointment.id).where(
            Appointment.extra_info.like("%[robot-test]%") | Appointment.cancel_reason.like("%робот%")
        )
        ids = list(s.scalars(ours))
        s.execute(delete(VoiceAttempt))
        s.execute(delete(VoiceItem))
        s.execute(delete(VoicePhone))
        s.execute(delete(VoiceCampaign))
        s.execute(delete(SmsMessage).where(SmsMessage.appointment_id.in_(ids)))
        s.execute(Call.__table__.update().where(Call.appointment_id.in_(ids)).values(appointment_id=None))
        s.execute(delete(Appointment).where(Appointment.id.in_(ids)))


def _book(pbx: Pbx, day: date, times: list[str]) -> list[int]:
    patient = ensure_patient(pbx)
    with pbx.sessions() as s, s.begin():
        doctor = s.scalars(select(Employee).where(Employee.last_name == "Терапевтов")).first()
        assert doctor is not None
        service = s.scalars(select(Service).where(Service.code == "ROBOT1")).first()
        if service is None:
            service = Service(code="ROBOT1", name="Консультация терапевта")
            s.add(service)
            s.flush()
        ids = []
        for hhmm in times:
            hour, minute = (int(x) for x in hhmm.split(":"))
            appt = Appointment(
                patient_id=patient,
                doctor_id=doctor.id,
                service_id=service.id,
                starts_at=datetime.combine(day, datetime.min.time()).replace(hour=hour, minute=minute),
                extra_info="[robot-test]",
            )
            s.add(appt)
            s.flush()
            ids.append(appt.id)
    return ids


def _start(pbx: Pbx, ari_app: ThreadedApp, robot: tuple[RobotService, Clock]) -> int:
    service, clock = robot
    with pbx.sessions() as s, s.begin():
        cid = campaigns.create(s, clock.visit_day, None, clock()).id
    ari_app.loop.call_soon_threadsafe(service.wake)
    return cid


def _wake(ari_app: ThreadedApp, service: RobotService) -> None:
    ari_app.loop.call_soon_threadsafe(service.wake)


def _attempts(pbx: Pbx) -> list[VoiceAttempt]:
    with pbx.sessions() as s:
        rows = list(s.scalars(select(VoiceAttempt).order_by(VoiceAttempt.id)))
        for r in rows:
            s.expunge(r)
        return rows


def _attempt_in(pbx: Pbx, state: str, n: int, timeout: float = 30) -> VoiceAttempt:
    """Wait for the n-th attempt (1-based) to reach `state`."""

    def reached() -> VoiceAttempt | None:
        rows = _attempts(pbx)
        return rows[n - 1] if len(rows) >= n and rows[n - 1].state == state else None

    return wait_until(reached, timeout, f"attempt {n} {state}")


def _answered(phone: RecordingPhone, pbx: Pbx, n: int, mark: int) -> VoiceAttempt:
    phone.wait_for_event(event_type("CALL_ESTABLISHED"), 30, mark)
    return _attempt_in(pbx, "talking", n)


def _called_and_answered(
    pbx: Pbx, ari_app: ThreadedApp, robot: tuple[RobotService, Clock], phone: RecordingPhone, n: int = 1
) -> int:
    """Round n of the call: the campaign started (n=1) or the robot woken for the retry, the
    patient's phone answered and the attempt talking; the phone's event mark from before."""
    mark = phone.ctrl.mark()  # type: ignore[union-attr]
    if n == 1:
        _start(pbx, ari_app, robot)
    else:
        _wake(ari_app, robot[0])
    _answered(phone, pbx, n, mark)
    return mark


def _inbound_at_the_menu(phone: RecordingPhone, service: RobotService) -> int:
    """The patient calls the clinic's number, the robot answers and reads the menu; the mark."""
    mark = phone.ctrl.mark()  # type: ignore[union-attr]
    phone.dial("sip:+74950000000@127.0.0.1:5060")
    phone.wait_for_event(event_type("CALL_ESTABLISHED"), 20, mark)  # the robot answers
    wait_until(lambda: any(c.phase.value == "menu" for c in list(service.calls.values())), 20, "menu")
    return mark


def _inbound_confirm(pbx: Pbx, on: bool) -> None:
    with pbx.sessions() as s, s.begin():
        s.scalars(select(VoiceRobotSettings)).one().inbound_confirm = on


def _appointments(pbx: Pbx, ids: list[int]) -> list[Appointment]:
    with pbx.sessions() as s:
        rows = [s.get(Appointment, i) for i in ids]
        for r in rows:
            s.expunge(r)
        return rows  # type: ignore[return-value]


def _board(pbx: Pbx, day: date, appointment_id: int) -> str:
    """The appointment's block on the scheduler's day board, as a registrar sees it."""
    from web.support import Web

    from webhooks.app import create_app

    with pbx.sessions() as s:
        appt = s.get(Appointment, appointment_id)
        assert appt is not None
        doctor_id = appt.doctor_id
    web = Web(create_app(pbx.config, session_factory=pbx.sessions).test_client())
    assert web.login("user101", "x" * 12).status_code == 302
    page = web.text(f"/schedule?date={day.isoformat()}&doctor={doctor_id}")
    start = page.index(f'id="appointment-{appointment_id}"')
    return page[page.rindex("<article", 0, start) : page.index("</article>", start)]


def _rms(path: Path) -> float:
    done = subprocess.run(["sox", str(path), "-n", "stat"], capture_output=True, text=True, check=True)
    line = next(x for x in done.stderr.splitlines() if x.startswith("RMS     amplitude"))
    return float(line.split(":")[1])


@pytest.fixture()
def clean(pbx: Pbx, ari_app: ThreadedApp, patient_phone: RecordingPhone) -> Iterator[None]:
    _clean(pbx)
    yield
    service = ari_app.app.service
    for uid in list(service.calls):
        ari_app.run(service.core.end(service.calls[uid], "ended", "тест окончен"))
    wait_until(
        lambda: not service.calls and service.robot is not None and not service.robot.calls,
        20,
        "robot and call control idle",
    )
    wait_idle(patient_phone, timeout=15)
    _clean(pbx)


def test_pressing_1_confirms_every_visit_read_and_the_patient_hears_speech(
    pbx: Pbx,
    ari_app: ThreadedApp,
    robot: tuple[RobotService, Clock],
    patient_phone: RecordingPhone,
    clean: None,
) -> None:
    ids = _book(pbx, robot[1].visit_day, ["10:30", "11:00"])
    mark = _called_and_answered(pbx, ari_app, robot, patient_phone)
    heard_before = set(patient_phone.heard())
    patient_phone.command("sndcode", "1")
    done = _attempt_in(pbx, "done", 1)
    assert done.outcome == OUT_CONFIRMED and done.digits == "1" and done.prompt == "tts"
    patient_phone.wait_for_event(event_type("CALL_CLOSED"), 30, mark)  # thanked, then hung up
    for appt in _appointments(pbx, ids):
        assert (appt.status, appt.confirmation_status, appt.confirmation_source) == (
            STATUS_BOOKED,
            "confirmed",
            "voice_robot",
        )
        assert appt.extra_info.splitlines()[0] == "Запись подтверждена"
        assert "conf-confirmed" in _board(pbx, robot[1].visit_day, appt.id)  # on the scheduler
    # what the far phone recorded is speech, not silence (sox)
    new = [p for p in patient_phone.heard() if p not in heard_before] or patient_phone.heard()
    assert new and _rms(new[-1]) > 0.01, new
    assert robot[0].placed.count((PSTN_NUMBER, 1)) >= 1


def test_pressing_2_cancels_as_staff_do(
    pbx: Pbx,
    ari_app: ThreadedApp,
    robot: tuple[RobotService, Clock],
    patient_phone: RecordingPhone,
    clean: None,
) -> None:
    ids = _book(pbx, robot[1].visit_day, ["12:00"])
    mark = _called_and_answered(pbx, ari_app, robot, patient_phone)
    patient_phone.command("sndcode", "2")
    assert _attempt_in(pbx, "done", 1).outcome == OUT_CANCELLED
    (appt,) = _appointments(pbx, ids)
    assert appt.status == STATUS_CANCELLED and appt.cancel_reason == "Отменено пациентом (голосовой робот)"
    assert appt.extra_info.startswith("Запись отменена")
    assert "status-cancelled" in _board(pbx, robot[1].visit_day, appt.id)  # on the scheduler
    patient_phone.wait_for_event(event_type("CALL_CLOSED"), 30, mark)


def test_an_appointment_cancelled_during_the_call_ignores_the_answer(
    pbx: Pbx,
    ari_app: ThreadedApp,
    robot: tuple[RobotService, Clock],
    patient_phone: RecordingPhone,
    clean: None,
) -> None:
    ids = _book(pbx, robot[1].visit_day, ["13:00"])
    _called_and_answered(pbx, ari_app, robot, patient_phone)
    with pbx.sessions() as s, s.begin():  # staff cancel it while the robot speaks
        appt = s.get(Appointment, ids[0])
        assert appt is not None
        appt.status, appt.cancel_reason = STATUS_CANCELLED, "Отменено регистратором [robot-test]"
    patient_phone.command("sndcode", "1")
    assert _attempt_in(pbx, "done", 1).outcome == OUT_STALE
    (appt,) = _appointments(pbx, ids)
    assert appt.status == STATUS_CANCELLED and appt.confirmation_status == ""


def test_pressing_0_rings_the_registrars_with_the_patients_card(
    pbx: Pbx,
    ari_app: ThreadedApp,
    robot: tuple[RobotService, Clock],
    patient_phone: RecordingPhone,
    phones: dict[str, BaresipPhone],
    control: Control,
    call_users: dict[str, int],
    clean: None,
) -> None:
    wait_registered(pbx.config, {"reg101", "reg102"})
    _book(pbx, robot[1].visit_day, ["14:00"])
    sse = SseReader(control, call_users["101"])
    everyone = SseReader(control, "all")  # 101 or 102 answers first: the talking event is on either
    try:
        _called_and_answered(pbx, ari_app, robot, patient_phone)
        patient_phone.command("sndcode", "0")
        pop = sse.wait_for(lambda k, d: k == "incoming", 20)
        assert pop["number"] == PSTN_NUMBER and pop["patient"]["name"] == "Звонков Пётр Ильич"
        talking = everyone.wait_for(lambda k, d: k == "call" and d["state"] == "talking", 20)
        assert talking["direction"] == "inbound"
        assert _attempt_in(pbx, "done", 1).outcome == OUT_OPERATOR
    finally:
        sse.close()
        everyone.close()


def test_silence_wrong_keys_and_hang_up_are_retried_then_one_sms_then_the_unreached_list(
    pbx: Pbx,
    ari_app: ThreadedApp,
    robot: tuple[RobotService, Clock],
    patient_phone: RecordingPhone,
    clean: None,
) -> None:
    service, clock = robot
    start = clock.now
    ids = _book(pbx, clock.visit_day, ["15:00"])
    try:
        # round 1: no key at all (a voicemail)
        _called_and_answered(pbx, ari_app, robot, patient_phone)
        assert _attempt_in(pbx, "done", 1, 60).outcome == OUT_NO_DTMF
        clock.now += timedelta(minutes=4)
        _wake(ari_app, service)
        assert len(_attempts(pbx)) == 1  # not before the retry is due (checked again below)
        clock.now += timedelta(minutes=1)
        _called_and_answered(pbx, ari_app, robot, patient_phone, 2)  # round 2: keys that are not in the menu
        for _ in range(3):
            patient_phone.command("sndcode", "7")
        assert _attempt_in(pbx, "done", 2, 60).outcome == OUT_NO_DTMF
        clock.now += timedelta(minutes=5)
        # round 3: hangs up in the middle of the prompt
        _called_and_answered(pbx, ari_app, robot, patient_phone, 3)
        patient_phone.hangup()
        rounds = _attempts(pbx)
        assert _attempt_in(pbx, "done", 3).outcome == OUT_HANGUP
        assert [a.round for a in _attempts(pbx)] == [1, 2, 3] and len(rounds) == 3
        with pbx.sessions() as s:
            phone = s.scalars(select(VoicePhone)).one()
            assert phone.state == PHONE_SMS
            sms = s.scalars(select(SmsMessage).where(SmsMessage.appointment_id == ids[0])).all()
            assert len(sms) == 1 and sms[0].source == "voice_robot"
        clock.now += timedelta(minutes=30)
        _wake(ari_app, service)
        wait_until(lambda: _phone_state(pbx) == PHONE_UNREACHED, 10, "«Не дозвонились»")
        assert len(_attempts(pbx)) == 3  # no fourth call
        (appt,) = _appointments(pbx, ids)
        assert appt.status == STATUS_BOOKED  # never cancelled because nobody answered
    finally:
        clock.now = start


def _phone_state(pbx: Pbx) -> str:
    with pbx.sessions() as s:
        return s.scalars(select(VoicePhone.state)).one()


def test_tts_failing_plays_the_generic_prompt(
    pbx: Pbx,
    ari_app: ThreadedApp,
    robot: tuple[RobotService, Clock],
    patient_phone: RecordingPhone,
    clean: None,
) -> None:
    service, _clock = robot
    engines = service.tts.engines
    service.tts.engines = [Espeak(binary="/nonexistent/espeak-ng")]
    try:
        ids = _book(pbx, robot[1].visit_day, ["16:40"])  # a new text: not in the cache
        _called_and_answered(pbx, ari_app, robot, patient_phone)
        patient_phone.command("sndcode", "1")
        done = _attempt_in(pbx, "done", 1)
        assert (done.outcome, done.prompt) == (OUT_CONFIRMED, "generic")
        (appt,) = _appointments(pbx, ids)
        assert appt.confirmation_status == "confirmed"
    finally:
        service.tts.engines = engines


def test_inbound_caller_confirms_before_the_queue(
    pbx: Pbx,
    ari_app: ThreadedApp,
    robot: tuple[RobotService, Clock],
    patient_phone: RecordingPhone,
    agi_server: Any,
    clean: None,
) -> None:
    ids = _book(pbx, robot[1].visit_day, ["17:20"])
    _inbound_confirm(pbx, True)
    try:
        mark = _inbound_at_the_menu(patient_phone, robot[0])
        patient_phone.command("sndcode", "1")
        wait_until(lambda: _appointments(pbx, ids)[0].confirmation_status == "confirmed", 20, "confirmed")
        (appt,) = _appointments(pbx, ids)
        assert appt.confirmation_source == "voice_inbound" and appt.status == STATUS_BOOKED
        patient_phone.wait_for_event(event_type("CALL_CLOSED"), 30, mark)
    finally:
        _inbound_confirm(pbx, False)


def test_asterisk_restart_mid_call_does_not_call_the_round_again(
    pbx: Pbx,
    ari_app: ThreadedApp,
    robot: tuple[RobotService, Clock],
    patient_phone: RecordingPhone,
    phones: dict[str, BaresipPhone],
    clean: None,
) -> None:
    clock = robot[1]
    start = clock.now
    ids = _book(pbx, clock.visit_day, ["18:00"])
    app = ari_app.app
    try:
        _called_and_answered(pbx, ari_app, robot, patient_phone)
        pid = runtime.running_pid(pbx.config.pbx, pbx.config.data_dir)
        assert pid is not None
        os.kill(pid, signal.SIGKILL)  # a crash: no events, no hang-ups
        wait_until(lambda: not app.ari.connected.is_set(), 10, "events socket dropped")
        wait_until(lambda: runtime.running_pid(pbx.config.pbx, pbx.config.data_dir) is None, 10, "gone")
        patient_phone.hangup()
        assert apply.apply_from_db(pbx.config, pbx.sessions, None, reload=False).ok
        assert runtime.start(pbx.config.pbx, pbx.config.data_dir).ok
        wait_until(lambda: app.ari.connected.is_set(), 30, "reconnected")
        assert _attempt_in(pbx, "done", 1).outcome == OUT_INTERRUPTED
        assert len(_attempts(pbx)) == 1  # the round is not called again
        clock.now += timedelta(minutes=5)
        _called_and_answered(pbx, ari_app, robot, patient_phone, 2)  # the campaign resumes: round 2
        patient_phone.command("sndcode", "1")
        assert _attempt_in(pbx, "done", 2).outcome == OUT_CONFIRMED
        assert [a.round for a in _attempts(pbx)] == [1, 2]
        assert _appointments(pbx, ids)[0].confirmation_status == "confirmed"
    finally:
        clock.now = start
        for phone in phones.values():
            phone.reregister()
        wait_registered(pbx.config, {"reg101", "reg102"})


def test_inbound_caller_pressing_0_goes_to_the_registrars(
    pbx: Pbx,
    ari_app: ThreadedApp,
    robot: tuple[RobotService, Clock],
    patient_phone: RecordingPhone,
    phones: dict[str, BaresipPhone],
    control: Control,
    call_users: dict[str, int],
    agi_server: Any,
    clean: None,
) -> None:
    wait_registered(pbx.config, {"reg101", "reg102"})
    ids = _book(pbx, robot[1].visit_day, ["17:40"])
    _inbound_confirm(pbx, True)
    sse = SseReader(control, call_users["101"])
    everyone = SseReader(control, "all")  # 101 or 102 answers first: the talking event is on either
    try:
        _inbound_at_the_menu(patient_phone, robot[0])
        patient_phone.command("sndcode", "0")
        pop = sse.wait_for(lambda k, d: k == "incoming", 20)
        assert pop["number"] == PSTN_NUMBER and pop["patient"]["name"] == "Звонков Пётр Ильич"
        everyone.wait_for(lambda k, d: k == "call" and d["state"] == "talking", 20)
        assert _appointments(pbx, ids)[0].confirmation_status == ""  # nothing answered by the robot
    finally:
        sse.close()
        everyone.close()
        _inbound_confirm(pbx, False)


def test_a_busy_patient_is_called_again_after_the_pause(
    pbx: Pbx,
    ari_app: ThreadedApp,
    robot: tuple[RobotService, Clock],
    patient_phone: RecordingPhone,
    clean: None,
) -> None:
    clock = robot[1]
    start = clock.now
    ids = _book(pbx, clock.visit_day, ["19:00"])
    patient_phone.command("answermode", "manual")
    try:
        mark = patient_phone.ctrl.mark()  # type: ignore[union-attr]
        _start(pbx, ari_app, robot)
        patient_phone.wait_for_event(event_type("CALL_INCOMING"), 30, mark)
        patient_phone.hangup()  # rejected while ringing: busy
        assert _attempt_in(pbx, "done", 1).outcome == OUT_BUSY
        with pbx.sessions() as s:
            phone = s.scalars(select(VoicePhone)).one()
            assert phone.state == "waiting" and phone.next_at is not None
        patient_phone.command("answermode", "auto")
        clock.now += timedelta(minutes=5)
        _called_and_answered(pbx, ari_app, robot, patient_phone, 2)
        patient_phone.command("sndcode", "1")
        assert _attempt_in(pbx, "done", 2).outcome == OUT_CONFIRMED
        assert _appointments(pbx, ids)[0].confirmation_status == "confirmed"
    finally:
        patient_phone.command("answermode", "auto")
        clock.now = start
