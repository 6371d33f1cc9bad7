"""The softphone's Asterisk side without Asterisk: the WebRTC endpoint per user beside his
SIP endpoint, the dialplan ringing the phone his form names, the validator, the DTLS
certificate made once (clinic/softphone.py, asterisk_conf/render.py)."""

from __future__ import annotations

import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from asterisk_conf.render import PbxInput, PhoneUser, RenderError, render
from asterisk_conf.validate import parse, resolved, validate
from clinic.security import sip_md5_cred
from clinic.softphone import (
    RING_BOTH,
    RING_SIP,
    RING_WEB,
    clean_choice,
    clean_device,
    dial_targets,
    ensure_dtls_cert,
    sip_id_problem,
    web_endpoint,
    web_password,
)

CERT, KEY = "/etc/asterisk/keys/mis-dtls.crt", "/etc/asterisk/keys/mis-dtls.key"


def _user(ext: str, ring: str = RING_SIP) -> PhoneUser:
    sip_id = f"reg{ext}"
    web = sip_md5_cred(web_endpoint(sip_id), web_password("k" * 32, sip_id))
    return PhoneUser(ext, sip_id, sip_md5_cred(sip_id, f"pw{ext}x"), f"Регистратор {ext}", ring, web)


BASE = PbxInput(
    sip_domain="127.0.0.1", sip_port=5060, rtp_start=10000, rtp_end=10999, loopback=True,
    http_port=8088, ari_user="mis", ari_password="ari-secret-1", ami_secret="ami-secret-1",
    users=(_user("101", RING_WEB), _user("102", RING_SIP), _user("103", RING_BOTH)),
    dtls_cert_file=CERT, dtls_key_file=KEY,
)


def _sections(text: str, type_: str) -> dict[str, dict[str, str]]:
    secs = parse(text)
    templates = {s.name: s for s in secs if s.is_template}
    return {s.name: dict(resolved(s, templates).options) for s in secs
            if not s.is_template and resolved(s, templates).get("type") == type_}


def test_every_user_gets_a_webrtc_endpoint_beside_his_sip_endpoint() -> None:
    files = render(BASE)
    assert validate(files) == []
    pjsip = files["pjsip.conf"]
    endpoints = _sections(pjsip, "endpoint")
    assert set(endpoints) == {"reg101", "reg102", "reg103", "reg101-web", "reg102-web", "reg103-web"}
    assert set(_sections(pjsip, "aor")) == set(endpoints)
    web = endpoints["reg101-web"]
    for key, value in {
        "transport": "transport-ws", "webrtc": "yes", "dtls_cert_file": CERT, "dtls_private_key": KEY,
        "allow": "opus,ulaw,alaw", "dtmf_mode": "rfc4733", "context": "clinic-internal",
        "auth": "reg101-web-auth", "aors": "reg101-web", "media_address": "127.0.0.1",
    }.items():
        assert web[key] == value, key
    assert web["callerid"] == '"Регистратор 101" <101>'  # the same extension as his desk phone
    auth = _sections(pjsip, "auth")["reg101-web-auth"]
    assert auth["username"] == "reg101-web"
    assert auth["md5_cred"] == sip_md5_cred("reg101-web", web_password("k" * 32, "reg101"))
    assert _sections(pjsip, "transport")["transport-ws"]["protocol"] == "ws"
    assert endpoints["reg101"]["transport"] == "transport-udp"  # the SIP phone is untouched


def test_the_dialplan_rings_the_phone_the_user_chose() -> None:
    dialplan = render(BASE)["extensions.conf"]
    assert "exten => 101,hint,PJSIP/reg101-web\n" in dialplan
    assert "Dial(PJSIP/reg101-web,30)" in dialplan
    assert "Dial(PJSIP/reg102,30)" in dialplan
    assert "Dial(PJSIP/reg103&PJSIP/reg103-web,30)" in dialplan
    # an inbound call without the ARI app rings every registrar's chosen phones
    assert "Dial(PJSIP/reg101-web&PJSIP/reg102&PJSIP/reg103&PJSIP/reg103-web,30)" in dialplan


def test_without_a_certificate_no_webrtc_endpoint_and_the_sip_phone_rings() -> None:
    files = render(replace(BASE, dtls_cert_file="", dtls_key_file=""))
    assert validate(files) == []
    assert "transport-ws" not in files["pjsip.conf"]
    assert "-web" not in files["pjsip.conf"]
    assert "Dial(PJSIP/reg101,30)" in files["extensions.conf"]


@pytest.mark.parametrize("sip_id", ["reg101-web", "x-web"])
def test_a_sip_id_named_like_a_softphone_is_refused(sip_id: str) -> None:
    user = replace(_user("104"), sip_id=sip_id)
    with pytest.raises(RenderError, match="Недопустимый SIP ID"):
        render(replace(BASE, users=(user,)))
    assert sip_id_problem(sip_id) is not None
    assert sip_id_problem("reg101") is None


def test_bad_ring_choice_digest_or_certificate_path_is_refused() -> None:
    with pytest.raises(RenderError, match="неизвестный выбор телефона"):
        render(replace(BASE, users=(replace(_user("104"), ring="desk"),)))
    with pytest.raises(RenderError, match="MD5-хеша пароля софтфона"):
        render(replace(BASE, users=(replace(_user("104"), web_md5_cred="zz"),)))
    with pytest.raises(RenderError, match="сертификату DTLS"):
        render(replace(BASE, dtls_cert_file="/etc/asterisk/my cert.pem"))


def test_a_ws_transport_without_bind_is_reported() -> None:
    files = render(BASE)
    files["pjsip.conf"] = files["pjsip.conf"].replace("protocol=ws\nbind=0.0.0.0\n", "protocol=ws\n")
    assert any("transport-ws" in p and "bind" in p for p in validate(files))


def test_dial_targets_and_passwords() -> None:
    assert dial_targets("reg1", RING_SIP) == ["PJSIP/reg1"]
    assert dial_targets("reg1", RING_WEB) == ["PJSIP/reg1-web"]
    assert dial_targets("reg1", RING_BOTH) == ["PJSIP/reg1", "PJSIP/reg1-web"]
    assert web_password("a" * 32, "reg1") == web_password("a" * 32, "reg1")
    assert web_password("a" * 32, "reg1") != web_password("b" * 32, "reg1")  # a new secret key, new passwords
    assert web_password("a" * 32, "reg1") != web_password("a" * 32, "reg2")


@pytest.mark.parametrize(("value", "problem"), [
    ("Headset (Jabra EVOLVE 20)", None), ("", None), ("  Микрофон  ", None),
    ("a\nb", "управляющие символы"), ("x" * 201, "длиннее 200"), (None, None),
])
def test_device_labels(value: object, problem: str | None) -> None:
    cleaned, found = clean_device(value)
    if problem is None:
        assert found is None
        assert cleaned == (value or "").strip()  # type: ignore[union-attr]
    else:
        assert found is not None and problem in found


def test_clean_choice_reports_each_field_in_russian() -> None:
    choice, errors = clean_choice({"softphone_ring": "both", "mic_device": "Mic", "speaker_device": ""})
    assert errors == {} and (choice.ring, choice.mic_device) == ("both", "Mic")
    _, errors = clean_choice({"softphone_ring": "desk", "mic_device": "a\x00", "speaker_device": "x" * 300})
    assert set(errors) == {"softphone_ring", "mic_device", "speaker_device"}
    assert "«Встроенный софтфон», «SIP-телефон», «Оба»" in errors["softphone_ring"]


def test_the_dtls_certificate_is_made_once_and_kept(tmp_path: Path) -> None:
    cert, key = ensure_dtls_cert(tmp_path)
    first = cert.read_bytes()
    assert key.stat().st_mode & 0o777 == 0o600
    out = subprocess.run(["openssl", "x509", "-in", str(cert), "-noout", "-subject"],
                         capture_output=True, text=True, check=True).stdout
    assert "mis-telephony" in out
    assert ensure_dtls_cert(tmp_path) == (cert, key)
    assert cert.read_bytes() == first  # not regenerated: browsers' fingerprints stay valid


def test_ice_behind_nat_uses_the_stun_server() -> None:
    assert "icesupport=yes" in render(BASE)["rtp.conf"]
    assert "stunaddr" not in render(BASE)["rtp.conf"]
    rtp = render(replace(BASE, stun_server="stun.clinic.example:3478"))["rtp.conf"]
    assert "stunaddr=stun.clinic.example:3478" in rtp
    assert validate(render(replace(BASE, stun_server="192.0.2.10"))) == []
    for bad in ("stun.example:99999", "bad host:3478", "stun.example:x"):
        with pytest.raises(RenderError, match="STUN-сервер"):
            render(replace(BASE, stun_server=bad))
