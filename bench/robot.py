"""Benchmark: the own voice robot's campaign on the real Asterisk.

    .venv/bin/python bench/robot.py [--appointments 500] [--phones 400] [--channels 10]

A campaign of next-day appointments (about 1.25 per phone) goes through the trunk to a bank
of patients: one baresip process holding an account per patient number (the trunk's far
end). 20 % of them never answer (their account rings until the robot gives up); the others
answer and press a key as soon as the menu starts (mixed: 1 confirms, 2 cancels, 7 is not in
the menu, three times, and counts as not answered). The robot runs inside ari_app (its own
event loop in this process), with its production endpoint (PJSIP/{number}@trunk) and
`--channels` channels; no retries, no SMS (one round).

Reported:
- completion time (the first call claimed → the last line free) against the bound
  calls × mean call length ÷ channels (every call's length as the robot holds its line:
  claimed → its channel gone, ringing and the last words included) — target ≤ 1.2;
- answers recorded: every pressed key is on its appointments and its attempt, every
  unanswered phone left untouched — target 100 %;
- phones called twice in the round (attempt rows and the dialer's own list) — target 0;
- the most lines the robot held at once (from those intervals) ≤ --channels.

Asterisk is the local chroot, started for the run on a temporary database (it must not be
running already: take /tmp/mis-pbx.lock), stopped at the end whatever happens; so are the
phones.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from sqlalchemy import select  # noqa: E402

from ari_app.app import Options, ThreadedApp  # noqa: E402
from ari_app.client import wait_connected  # noqa: E402
from ari_app.robot.service import RobotSetup  # noqa: E402
from ari_app.robot.setup import sounds_folders  # noqa: E402
from asterisk_conf import apply, runtime  # noqa: E402
from clinic.config import Config  # noqa: E402
from clinic.db import make_engine, make_session_factory, migrate, transaction  # noqa: E402
from clinic.models import Appointment, ClinicSettings, Employee, Patient, Service  # noqa: E402
from clinic.models.voice_robot import (  # noqa: E402
    CAMPAIGN_DONE,
    VoiceAttempt,
    VoiceCampaign,
    VoicePhone,
    VoiceRobotSettings,
)
from clinic.voice_robot import campaigns  # noqa: E402
from clinic.voice_robot.tts import Tts  # noqa: E402
from tests.sip_phone import BaresipPhone, PhoneSpec, make_tone_wav  # noqa: E402

BANK_SIP, BANK_CTRL, BANK_RTP = 5340, 4461, (24000, 24999)
NO_ANSWER = "-"
KEYS = ("1", "1", "1", "2", "7")  # what the answering patients press (mixed)
EXPECTED = {"1": "confirmed", "2": "cancelled", "7": "no_dtmf", NO_ANSWER: "no_answer"}


def number(i: int) -> str:
    return f"+7916{5000000 + i:07d}"


def setup(
    workdir: Path, appointments: int, phones: int, channels: int, seed: int
) -> tuple[Config, dict[str, str]]:
    os.environ.update(
        {
            "MIS_DATA_DIR": str(workdir),
            "DATABASE_URL": f"sqlite:///{workdir / 'bench.db'}",
            "MIS_PBX_MODE": "local",
            "MIS_CONTROL_URL": "http://127.0.0.1:0",
        }
    )
    for var in ("MIS_ASTERISK_CONF_DIR", "MIS_ARI_URL"):
        os.environ.pop(var, None)
    config = Config.from_env()
    migrate(config.database_url)
    sessions = make_session_factory(make_engine(config.database_url))
    rng = random.Random(seed)
    plan: dict[str, str] = {}
    visit_day = datetime.now().date() + timedelta(days=1)
    with transaction(sessions) as s:
        s.add(
            ClinicSettings(
                sip_domain="127.0.0.1",
                sip_port=5060,
                trunk_host="127.0.0.1",
                trunk_port=BANK_SIP,
                trunk_callerid="+74950000000",
                rtp_start=10000,
                rtp_end=14999,
            )
        )
        s.add(
            VoiceRobotSettings(
                trunk_channels=channels + 1,
                robot_channels=channels,
                retries=0,
                retry_minutes=5,
                ring_seconds=10,
                dtmf_seconds=5,
                hours_from="00:00",
                hours_to="23:59",
                sms_wait_minutes=60,
                send_sms=False,
                inbound_confirm=False,
                greeting="Здравствуйте! Это клиника.",
            )
        )
        doctors = [
            Employee(last_name=f"Врачев{k}", first_name="Олег", patronymic="Ильич", specialty="Терапевт")
            for k in range(10)
        ]
        service = Service(code="BENCH", name="Консультация")
        s.add_all([*doctors, service])
        s.flush()
        patients = []
        for i in range(phones):
            p = Patient(last_name=f"Пациентов{i}", first_name="Иван", phone=number(i))
            patients.append(p)
            plan[number(i)] = NO_ANSWER if rng.random() < 0.2 else rng.choice(KEYS)
        s.add_all(patients)
        s.flush()
        for n in range(appointments):
            p = patients[n % phones]
            start = datetime.combine(visit_day, datetime.min.time()) + timedelta(
                hours=8, minutes=5 * (n // phones * 40 + n % 120)
            )
            s.add(
                Appointment(
                    patient_id=p.id, doctor_id=doctors[n % 10].id, service_id=service.id, starts_at=start
                )
            )
    return config, plan


class Bank:
    """The patients: a baresip with an account per number; answering ones press their key
    once the robot's menu has started on their call."""

    def __init__(self, workdir: Path, plan: dict[str, str], channels: int) -> None:
        tone = make_tone_wav(workdir / "tone.wav", seconds=30)
        specs = [
            PhoneSpec(
                num,
                "unused",
                BANK_SIP,
                BANK_CTRL,
                *BANK_RTP,
                regint=0,
                answermode="manual" if key == NO_ANSWER else "auto",
                max_calls=channels * 2 + 4,
            )
            for num, key in plan.items()
        ]
        self.phone = BaresipPhone(workdir / "bank", specs[0], tone, specs[1:])
        self.plan = plan
        self.pending: dict[str, float] = {}  # aor → when established
        self.pressed: Counter[str] = Counter()
        self.sent: dict[str, float] = {}  # number → when its key was last pressed
        self.stop = threading.Event()

    def start(self) -> None:
        self.phone.start()
        threading.Thread(target=self._events, daemon=True).start()

    def _events(self) -> None:
        ctrl = self.phone.ctrl
        assert ctrl is not None
        cursor = 0
        while not self.stop.is_set():
            with ctrl.cond:
                ctrl.cond.wait_for(lambda c=cursor: len(ctrl.events) > c or self.stop.is_set(), 0.5)
                new, cursor = ctrl.events[cursor:], len(ctrl.events)
            for event in new:
                if event.get("type") == "CALL_ESTABLISHED":
                    self.pending[str(event.get("accountaor", ""))] = time.monotonic()

    def press_ready(self, in_menu: set[str]) -> None:
        """Press the planned key on every established call whose robot is in the menu. A key
        still unheard a second later is pressed again: baresip makes a newly ringing account
        its current one, and a key sent just then goes to that call instead (the bank's own
        race, not the robot's)."""
        now = time.monotonic()
        for aor in list(self.pending):
            num = aor.removeprefix("sip:").split("@")[0]
            if num not in in_menu:
                if num in self.sent:  # heard: the robot left the menu
                    self.pending.pop(aor, None)
                continue
            if now - self.sent.get(num, -10.0) < 1.0:
                continue
            key = self.plan.get(num, "1")
            self.phone.command("uafind", aor)
            for _ in range(3 if key == "7" and num not in self.sent else 1):
                self.phone.command("sndcode", key)
            self.sent[num] = now
            self.pressed[num] += 1

    def close(self) -> None:
        self.stop.set()
        self.phone.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--appointments", type=int, default=500)
    parser.add_argument("--phones", type=int, default=400)
    parser.add_argument("--channels", type=int, default=10)
    parser.add_argument("--seed", type=int, default=16)
    parser.add_argument("--timeout", type=float, default=3600)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bench-robot-"))
    config, plan = setup(workdir, args.appointments, args.phones, args.channels, args.seed)
    sessions = make_session_factory(make_engine(config.database_url))
    runtime.provision(config.pbx)
    assert apply.apply_from_db(config, sessions, None, reload=False).ok
    started = runtime.start(config.pbx, config.data_dir)
    print(f"[bench] {started.message}", flush=True)
    bank = Bank(workdir, plan, args.channels)
    app: ThreadedApp | None = None
    try:
        bank.start()
        folder, seen = sounds_folders(config)
        robot_setup = RobotSetup(sessions, Tts(folder, seen), number_endpoint="PJSIP/{number}@trunk")
        app = ThreadedApp(
            config,
            Options(
                control_url="http://127.0.0.1:0", events_host="127.0.0.1", events_port=0, robot=robot_setup
            ),
        )
        assert app.run(wait_connected(app.app.ari, 10)), "ari_app did not connect"
        robot = app.app.service.robot
        assert robot is not None
        with transaction(sessions) as s:
            campaign = campaigns.create(s, datetime.now().date() + timedelta(days=1), None, datetime.now(UTC))
            cid = campaign.id
        app.loop.call_soon_threadsafe(robot.wake)
        t0 = time.monotonic()
        while time.monotonic() - t0 < args.timeout:
            in_menu = {c.phone for c in list(robot.calls.values()) if c.phase.value == "menu"}
            bank.press_ready(in_menu)
            with sessions() as s:
                if s.get(VoiceCampaign, cid).state == CAMPAIGN_DONE:  # type: ignore[union-attr]
                    break
            time.sleep(0.02)  # the driver's poll of the robot's calls, not a synchronisation
        else:
            print("[bench] campaign did not finish in time", flush=True)
        return report(sessions, plan, robot.placed, list(robot.spans), args.channels, cid)
    finally:
        if app is not None:
            with contextlib.suppress(Exception):
                app.stop()
        bank.close()
        print(f"[bench] {runtime.stop(config.pbx, config.data_dir).message}", flush=True)


def report(
    sessions: Any,
    plan: dict[str, str],
    placed: list[tuple[str, int]],
    spans: list[tuple[float, float]],
    channels: int,
    cid: int,
) -> int:
    with sessions() as s:
        attempts = list(s.scalars(select(VoiceAttempt).order_by(VoiceAttempt.id)))
        phones = {p.id: p for p in s.scalars(select(VoicePhone).where(VoicePhone.campaign_id == cid))}
        appts = {a.id: a for a in s.scalars(select(Appointment))}
        items = {p.id: [i.appointment_id for i in p.items] for p in phones.values()}

    # a call holds its line from its claim until its channel is gone (the last words after
    # the answer included): the robot's own record of every call, not the attempt rows
    lengths = [end - start for start, end in spans]
    completion = max(e for _, e in spans) - min(s for s, _ in spans)
    mean = sum(lengths) / len(lengths)
    bound = len(lengths) * mean / channels
    events = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
    busy = peak = 0
    for _, step in events:
        busy += step
        peak = max(peak, busy)
    right = wrong = 0
    for attempt in attempts:
        phone = phones[attempt.phone_id]
        key = plan[phone.phone]
        ok = attempt.outcome == EXPECTED[key]
        for appointment_id in items[phone.id]:
            a = appts[appointment_id]
            if key == "1":
                ok &= a.confirmation_status == "confirmed"
            elif key == "2":
                ok &= a.confirmation_status == "cancelled" and a.status == "cancelled"
            else:
                ok &= a.confirmation_status == "" and a.status == "booked"
        right, wrong = right + ok, wrong + (not ok)
        if not ok:
            print(
                f"[bench] wrong: {phone.phone} pressed {key!r}, call {attempt.outcome!r} {attempt.digits!r}"
                f" {attempt.note!r}, appointments {[appts[i].confirmation_status for i in items[phone.id]]}"
            )
    per_round = Counter((a.phone_id, a.round) for a in attempts)
    twice = sum(1 for n in per_round.values() if n > 1) + sum(1 for n in Counter(placed).values() if n > 1)
    outcomes = Counter(a.outcome for a in attempts)
    print(
        f"[bench] appointments {len(appts)}, phones {len(phones)}, calls {len(attempts)},"
        f" outcomes {dict(outcomes)}"
    )
    print(f"[bench] mean call {mean:.1f} s; bound = {len(lengths)} × {mean:.1f} ÷ {channels} = {bound:.0f} s")
    print(f"[bench] completion {completion:.0f} s; ratio {completion / bound:.2f} (target ≤ 1.2)")
    print(
        f"[bench] answers recorded correctly {right}/{len(attempts)}"
        f" ({100 * right / max(1, len(attempts)):.1f} %)"
    )
    print(
        f"[bench] phones called twice in the round: {twice}; most channels at once: {peak} (limit {channels})"
    )
    ok = (
        completion / bound <= 1.2
        and wrong == 0
        and twice == 0
        and peak <= channels
        and len(attempts) == len(phones)
    )
    print("[bench] " + ("PASS" if ok else "FAIL"))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
