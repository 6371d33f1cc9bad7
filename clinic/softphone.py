"""The built-in WebRTC softphone: which phone rings for a user, his two audio devices, the
credentials of his browser endpoint, and the DTLS certificate Asterisk presents to browsers.

Naming: a user with SIP ID `reg101` has the SIP endpoint/AOR `reg101` (his desk or soft SIP
phone) and the WebRTC endpoint/AOR `reg101-web` (the phone window), auth `reg101-web-auth`.
Both share his extension; the dialplan rings one or both according to `softphone_ring`.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

RING_SIP = "sip"
RING_WEB = "web"
RING_BOTH = "both"
# the seed's words, in the order the form shows them
RING_MODES = {RING_WEB: "Встроенный софтфон", RING_SIP: "SIP-телефон", RING_BOTH: "Оба"}
DEFAULT_RING = RING_SIP  # existing users keep the desk phone they have

WEB_SUFFIX = "-web"
# the extension an idle softphone window calls to keep its standby line (ari_app/standby)
STANDBY_EXTEN = "mis-standby"
DEVICE_MAX = 200  # a browser's device label ("Headset (Jabra EVOLVE 20) (0b0e:0300)")
_CONTROL = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]")


def web_endpoint(sip_id: str) -> str:
    """The PJSIP endpoint (and AOR, and auth user name) of a user's browser softphone."""
    return f"{sip_id}{WEB_SUFFIX}"


def owner_sip_id(endpoint: str) -> str:
    """The SIP ID of the user an endpoint belongs to: his SIP phone's or his softphone's."""
    return endpoint.removesuffix(WEB_SUFFIX)


def web_password(secret_key: str, sip_id: str) -> str:
    """The browser endpoint's SIP password, derived from the installation's secret key: the
    web process hands it to the logged-in user's phone window, the renderer turns it into an
    md5 digest; nothing new is stored, and a new secret key changes every one of them."""
    return hmac.new(secret_key.encode(), f"softphone:{sip_id}".encode(), hashlib.sha256).hexdigest()[:32]


def ring_names(sip_id: str, ring: str) -> list[str]:
    """The PJSIP endpoints (resource names) that ring for this user, his SIP phone first."""
    if ring == RING_WEB:
        return [web_endpoint(sip_id)]
    if ring == RING_BOTH:
        return [sip_id, web_endpoint(sip_id)]
    return [sip_id]


def dial_targets(sip_id: str, ring: str) -> list[str]:
    """Dial strings of the phones that ring for this user (Dial() joins them with &; ari_app
    originates one channel per string and keeps the first that answers)."""
    return [f"PJSIP/{name}" for name in ring_names(sip_id, ring)]


def clean_device(value: object) -> tuple[str, str | None]:
    """(value to store, Russian problem or None) for a device label from a form."""
    text = value if isinstance(value, str) else ""
    text = text.strip()
    if _CONTROL.search(text):
        return "", "Название устройства содержит управляющие символы"
    if len(text) > DEVICE_MAX:
        return "", f"Название устройства длиннее {DEVICE_MAX} символов"
    return text, None


def clean_ring(value: object) -> tuple[str, str | None]:
    text = value if isinstance(value, str) else ""
    if text not in RING_MODES:
        choices = ", ".join(f"«{title}»" for title in RING_MODES.values())
        return DEFAULT_RING, f"Выберите, какой телефон звонит: {choices}"
    return text, None


def sip_id_problem(sip_id: str) -> str | None:
    """A SIP ID that would collide with a softphone's endpoint name (`<sip_id>-web`)."""
    if sip_id.endswith(WEB_SUFFIX):
        return f"ID SIP не может оканчиваться на «{WEB_SUFFIX}»: так называется софтфон пользователя"
    return None


@dataclass(frozen=True)
class SoftphoneChoice:
    ring: str
    mic_device: str
    speaker_device: str


def clean_choice(data: Mapping[str, object]) -> tuple[SoftphoneChoice, dict[str, str]]:
    """Validate the three fields; errors are keyed by field name (Russian messages)."""
    errors: dict[str, str] = {}
    ring, problem = clean_ring(data.get("softphone_ring"))
    if problem:
        errors["softphone_ring"] = problem
    mic, problem = clean_device(data.get("mic_device", ""))
    if problem:
        errors["mic_device"] = problem
    speaker, problem = clean_device(data.get("speaker_device", ""))
    if problem:
        errors["speaker_device"] = problem
    return SoftphoneChoice(ring, mic, speaker), errors


def ws_url(http_port: int) -> str:
    """Where browsers open SIP over websocket: Asterisk's HTTP server, path /ws. Behind TLS
    (production: browsers need a secure context) MIS_SOFTPHONE_WS_URL names the wss:// URL."""
    return os.environ.get("MIS_SOFTPHONE_WS_URL", "").strip() or f"ws://127.0.0.1:{http_port}/ws"


def stun_server() -> str:
    """`host[:port]` of a STUN server for ICE behind NAT (MIS_STUN_SERVER): Asterisk learns
    its public address from it (rtp.conf stunaddr) and browsers get it as an ICE server.
    Empty: host candidates only (browsers and Asterisk on one network)."""
    return os.environ.get("MIS_STUN_SERVER", "").strip()


# ---------------------------------------------------------------- DTLS certificate

DTLS_DIR = "softphone"
DTLS_CERT = "dtls.crt"
DTLS_KEY = "dtls.key"


def ensure_dtls_cert(data_dir: Path, common_name: str = "mis-telephony") -> tuple[Path, Path]:
    """The self-signed certificate Asterisk uses for DTLS-SRTP with browsers, made once and
    kept in the data dir (browsers check its fingerprint from the SDP, not a CA chain)."""
    folder = data_dir / DTLS_DIR
    cert, key = folder / DTLS_CERT, folder / DTLS_KEY
    if cert.exists() and key.exists():
        return cert, key
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp_cert, tmp_key = folder / f".{DTLS_CERT}.tmp", folder / f".{DTLS_KEY}.tmp"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "3650", "-subj", f"/CN={common_name}",
         "-keyout", str(tmp_key), "-out", str(tmp_cert)],
        check=True, capture_output=True,
    )
    os.chmod(tmp_key, 0o600)
    os.replace(tmp_key, key)  # key first: a cert without its key is never left behind
    os.replace(tmp_cert, cert)
    return cert, key
