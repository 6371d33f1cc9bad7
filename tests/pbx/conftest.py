"""Session fixtures for the real-Asterisk tests: one chroot (built once, cached outside the
repo), one Asterisk per test session with the config rendered from a test database, two
baresip phones registered as extensions 101 and 102. A PBX that does not start is an error,
never a skip."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sip_phone import BaresipPhone, PhoneSpec, make_tone_wav

from asterisk_conf import apply, runtime
from clinic.config import Config
from clinic.db import make_engine, make_session_factory, migrate
from clinic.models import ClinicSettings

from .pbxkit import PHONES, Pbx, add_phone_user


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
        s.add(ClinicSettings(sip_domain="127.0.0.1", sip_port=5060, rtp_start=10000, rtp_end=10999))
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
