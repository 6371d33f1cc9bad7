"""apply/runtime/AMI behaviour that needs no Asterisk: write-only applies, rejection, the
rollback when AMI cannot be reached, input loading, mirrors, ports and secret redaction."""

from __future__ import annotations

import logging
import socket
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from asterisk_conf import apply, runtime
from asterisk_conf.render import FILES, load_input
from clinic import ami
from clinic.config import Config
from clinic.models import (
    REVISION_APPLIED,
    REVISION_FAILED,
    REVISION_REJECTED,
    ClinicSettings,
    ConfigRevision,
    User,
)
from clinic.security import sip_md5_cred

Sessions = sessionmaker[Session]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture()
def ext_config(config: Config, tmp_path: Path) -> Config:
    """External mode, configs into a temp folder, AMI on a port nobody listens on."""
    pbx = replace(config.pbx, mode="external", conf_dir=tmp_path / "etc-asterisk", ami_port=_free_port())
    return replace(config, pbx=pbx, data_dir=tmp_path / "data")


def _add(sessions: sessionmaker[Session], ext: str, sip_id: str, **kw: object) -> None:
    with sessions() as s:
        s.add(User(login=f"u{ext}", password_hash="x", extension=ext, sip_id=sip_id,
                   sip_md5_cred=sip_md5_cred(sip_id, "pw-" + ext), **kw))
        s.commit()


def _revision(sessions: sessionmaker[Session], rid: int | None) -> ConfigRevision:
    with sessions() as s:
        rev = s.get(ConfigRevision, rid)
        assert rev is not None
        return rev


def test_write_only_apply_writes_every_file_privately(ext_config: Config, sessions: Sessions) -> None:
    _add(sessions, "101", "reg101")
    result = apply.apply_from_db(ext_config, sessions, None, reload=False)
    assert result.ok, result.message
    conf = ext_config.pbx.conf_dir
    assert sorted(p.name for p in conf.iterdir()) == sorted([*FILES, "keys"])  # no temp files left behind
    # the browser softphones' DTLS certificate, made once in the data dir, copied beside them
    assert sorted(p.name for p in (conf / "keys").iterdir()) == ["mis-dtls.crt", "mis-dtls.key"]
    assert (conf / "keys/mis-dtls.key").stat().st_mode & 0o777 == 0o640
    assert all((conf / n).stat().st_mode & 0o777 == 0o640 for n in FILES)
    assert "[reg101](clinic-endpoint)" in (conf / "pjsip.conf").read_text()
    rev = _revision(sessions, result.revision_id)
    assert rev.status == REVISION_APPLIED
    assert ext_config.pbx.ami_secret not in rev.files["manager.conf"]
    again = apply.apply_from_db(ext_config, sessions, None, reload=False)
    assert again.ok and "изменены файлы: нет" in again.message


def test_unreachable_ami_fails_and_restores_previous_files(
    ext_config: Config, sessions: sessionmaker[Session]
) -> None:
    _add(sessions, "101", "reg101")
    assert apply.apply_from_db(ext_config, sessions, None, reload=False).ok
    conf = ext_config.pbx.conf_dir
    before = {n: (conf / n).read_text() for n in FILES}
    _add(sessions, "102", "reg102")
    result = apply.apply_from_db(ext_config, sessions, None)
    assert not result.ok
    assert "AMI" in result.message and "восстановлен" in result.message
    assert {n: (conf / n).read_text() for n in FILES} == before
    rev = _revision(sessions, result.revision_id)
    assert rev.status == REVISION_FAILED
    assert "[reg102](clinic-endpoint)" in rev.files["pjsip.conf"]  # the attempt is on record


def test_invalid_user_is_rejected_and_nothing_is_written(ext_config: Config, sessions: Sessions) -> None:
    _add(sessions, "101", "bad sip id")
    result = apply.apply_from_db(ext_config, sessions, None)
    assert not result.ok and "SIP ID" in result.message
    assert _revision(sessions, result.revision_id).status == REVISION_REJECTED
    assert not ext_config.pbx.conf_dir.exists()


def test_load_input_takes_active_telephony_users_only(config: Config, sessions: Sessions) -> None:
    _add(sessions, "101", "reg101")
    _add(sessions, "102", "reg102", is_active=False)
    with sessions() as s:
        s.add(User(login="no-phone", password_hash="x"))
        s.add(ClinicSettings(sip_domain="192.0.2.10", sip_port=5070, rtp_start=12000, rtp_end=12999))
        s.commit()
    local = load_input(replace(config, pbx=replace(config.pbx, mode="local")), sessions)
    assert [u.sip_id for u in local.users] == ["reg101"]
    assert (local.sip_port, local.rtp_start, local.rtp_end) == (5070, 12000, 12999)
    assert local.loopback  # the local runtime always stays on 127.0.0.1
    external = load_input(replace(config, pbx=replace(config.pbx, mode="external")), sessions)
    assert not external.loopback


def test_make_applier_is_the_web_port(ext_config: Config, sessions: Sessions) -> None:
    applier = apply.make_applier(ext_config, sessions)
    result = applier(None)
    assert result.revision_id is not None and not result.ok  # AMI is unreachable here


def test_mask_secrets() -> None:
    masked = apply.mask_secrets("password=abc secret=abc x", ("abc", ""))
    assert masked == "password=******** secret=******** x"


def test_ami_login_secret_never_reaches_logs(caplog: pytest.LogCaptureFixture) -> None:
    client = ami.AmiClient("127.0.0.1", _free_port(), "mis", "top-secret-value", timeout=1)
    with pytest.raises(ami.AmiError, match="unreachable"):
        ami.run_client(client, lambda c: c.command("core show version"))
    plog = logging.getLogger("clinic.ami.panoramisk")
    with caplog.at_level(logging.WARNING, logger="clinic.ami.panoramisk"):
        plog.warning("Adding action to awaiting list: Secret: %s", "top-secret-value")
    assert "top-secret-value" not in caplog.text and "********" in caplog.text


# ---------------------------------------------------------------- runtime without a chroot


def test_host_mirror_reads_deb822_and_one_line(tmp_path: Path) -> None:
    d822 = tmp_path / "a"
    (d822 / "sources.list.d").mkdir(parents=True)
    (d822 / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm\n\n"
        "Types: deb\nURIs: http://mirror.example/debian-security\n")
    assert runtime.host_mirror(d822) == "http://mirror.example/debian"
    one = tmp_path / "b"
    (one / "sources.list.d").mkdir(parents=True)
    (one / "sources.list").write_text("# c\ndeb [arch=amd64] http://m2.example/debian bookworm main\n")
    assert runtime.host_mirror(one) == "http://m2.example/debian"
    empty = tmp_path / "c"
    (empty / "sources.list.d").mkdir(parents=True)
    with pytest.raises(runtime.PbxRuntimeError):
        runtime.host_mirror(empty)


def test_port_in_use_sees_a_bound_socket() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        assert runtime.port_in_use("tcp", port)
    assert not runtime.port_in_use("tcp", _free_port())


def test_runtime_without_chroot_says_so(config: Config, tmp_path: Path) -> None:
    pbx = replace(config.pbx, mode="local", chroot=tmp_path / "no-chroot")
    assert not runtime.status(pbx, tmp_path).ok
    assert "not provisioned" in runtime.status(pbx, tmp_path).message
    with pytest.raises(runtime.PbxRuntimeError, match="pbx provision"):
        runtime.start(pbx, tmp_path)
    assert runtime.stop(pbx, tmp_path).message == "Asterisk was not running"
