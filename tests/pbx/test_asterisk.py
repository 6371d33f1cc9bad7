"""Against the real Asterisk 22 in the chroot, with real baresip phones on loopback.

The tests share one Asterisk and run in file order: the apply tests add user 103 and then
try a broken render, so later tests see three endpoints.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from sip_phone import BaresipPhone, event_type
from sqlalchemy import select

from asterisk_conf import apply, runtime
from asterisk_conf.render import FILES, TEMPLATE_DIR
from clinic import ami
from clinic.models import REVISION_APPLIED, REVISION_FAILED, REVISION_REJECTED, ClinicSettings, ConfigRevision

from .pbxkit import Pbx, add_phone_user, wait_registered

pytestmark = pytest.mark.pbx


def _disk(pbx: Pbx) -> dict[str, bytes]:
    conf = pbx.config.pbx.conf_dir
    return {name: (conf / name).read_bytes() for name in FILES}


def _revision(pbx: Pbx, rid: int | None) -> ConfigRevision:
    assert rid is not None
    with pbx.sessions() as s:
        rev = s.get(ConfigRevision, rid)
        assert rev is not None
        return rev


def _endpoint_tags(pbx: Pbx, endpoints: list[str]) -> dict[str, str]:
    async def work(client: ami.AmiClient) -> dict[str, str]:
        out = {}
        for ep in endpoints:
            msgs = await client.action({"Action": "PJSIPShowEndpoint", "Endpoint": ep})
            out[ep] = next(m.get("SetVar", "") for m in msgs if m.get("Event") == "EndpointDetail")
        return out

    return ami.run(pbx.config.pbx, work)


def _copy_templates(dst: Path, edit: Callable[[str], str], name: str = "pjsip.conf.j2") -> Path:
    shutil.copytree(TEMPLATE_DIR, dst)
    path = dst / name
    path.write_text(edit(path.read_text()))
    return dst


def test_asterisk_is_22_and_ari_answers(pbx: Pbx) -> None:
    assert pbx.version.startswith("Asterisk 22."), pbx.version
    pbx_cfg = pbx.config.pbx
    info = httpx.get(f"{pbx_cfg.ari_url}/asterisk/info", auth=(pbx_cfg.ari_user, pbx_cfg.ari_password),
                     timeout=2, trust_env=False)
    assert info.status_code == 200
    assert info.json()["system"]["version"].startswith("22.")
    denied = httpx.get(f"{pbx_cfg.ari_url}/asterisk/info", auth=(pbx_cfg.ari_user, "wrong"), timeout=2,
                       trust_env=False)
    assert denied.status_code == 401
    print(f"\n[pbx] start took {pbx.start_seconds:.2f} s")


def test_start_again_is_idempotent_and_status_reports(pbx: Pbx) -> None:
    pid = runtime.running_pid(pbx.config.pbx, pbx.config.data_dir)
    assert pid is not None
    again = runtime.start(pbx.config.pbx, pbx.config.data_dir)
    assert again.pid == pid and "already running" in again.message
    st = runtime.status(pbx.config.pbx, pbx.config.data_dir)
    assert st.ok and st.pid == pid


def test_second_runtime_refuses_when_ports_are_taken(pbx: Pbx, tmp_path: Path) -> None:
    # Another data dir has no PID file, so it does not know this Asterisk: it must refuse on
    # the ports instead of starting a second one.
    with pytest.raises(runtime.PbxRuntimeError, match=r"tcp/8088.*already in use"):
        runtime.start(pbx.config.pbx, tmp_path)


def test_phones_register(pbx: Pbx, phones: dict[str, BaresipPhone]) -> None:
    contacts = wait_registered(pbx.config, {"reg101", "reg102"})
    assert ":5100" in contacts["reg101"]["Uri"]
    assert ":5110" in contacts["reg102"]["Uri"]
    reg = phones["101"].command("reginfo")
    assert reg["ok"] and "OK" in reg["data"]


def test_call_101_to_102_rings_and_is_answered(pbx: Pbx, phones: dict[str, BaresipPhone]) -> None:
    wait_registered(pbx.config, {"reg101", "reg102"})
    caller, callee = phones["101"], phones["102"]
    mark_caller, mark_callee = caller.ctrl.mark(), callee.ctrl.mark()  # type: ignore[union-attr]

    async def scenario(client: ami.AmiClient) -> list[dict[str, str]]:
        seen: list[dict[str, str]] = []
        changed = asyncio.Event()

        def on_event(ev: object) -> None:
            seen.append(dict(ev))  # type: ignore[call-overload]
            changed.set()

        client.on_event("*", on_event)

        async def wait_ami(pred: Callable[[dict[str, str]], bool], timeout: float = 10) -> dict[str, str]:
            deadline = time.monotonic() + timeout
            while True:
                for ev in seen:
                    if pred(ev):
                        return ev
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"AMI event not seen; got {[e.get('Event') for e in seen]}")
                changed.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(changed.wait(), left)

        started = time.monotonic()
        await asyncio.to_thread(caller.dial, "sip:102@127.0.0.1:5060")
        ringing = await wait_ami(lambda e: e.get("Event") == "Newstate"
                                 and e.get("Channel", "").startswith("PJSIP/reg102-")
                                 and e.get("ChannelStateDesc") == "Ringing")
        # baresip 1.0 with answermode=auto raises no CALL_INCOMING; the ringing is seen in
        # Asterisk (Newstate Ringing above), the answer on both phones
        incoming = await asyncio.to_thread(
            callee.wait_for_event, event_type("CALL_ESTABLISHED"), 10, mark_callee)
        dial_end = await wait_ami(lambda e: e.get("Event") == "DialEnd"
                                  and e.get("DestChannel", "").startswith("PJSIP/reg102-"))
        established = await asyncio.to_thread(
            caller.wait_for_event, event_type("CALL_ESTABLISHED"), 10, mark_caller)
        answered_in = time.monotonic() - started
        print(f"\n[pbx] 101 -> 102 answered in {answered_in * 1000:.0f} ms")

        print(f"[pbx] ringing={ringing}\n[pbx] incoming={incoming}\n[pbx] established={established}")
        assert ringing["ConnectedLineNum"] == "101"
        assert "101" in incoming["peeruri"]
        assert dial_end["DialStatus"] == "ANSWER"
        assert dial_end["Channel"].startswith("PJSIP/reg101-")

        await asyncio.to_thread(caller.hangup)
        await wait_ami(lambda e: e.get("Event") == "Hangup"
                       and e.get("Channel", "").startswith("PJSIP/reg102-"))
        await asyncio.to_thread(callee.wait_for_event, event_type("CALL_CLOSED"), 10, mark_callee)
        return seen

    ami.run(pbx.config.pbx, scenario, timeout=10)


def test_apply_good_change_adds_endpoint(pbx: Pbx, phones: dict[str, BaresipPhone]) -> None:
    add_phone_user(pbx.sessions, "103", "reg103", "Pw103-secret")
    started = time.monotonic()
    result = apply.apply_from_db(pbx.config, pbx.sessions, None)
    print(f"\n[pbx] apply (add 103) took {time.monotonic() - started:.2f} s")
    assert result.ok, result.message
    assert result.warning == ""  # nothing that waits for a restart
    rev = _revision(pbx, result.revision_id)
    assert rev.status == REVISION_APPLIED
    assert "pjsip.conf" in rev.message and "extensions.conf" in rev.message

    async def state(client: ami.AmiClient) -> tuple[list[str], list[str]]:
        return await client.endpoints(), await client.dialplan_extensions("clinic-internal")

    endpoints, extensions = ami.run(pbx.config.pbx, state)
    assert {"reg101", "reg102", "reg103"} <= set(endpoints)
    assert "103" in extensions
    # the phones were not disturbed by the reload
    wait_registered(pbx.config, {"reg101", "reg102"}, timeout=2)


def test_a_new_sip_port_is_applied_with_a_restart_warning(pbx: Pbx, phones: dict[str, BaresipPhone]) -> None:
    def set_port(port: int) -> None:
        with pbx.sessions() as s:
            s.scalars(select(ClinicSettings)).one().sip_port = port
            s.commit()

    set_port(5062)
    try:
        result = apply.apply_from_db(pbx.config, pbx.sessions, None)
        assert result.ok, result.message
        assert "после перезапуска Asterisk" in result.warning
        assert "перезапуска" in _revision(pbx, result.revision_id).message
        # as the warning says: the running Asterisk still takes the phones on 5060
        wait_registered(pbx.config, {"reg101", "reg102"}, timeout=2)
        assert "bind=127.0.0.1:5062" in (pbx.config.pbx.conf_dir / "pjsip.conf").read_text()
    finally:
        set_port(5060)
        assert apply.apply_from_db(pbx.config, pbx.sessions, None).ok


def test_apply_rejected_by_asterisk_rolls_back(
    pbx: Pbx, phones: dict[str, BaresipPhone], tmp_path: Path
) -> None:
    wait_registered(pbx.config, {"reg102"})
    before = _disk(pbx)
    eps = ["reg101", "reg102", "reg103"]
    tags_before = _endpoint_tags(pbx, eps)
    # Valid for our validator, rejected by Asterisk: it then keeps the old endpoint objects
    # ("Retaining existing configuration"), which only the config tag check notices.
    broken = _copy_templates(tmp_path / "tpl", lambda t: t.replace("dtmf_mode=rfc4733", "dtmf_mode=bogus"))
    result = apply.apply_from_db(pbx.config, pbx.sessions, None, template_dir=broken)

    assert not result.ok
    rev = _revision(pbx, result.revision_id)
    assert rev.status == REVISION_FAILED
    assert "dtmf_mode=bogus" in rev.files["pjsip.conf"]  # what was tried is kept for the admin
    assert "восстановлена" in rev.message and "reg102" in rev.message
    assert _disk(pbx) == before  # previous files restored byte for byte
    assert _endpoint_tags(pbx, eps) == tags_before
    wait_registered(pbx.config, {"reg102"}, timeout=2)

    # and the restored config still carries calls
    caller, callee = phones["101"], phones["102"]
    mark = caller.ctrl.mark()  # type: ignore[union-attr]
    caller.dial("sip:102@127.0.0.1:5060")
    caller.wait_for_event(event_type("CALL_ESTABLISHED"), 10, mark)
    caller.hangup()
    callee.wait_for_event(event_type("CALL_CLOSED"), 10)


def test_template_error_is_rejected_and_nothing_written(pbx: Pbx, tmp_path: Path) -> None:
    before = _disk(pbx)
    mtimes = {n: (pbx.config.pbx.conf_dir / n).stat().st_mtime_ns for n in FILES}
    broken = _copy_templates(tmp_path / "tpl", lambda t: t + "\n{{ no_such_variable }}\n", "rtp.conf.j2")
    result = apply.apply_from_db(pbx.config, pbx.sessions, None, template_dir=broken)
    assert not result.ok
    assert "rtp.conf.j2" in result.message and "no_such_variable" in result.message
    rev = _revision(pbx, result.revision_id)
    assert rev.status == REVISION_REJECTED and rev.files == {}
    assert _disk(pbx) == before
    assert {n: (pbx.config.pbx.conf_dir / n).stat().st_mtime_ns for n in FILES} == mtimes


def test_invalid_settings_are_rejected_by_validation(pbx: Pbx) -> None:
    before = _disk(pbx)
    with pbx.sessions() as s:
        settings = s.scalars(select(ClinicSettings)).one()
        old = (settings.rtp_start, settings.rtp_end)
        settings.rtp_start, settings.rtp_end = 5000, 6000  # swallows SIP 5060
        s.commit()
    try:
        result = apply.apply_from_db(pbx.config, pbx.sessions, None)
    finally:
        with pbx.sessions() as s:
            settings = s.scalars(select(ClinicSettings)).one()
            settings.rtp_start, settings.rtp_end = old
            s.commit()
    assert not result.ok
    assert "SIP 5060" in result.message
    assert _revision(pbx, result.revision_id).status == REVISION_REJECTED
    assert _disk(pbx) == before


def test_revisions_never_hold_secrets(pbx: Pbx) -> None:
    secrets = (pbx.config.pbx.ari_password, pbx.config.pbx.ami_secret)
    with pbx.sessions() as s:
        revs = s.scalars(select(ConfigRevision)).all()
    assert len(revs) >= 4
    for rev in revs:
        blob = rev.message + "".join(rev.files.values())
        assert not any(secret in blob for secret in secrets), rev.id
    applied = [r for r in revs if r.status == REVISION_APPLIED]
    assert "password=********" in applied[-1].files["ari.conf"]
    # while the files Asterisk reads do hold them (ARI answered with them above)
    assert pbx.config.pbx.ari_password in (pbx.config.pbx.conf_dir / "ari.conf").read_text()


def test_external_mode_leaves_runtime_alone(pbx: Pbx, tmp_path: Path) -> None:
    ext = replace(pbx.config.pbx, mode="external")
    for step in (runtime.provision(ext), runtime.start(ext, tmp_path), runtime.stop(ext, tmp_path)):
        assert step.ok and "managed externally" in step.message
    # the local Asterisk was not touched by the external-mode stop
    assert runtime.running_pid(pbx.config.pbx, pbx.config.data_dir) is not None
    assert runtime.status(ext, tmp_path).ok  # ARI of "the external one" answers


def test_external_mode_apply_reloads_over_ami(pbx: Pbx) -> None:
    # Production path against the same live Asterisk: no chroot knowledge, only conf_dir +
    # AMI + ARI. Owners of the existing files are kept (here: the chroot's asterisk user).
    ext_config = replace(pbx.config, pbx=replace(pbx.config.pbx, mode="external"))
    conf = pbx.config.pbx.conf_dir
    owner = (conf / "pjsip.conf").stat().st_uid
    add_phone_user(pbx.sessions, "104", "reg104", "Pw104-secret")
    result = apply.apply_from_db(ext_config, pbx.sessions, None)
    assert result.ok, result.message
    assert _revision(pbx, result.revision_id).status == REVISION_APPLIED
    assert "reg104" in ami.run(pbx.config.pbx, lambda c: c.endpoints())
    assert (conf / "pjsip.conf").stat().st_uid == owner == runtime.chroot_ids(pbx.config.pbx.chroot)[0]
