"""Session fixtures for the real-Asterisk tests: one chroot (built once, cached outside the
repo), one Asterisk per test session with the config rendered from a test database, two
baresip phones registered as extensions 101 and 102. A PBX that does not start is an error,
never a skip."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sip_phone import BaresipPhone, PhoneSpec, make_tone_wav

from agi.server import make_server as make_agi_server
from ari_app.app import Options, ThreadedApp
from ari_app.client import wait_connected
from asterisk_conf import apply, runtime
from clinic.config import Config
from clinic.db import make_engine, make_session_factory, migrate
from clinic.models import ClinicSettings

from .callkit import AmiEvents, Control, SseReader, wait_idle, wait_until
from .pbxkit import (
    CLINIC_NUMBER,
    PHONES,
    PSTN_NUMBER,
    PSTN_SIP_PORT,
    Pbx,
    add_phone_user,
    ensure_call_users,
    wait_registered,
)


@pytest.fixture(scope="session")
def pbx_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("pbx")


@pytest.fixture(scope="session")
def pbx_config(pbx_dir: Path) -> Config:
    # Own SQLite DB for the whole session: the shared `sessions` fixture empties tables per
    # test, which would pull the phones' users from under the running Asterisk. The
    # environment is only borrowed to build the Config, so other tests never see it.
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MIS_DATA_DIR", str(pbx_dir))
        mp.setenv("DATABASE_URL", f"sqlite:///{pbx_dir / 'pbx.db'}")
        mp.setenv("MIS_PBX_MODE", "local")
        for var in ("MIS_ASTERISK_CONF_DIR", "MIS_ARI_URL", "MIS_AMI_HOST", "MIS_AMI_PORT"):
            mp.delenv(var, raising=False)
        return Config.from_env()


@pytest.fixture(scope="session")
def pbx(pbx_config: Config) -> Iterator[Pbx]:
    config = pbx_config
    prov = runtime.provision(config.pbx)
    print(f"\n[pbx] {prov.message}")
    migrate(config.database_url)
    sessions = make_session_factory(make_engine(config.database_url))
    with sessions() as s:
        # the outbound trunk points at a baresip phone that plays the telephone network (PSTN)
        s.add(ClinicSettings(sip_domain="127.0.0.1", sip_port=5060, rtp_start=10000, rtp_end=10999,
                             trunk_host="127.0.0.1", trunk_port=PSTN_SIP_PORT, trunk_callerid=CLINIC_NUMBER))
        s.commit()
    for ext, (sip_id, password, *_rest) in PHONES.items():
        add_phone_user(sessions, ext, sip_id, password)
    written = apply.apply_from_db(config, sessions, None, reload=False)
    assert written.ok, written.message
    started = runtime.start(config.pbx, config.data_dir)  # raises (a test error) if Asterisk does not come up
    version = runtime.asterisk_version_in(config.pbx.chroot)
    print(f"[pbx] {version}; {started.message}")
    try:
        yield Pbx(config, sessions, started.seconds, version)
    finally:
        stopped = runtime.stop(config.pbx, config.data_dir)
        print(f"\n[pbx] {stopped.message}")


@pytest.fixture(scope="session")
def tone(pbx_dir: Path) -> Path:
    return make_tone_wav(pbx_dir / "tone8k.wav")


@pytest.fixture(scope="session")
def phones(pbx: Pbx, pbx_dir: Path, tone: Path) -> Iterator[dict[str, BaresipPhone]]:
    started: dict[str, BaresipPhone] = {}
    try:
        for ext, (sip_id, password, sip_port, ctrl_port, rtp_low) in PHONES.items():
            spec = PhoneSpec(sip_id, password, sip_port, ctrl_port, rtp_low, rtp_low + 99)
            started[ext] = BaresipPhone(pbx_dir / f"phone{ext}", spec, tone).start()
        yield started
    finally:
        for phone in started.values():
            phone.stop()


@pytest.fixture(scope="session")
def pstn(pbx: Pbx, pbx_dir: Path) -> Iterator[BaresipPhone]:
    """The patient's phone "in the telephone network": not registered, reached through the
    clinic's trunk (127.0.0.1:5120), calling the clinic's numbers through it. It plays an
    880 Hz tone, the registrars 440 Hz, so recordings tell the parties apart."""
    tone = make_tone_wav(pbx_dir / "tone880.wav", freq=880.0)
    spec = PhoneSpec(PSTN_NUMBER, "unused", PSTN_SIP_PORT, 4403, 21200, 21299, regint=0)
    phone = BaresipPhone(pbx_dir / "pstn", spec, tone).start()
    try:
        yield phone
    finally:
        phone.stop()


@pytest.fixture(scope="session")
def call_users(pbx: Pbx) -> dict[str, int]:
    """User ids: the registrars behind phones 101/102, an admin, a registrar without a phone."""
    return ensure_call_users(pbx)


@pytest.fixture(scope="session")
def ari_app(pbx: Pbx, call_users: dict[str, int]) -> Iterator[ThreadedApp]:
    """The real ari_app (events loop, control API and the browsers' events listener on free
    ports) on its own event loop. A test serving the web app adds its origin to
    `app.app.gateway.origins`."""
    options = Options(control_url="http://127.0.0.1:0", events_host="127.0.0.1", events_port=0,
                      ring_seconds=15, outside_seconds=15)
    app = ThreadedApp(pbx.config, options)
    try:
        assert app.run(wait_connected(app.app.ari, 10)), "ari_app did not connect to ARI"
        yield app
    finally:
        app.stop()


@pytest.fixture(scope="session")
def control(ari_app: ThreadedApp, pbx: Pbx) -> Iterator[Control]:
    client = Control(ari_app.url, pbx.config.pbx.control_token)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture(scope="session")
def ami_events(pbx: Pbx) -> Iterator[AmiEvents]:
    events = AmiEvents(pbx.config.pbx)
    try:
        yield events
    finally:
        events.close()


class AgiHandle:
    """The FastAGI server running on its own loop; `down()` takes it away for a while."""

    def __init__(self, server: Any, loop: asyncio.AbstractEventLoop, port: int) -> None:
        self.server, self.loop, self.port = server, loop, port

    def _run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)

    @contextlib.contextmanager
    def down(self) -> Iterator[None]:
        self._run(self.server.stop())
        try:
            yield
        finally:
            self._run(self.server.start("127.0.0.1", self.port))


@pytest.fixture(scope="session")
def agi_server(pbx: Pbx) -> Iterator[AgiHandle]:
    """The real FastAGI server on the dialplan's port, on its own event loop."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="agi", daemon=True)
    thread.start()

    async def make() -> Any:
        server, routes = make_agi_server(pbx.sessions, secret=pbx.config.pbx.agi_secret)
        await server.start("127.0.0.1", pbx.config.pbx.agi_port)
        return server, routes

    server, routes = asyncio.run_coroutine_threadsafe(make(), loop).result(10)
    try:
        yield AgiHandle(server, loop, pbx.config.pbx.agi_port)
    finally:
        asyncio.run_coroutine_threadsafe(server.stop(), loop).result(10)
        routes.close()
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=5)


@pytest.fixture()
def lines(
    pbx: Pbx,
    phones: dict[str, BaresipPhone],
    pstn: BaresipPhone,
    ari_app: ThreadedApp,
    control: Control,
    call_users: dict[str, int],
) -> Iterator[dict[str, Any]]:
    """Phones registered and idle before; every call of the test hung up after."""
    wait_registered(pbx.config, {"reg101", "reg102"})
    sse = SseReader(control, "all")
    try:
        yield {"sse": sse, "101": phones["101"], "102": phones["102"], "pstn": pstn}
    finally:
        sse.close()
        service = ari_app.app.service
        for uid in list(service.calls):
            control.post(call_users["admin"], f"/calls/{uid}/hangup")
        wait_until(lambda: not service.calls, 10, "all calls ended")
        wait_idle(phones["101"], phones["102"], pstn)
