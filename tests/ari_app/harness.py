"""The real ari_app against the fake ARI (fake_ari.py), driven as the web side drives it.
A test module takes the fixture `r` (a Rig, reset) with
`from .harness import _module_rig, _r  # noqa: F401`.

This is the one place that knows how ari_app is built: `ThreadedApp(config, Options)` (the
app from its config, on a loop of its own) with the config's ARI URL pointed at the fake.
Everything else goes through what the web side uses: the loopback control API
(`X-Control-Token` + `X-Actor-Id`, ari_app/control.py) and its per-user event streams. The
call log is the test database (SQLite, or PostgreSQL with DATABASE_URL), seeded here with
two registrars with phones (101, 102), an administrator, and a trunk.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from eventskit import wait_until
from pbx.callkit import SseReader
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session, sessionmaker

from ari_app.app import Options, ThreadedApp
from clinic.config import Config
from clinic.db import make_session_factory
from clinic.models import ROLE_ADMIN, Base, Call, CallLeg, ClinicSettings, Patient, User
from clinic.security import hash_password, sip_md5_cred

from .fake_ari import FakeAri
from .fake_ari_presence import PresenceFakeAri

Stream = SseReader  # one user's call events from the control API, read in a thread

Msg = dict[str, Any]
PATIENT_NUMBER = "+79161234567"
CLINIC_NUMBER = "74950000000"  # the main number: every registrar's phone rings


class Rig:
    """ari_app + the fake ARI + the seeded database. `users` maps "101", "102", "admin" to ids."""

    def __init__(self, config: Config, sessions: sessionmaker[Session], *, ring_seconds: int = 30,
                 fake: type[FakeAri] = FakeAri) -> None:  # fmt: skip
        self.sessions = sessions
        self.users = _seed(sessions)
        self.fake = fake().start()
        self.fake.endpoints.update({"PJSIP/reg101": "online", "PJSIP/reg102": "online"})
        pbx = dataclasses.replace(
            config.pbx,
            ari_url=self.fake.url,
            ari_user=FakeAri.user,
            ari_password=FakeAri.password,
            control_url="http://127.0.0.1:0",
            control_token="control-token-for-tests",
        )
        self.config = dataclasses.replace(config, pbx=pbx)
        options = Options(control_url="http://127.0.0.1:0", events_host="127.0.0.1", events_port=0,
                          ring_seconds=ring_seconds, outside_seconds=ring_seconds)  # fmt: skip
        self.app = ThreadedApp(self.config, options)
        self.http = httpx.Client(base_url=self.app.url, headers={"X-Control-Token": pbx.control_token},
                                 timeout=10, trust_env=False)  # fmt: skip
        self._streams: list[Stream] = []
        self.wait_connected()

    def close(self) -> None:
        self._close_streams()
        self.http.close()
        self.app.stop()
        self.fake.stop()

    def _close_streams(self) -> None:
        for stream in self._streams:
            stream.close()
        self._streams.clear()

    def reset(self) -> None:
        """Between tests (one ari_app serves a module: starting one costs a second or two):
        every call ended through the control API, the fake's world emptied, its socket up."""
        self._close_streams()
        self.fake.accept()
        self.wait_connected(resyncs=0)
        admin = self.users["admin"]
        for call in self.calls(admin):
            self.post(admin, f"/calls/{call['uid']}/hangup")
        wait_until(lambda: not self.calls(admin), 10, "every call of the last test ended", step=0.01)

        self.fake.call(self.fake.clear)

    # -- the control API, as the web side calls it -----------------------------------------

    def post(self, actor: int, path: str, body: Msg | None = None) -> httpx.Response:
        return self.http.post(path, json=body or {}, headers={"X-Actor-Id": str(actor)})

    def get(self, actor: int, path: str) -> httpx.Response:
        return self.http.get(path, headers={"X-Actor-Id": str(actor)})

    def set_ring(self, ext: str, ring: str) -> None:
        """User `ext`'s ring choice, as the admin form saves it; call control and presence
        read it now."""
        with self.sessions() as s:
            s.execute(update(User).where(User.id == self.users[ext]).values(softphone_ring=ring))
            s.commit()
        self.app.run(self.app.app.service.refresh_directory())
        assert self.app.run(self.app.app.service.presence.reload_users())

    def presence(self) -> Msg:
        """Every colleague's phone state (GET /presence, as the administrator)."""
        resp = self.get(self.users["admin"], "/presence")
        assert resp.status_code == 200, resp.text
        return resp.json()  # type: ignore[no-any-return]

    def presence_states(self) -> dict[str, str]:
        """Extension → presence state ("idle", "busy" …)."""
        return {u["extension"]: u["state"] for u in self.presence()["users"]}

    def ok(self, actor: int, path: str, body: Msg | None = None) -> Msg:
        resp = self.post(actor, path, body)
        assert resp.status_code in (200, 201), (path, resp.status_code, resp.text)
        return resp.json()  # type: ignore[no-any-return]

    def calls(self, actor: int) -> list[Msg]:
        resp = self.get(actor, "/calls")
        assert resp.status_code == 200, resp.text
        return resp.json()["calls"]  # type: ignore[no-any-return]

    def health(self) -> Msg:
        return self.http.get("/health").json()  # type: ignore[no-any-return]

    def wait_connected(self, resyncs: int = 1) -> None:
        """ari_app's events socket is up and its resync after connecting has run."""
        wait_until(lambda: self.health()["ari_connected"] and self.health()["resyncs"] >= resyncs, 10,
                   "ari_app connected to the fake ARI and resynced", step=0.01)  # fmt: skip

    def stream(self, who: str) -> Stream:
        stream = Stream(self.http, self.users[who])
        self._streams.append(stream)
        return stream

    # -- call set-ups ---------------------------------------------------------------------

    def talking(self, who: str = "101", target: str = PATIENT_NUMBER) -> tuple[str, Stream]:
        """A click-to-call from `who` to `target`, answered at both ends: (uid, his stream)."""
        events = self.stream(who)
        uid = self.ok(self.users[who], "/calls", {"target": target})["uid"]
        self.fake.answer(self.fake.wait_channel("registrar", uid))
        self.fake.answer(self.fake.wait_channel("remote", uid))
        events.state(uid, "talking")
        return uid, events

    # -- the call log ---------------------------------------------------------------------

    def row(self, uid: str) -> Call:
        with self.sessions() as s:
            row = s.scalars(select(Call).where(Call.uid == uid)).one()
            s.expunge(row)
            return row

    def ended_row(self, uid: str, timeout: float = 10.0) -> Call:
        """The call's row once the log has it ended (the log follows the live call)."""

        def ended() -> Call | None:
            with self.sessions() as s:
                row = s.scalars(select(Call).where(Call.uid == uid, Call.state == "ended")).first()
                if row is not None:
                    s.expunge(row)
                return row

        return wait_until(ended, timeout, f"call {uid} ended in the log", step=0.01)  # type: ignore[no-any-return]

    def legs(self, uid: str) -> list[tuple[str, bool]]:
        """(role, answered) of the call's logged legs, in order."""
        with self.sessions() as s:
            legs = s.scalars(select(CallLeg).join(Call).where(Call.uid == uid).order_by(CallLeg.id)).all()
            return [(leg.role, leg.answered_at is not None) for leg in legs]

    def assert_clean(self) -> None:
        """Nothing left behind in Asterisk (the fake's model): no channel, no bridge."""
        self.fake.wait(lambda: not self.fake.channels and not self.fake.bridges, 5,
                       "no channels and no bridges left")  # fmt: skip


_HASH: list[str] = []  # one password hash for every seeded user: hashing is slow on purpose


def _seed(sessions: sessionmaker[Session]) -> dict[str, int]:
    if not _HASH:
        _HASH.append(hash_password("x" * 12))
    with sessions() as s:
        s.add(ClinicSettings(sip_domain="127.0.0.1", sip_port=5060, trunk_host="127.0.0.1", trunk_port=5120,
                             trunk_callerid="+74950000000"))  # fmt: skip
        for ext in ("101", "102"):
            sip = f"reg{ext}"
            s.add(User(login=f"user{ext}", password_hash=_HASH[0], full_name=f"Регистратор {ext}",
                       extension=ext, sip_id=sip, sip_md5_cred=sip_md5_cred(sip, "pw")))  # fmt: skip
        s.add(User(login="calladmin", password_hash=_HASH[0], full_name="Админ", role=ROLE_ADMIN))
        s.add(Patient(last_name="Звонков", first_name="Пётр", patronymic="Ильич", phone=PATIENT_NUMBER))
        s.commit()
        ids = {u.login: u.id for u in s.scalars(select(User)).all()}
    return {"101": ids["user101"], "102": ids["user102"], "admin": ids["calladmin"]}


@contextlib.contextmanager
def module_rig(
    engine: Engine, data_dir: Path, database_url: str, fake: type[FakeAri] = FakeAri
) -> Iterator[Rig]:
    """One ari_app and fake ARI (`fake`: one with device states for presence) for a test
    module, over freshly emptied and seeded tables."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MIS_DATA_DIR", str(data_dir))
        mp.setenv("DATABASE_URL", database_url)
        config = Config.from_env()
    with engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(table.delete())
    one = Rig(config, make_session_factory(engine), fake=fake)
    try:
        yield one
    finally:
        one.close()


@pytest.fixture(scope="module", name="module_rig")
def _module_rig(engine: Engine, data_dir: Path, database_url: str) -> Iterator[Rig]:
    with module_rig(engine, data_dir, database_url) as one:
        yield one


@pytest.fixture(scope="module", name="module_rig")
def _presence_module_rig(engine: Engine, data_dir: Path, database_url: str) -> Iterator[Rig]:
    """The rig over the fake ARI with device states (presence); a module takes it instead
    of `_module_rig` with `from .harness import _presence_module_rig, _r  # noqa: F401`."""
    with module_rig(engine, data_dir, database_url, PresenceFakeAri) as one:
        yield one


@pytest.fixture(name="r")
def _r(module_rig: Rig) -> Iterator[Rig]:
    """The module's rig, with nothing left of the previous test."""
    module_rig.reset()
    yield module_rig
