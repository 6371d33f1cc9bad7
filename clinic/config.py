"""Process configuration, read once from the environment.

Everything has a working default for the local demo (`make run`): a SQLite file and the
local Asterisk chroot. Production points the same settings at PostgreSQL and an existing
Asterisk. Generated secrets (Flask key, ARI/AMI passwords) live in `<data_dir>/secrets.json`
with mode 0600 so they survive restarts and never sit in the repository.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_CHROOT = Path("/var/cache/mis-telephony/asterisk22-sid")


def _env(name: str, default: str) -> str:
    value = os.environ.get(name, "").strip()
    return value or default


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise SystemExit(f"{name} must be an integer, got {raw!r}") from exc


def load_secrets(data_dir: Path) -> dict[str, str]:
    """Return the persisted generated secrets, creating any that are missing."""
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)  # private: see clinic/datadir.py
    path = data_dir / "secrets.json"
    stored: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    wanted = ("flask_secret_key", "ari_password", "ami_secret", "control_token", "agi_secret")
    changed = False
    for key in wanted:
        if not stored.get(key):
            stored[key] = secrets.token_urlsafe(24)
            changed = True
    if changed:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(stored, indent=2))
        tmp.chmod(0o600)
        tmp.replace(path)
    return stored


@dataclass(frozen=True)
class PbxConfig:
    """Where the Asterisk we drive lives and how to reach it."""

    mode: str  # "local": our chroot runtime; "external": an existing Asterisk
    chroot: Path
    conf_dir: Path  # where rendered configs are written
    ari_url: str
    ari_user: str
    ari_password: str = field(repr=False)
    ami_host: str = "127.0.0.1"
    ami_port: int = 5038
    ami_user: str = "mis"
    ami_secret: str = field(default="", repr=False)
    http_port: int = 8088
    ari_app: str = "clinic"
    agi_port: int = 4573
    # ari_app's loopback control API (call control and call events for the web side), and
    # the shared token the web side presents to it
    control_url: str = "http://127.0.0.1:8090"
    control_token: str = field(default="", repr=False)
    # Known only to our FastAGI server and the rendered dialplan (a global the server reads
    # back with GET VARIABLE): any other local process that connects to :4573 is refused.
    agi_secret: str = field(default="", repr=False)


@dataclass(frozen=True)
class Config:
    data_dir: Path
    database_url: str
    secret_key: str = field(repr=False)
    web_host: str
    web_port: int
    hooks_host: str
    hooks_port: int
    pbx: PbxConfig
    # sms.ru: the real service by default; `make run` points it at the local emulator.
    smsru_url: str = "https://sms.ru"
    smsru_test_mode: bool = False  # adds test=1 to every send: nothing is sent or charged
    # A ledger row left in "sending" longer than this belonged to a worker that died
    # mid-request: it is marked "outcome unknown" for the operator, never re-sent.
    sms_sending_lease_s: float = 120.0
    # The session cookie only over HTTPS: set when the web app is served behind TLS.
    cookie_secure: bool = False
    # ari_app's listener for the browsers' live call events (an SSE stream per tab, no web
    # thread held by it): where it listens, the URL pages use if a proxy fronts it, and the
    # web app's origins it answers (CORS); empty: http://{web_host}:{web_port}.
    events_host: str = "127.0.0.1"
    events_port: int = 8091
    events_public_url: str = ""
    web_origins: tuple[str, ...] = ()

    @property
    def events_url(self) -> str:
        """The events listener as the browser reaches it."""
        return self.events_public_url or f"http://{self.events_host}:{self.events_port}"

    @property
    def allowed_origins(self) -> tuple[str, ...]:
        """The web app's origins: the pages that may open the events stream. On a loopback
        host both of its names (the demo is opened as localhost as often as 127.0.0.1)."""
        if self.web_origins:
            return self.web_origins
        loopback = ("127.0.0.1", "localhost")
        hosts = loopback if self.web_host in loopback else (self.web_host,)
        return tuple(f"http://{host}:{self.web_port}" for host in hosts)

    @classmethod
    def from_env(cls) -> Config:
        data_dir = Path(_env("MIS_DATA_DIR", str(Path.cwd() / "var"))).resolve()
        stored = load_secrets(data_dir)
        mode = _env("MIS_PBX_MODE", "local")
        if mode not in ("local", "external"):
            raise SystemExit("MIS_PBX_MODE must be 'local' or 'external'")
        chroot = Path(_env("MIS_PBX_CHROOT", str(DEFAULT_CHROOT)))
        default_conf = chroot / "etc/asterisk" if mode == "local" else Path("/etc/asterisk")
        http_port = _env_int("MIS_ARI_PORT", 8088)
        pbx = PbxConfig(
            mode=mode,
            chroot=chroot,
            conf_dir=Path(_env("MIS_ASTERISK_CONF_DIR", str(default_conf))),
            ari_url=_env("MIS_ARI_URL", f"http://127.0.0.1:{http_port}/ari"),
            ari_user=_env("MIS_ARI_USER", "mis"),
            ari_password=_env("MIS_ARI_PASSWORD", stored["ari_password"]),
            ami_host=_env("MIS_AMI_HOST", "127.0.0.1"),
            ami_port=_env_int("MIS_AMI_PORT", 5038),
            ami_user=_env("MIS_AMI_USER", "mis"),
            ami_secret=_env("MIS_AMI_SECRET", stored["ami_secret"]),
            http_port=http_port,
            ari_app=_env("MIS_ARI_APP", "clinic"),
            agi_port=_env_int("MIS_AGI_PORT", 4573),
            control_url=_env("MIS_CONTROL_URL", "http://127.0.0.1:8090").rstrip("/"),
            control_token=_env("MIS_CONTROL_TOKEN", stored["control_token"]),
            agi_secret=_env("MIS_AGI_SECRET", stored["agi_secret"]),
        )
        web_host = _env("MIS_WEB_HOST", "127.0.0.1")
        return cls(
            data_dir=data_dir,
            database_url=_env("DATABASE_URL", f"sqlite:///{data_dir / 'mis.db'}"),
            secret_key=_env("MIS_SECRET_KEY", stored["flask_secret_key"]),
            web_host=web_host,
            web_port=_env_int("MIS_WEB_PORT", 8000),
            hooks_host=_env("MIS_HOOKS_HOST", "127.0.0.1"),
            hooks_port=_env_int("MIS_HOOKS_PORT", 55055),
            pbx=pbx,
            smsru_url=_env("MIS_SMSRU_URL", "https://sms.ru").rstrip("/"),
            smsru_test_mode=_env("MIS_SMSRU_TEST", "0") == "1",
            sms_sending_lease_s=float(_env_int("MIS_SMS_LEASE_S", 120)),
            cookie_secure=_env("MIS_COOKIE_SECURE", "0") == "1",
            events_host=_env("MIS_EVENTS_HOST", web_host),
            events_port=_env_int("MIS_EVENTS_PORT", 8091),
            events_public_url=_env("MIS_EVENTS_URL", "").rstrip("/"),
            web_origins=tuple(o.rstrip("/") for o in _env("MIS_WEB_ORIGIN", "").replace(",", " ").split()),
        )
