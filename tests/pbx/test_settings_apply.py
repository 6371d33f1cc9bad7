"""«ЛПУ → Параметры» against the real Asterisk 22: the entered SIP/RTP values go to Asterisk
before they are saved. A change Asterisk rejects leaves the database, the files Asterisk reads
and the running Asterisk as they were; the form's own port checks keep the issue's 8000–9000
(which swallows HTTP/ARI 8088) from reaching Asterisk at all; an accepted change is both
saved and running.

Run under the shared lock: `flock /tmp/mis-pbx.lock .venv/bin/pytest tests/pbx/test_settings_apply.py`.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from sip_phone import BaresipPhone
from sqlalchemy import func, select

from asterisk_conf import apply
from asterisk_conf.render import FILES, TEMPLATE_DIR
from clinic import ami
from clinic.models import REVISION_FAILED, ROLE_ADMIN, ClinicSettings, ConfigRevision, User
from clinic.pbx_port import ApplyResult, PbxApplier
from clinic.security import hash_password
from webhooks.app import create_app

from .pbxkit import Pbx, wait_registered

pytestmark = pytest.mark.pbx

LOGIN, PASSWORD = "settings-admin", "Adm1n-settings"
FORM = {
    "tab": "service",
    "name": "Поликлиника №1",
    "timezone": "Europe/Moscow",
    "sip_domain": "127.0.0.1",
    "sip_port": "5060",
    "rtp_start": "10000",
    "rtp_end": "10999",
    "lockout_enabled": "on",
    "lockout_attempts": "10",
    "exchange_log_days": "90",
}
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def _settings(pbx: Pbx) -> tuple[int, int, int, str]:
    with pbx.sessions() as s:
        row = s.scalars(select(ClinicSettings).order_by(ClinicSettings.id)).first()
        assert row is not None
        return row.sip_port, row.rtp_start, row.rtp_end, row.name


def _running_rtp(pbx: Pbx) -> tuple[int, int]:
    """The RTP range the running Asterisk uses (`rtp show settings`), not what a file says."""
    lines = ami.run(pbx.config.pbx, lambda c: c.command("rtp show settings"))
    text = "\n".join(lines)
    start = re.search(r"Port start:\s*(\d+)", text)
    end = re.search(r"Port end:\s*(\d+)", text)
    assert start and end, text
    return int(start.group(1)), int(end.group(1))


def _disk(pbx: Pbx) -> dict[str, bytes]:
    conf = pbx.config.pbx.conf_dir
    return {name: (conf / name).read_bytes() for name in FILES}


def _revisions(pbx: Pbx) -> int:
    with pbx.sessions() as s:
        return s.scalar(select(func.count()).select_from(ConfigRevision)) or 0


@pytest.fixture(scope="module")
def admin(pbx: Pbx) -> None:
    with pbx.sessions() as s:
        if s.scalar(select(User).where(User.login == LOGIN)) is None:
            s.add(User(login=LOGIN, full_name="Администратор", password_hash=hash_password(PASSWORD),
                       role=ROLE_ADMIN, is_active=True, failed_logins=0))  # fmt: skip
            s.commit()


def _client(pbx: Pbx, applier: PbxApplier) -> FlaskClient:
    app = create_app(pbx.config, pbx_apply=applier, session_factory=pbx.sessions)
    client = app.test_client()
    assert _post(client, "/login", {"login": LOGIN, "password": PASSWORD}).status_code == 302
    return client


def _post(client: FlaskClient, url: str, form: Mapping[str, str]) -> Any:
    page = client.get(url)
    token = _CSRF.search(page.text)
    assert token, page.text[:500]
    return client.post(url, data={**form, "csrf_token": token.group(1)})


def _broken_templates(dst: Path) -> Path:
    """Valid for our validator, refused by Asterisk (it keeps the old endpoints)."""
    shutil.copytree(TEMPLATE_DIR, dst)
    path = dst / "pjsip.conf.j2"
    path.write_text(path.read_text().replace("dtmf_mode=rfc4733", "dtmf_mode=bogus"))
    return dst


@pytest.fixture()
def saved_defaults(pbx: Pbx, admin: None) -> Iterator[None]:
    """The settings as the session's Asterisk started with, before and after each test."""
    real = apply.make_applier(pbx.config, pbx.sessions)
    assert _post(_client(pbx, real), "/admin/settings", FORM).status_code == 302
    assert _settings(pbx)[:3] == (5060, 10000, 10999)
    yield
    response = _post(_client(pbx, real), "/admin/settings", FORM)
    assert response.status_code == 302, response.text[-3000:]
    assert _running_rtp(pbx) == (10000, 10999)


def test_a_change_asterisk_rejects_leaves_the_db_and_asterisk_as_they_were(
    pbx: Pbx, phones: dict[str, BaresipPhone], saved_defaults: None, tmp_path: Path
) -> None:
    wait_registered(pbx.config, {"reg101", "reg102"})
    broken = _broken_templates(tmp_path / "tpl")

    def applier(author_id: int | None, *, pending: Mapping[str, object] | None = None) -> ApplyResult:
        return apply.apply_from_db(pbx.config, pbx.sessions, author_id, pending=pending, template_dir=broken)

    disk_before = _disk(pbx)
    assert _running_rtp(pbx) == (10000, 10999)

    response = _post(_client(pbx, applier), "/admin/settings", {**FORM, "rtp_start": "12000",
                                                                  "rtp_end": "12999", "name": "Новое имя"})

    assert response.status_code == 422
    page = response.text
    assert "Asterisk не принял новые параметры телефонии, они не сохранены" in page
    assert "Проверка не пройдена" in page and "предыдущая конфигурация восстановлена" in page
    assert 'value="12000"' in page and 'value="12999"' in page  # what the admin typed, offered back
    assert pbx.config.pbx.ari_password not in page and pbx.config.pbx.ami_secret not in page
    # the database, the files and the running Asterisk keep the old values
    assert _settings(pbx) == (5060, 10000, 10999, "Поликлиника №1")
    assert _disk(pbx) == disk_before
    assert _running_rtp(pbx) == (10000, 10999)
    with pbx.sessions() as s:
        last = s.scalars(select(ConfigRevision).order_by(ConfigRevision.id.desc())).first()
        assert last is not None and last.status == REVISION_FAILED
        assert "rtpstart=12000" in last.files["rtp.conf"]  # what was tried stays in the audit trail
    wait_registered(pbx.config, {"reg101", "reg102"}, timeout=2)


def test_the_issue_range_8000_9000_is_refused_at_the_field_before_asterisk(
    pbx: Pbx, saved_defaults: None
) -> None:
    disk_before, revisions_before = _disk(pbx), _revisions(pbx)
    real = apply.make_applier(pbx.config, pbx.sessions)

    response = _post(_client(pbx, real), "/admin/settings", {**FORM, "rtp_start": "8000", "rtp_end": "9000"})

    assert response.status_code == 422
    assert 'data-error-for="rtp_start"' in response.text
    assert f"{pbx.config.pbx.http_port} (HTTP/ARI Asterisk)" in response.text
    assert "Параметры сохранены" not in response.text
    assert _settings(pbx)[:3] == (5060, 10000, 10999)
    assert _revisions(pbx) == revisions_before  # Asterisk was never asked
    assert _disk(pbx) == disk_before
    assert _running_rtp(pbx) == (10000, 10999)


def test_an_accepted_change_is_saved_and_running(pbx: Pbx, saved_defaults: None) -> None:
    client = _client(pbx, apply.make_applier(pbx.config, pbx.sessions))

    response = _post(client, "/admin/settings", {**FORM, "rtp_start": "12000", "rtp_end": "12999"})

    assert response.status_code == 302
    page = client.get(response.location).text
    assert "Параметры сохранены" in page and "АТС: Конфигурация применена" in page
    assert _settings(pbx)[:3] == (5060, 12000, 12999)
    assert _running_rtp(pbx) == (12000, 12999)
    assert "rtpstart=12000" in (pbx.config.pbx.conf_dir / "rtp.conf").read_text()
