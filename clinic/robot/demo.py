"""The demo's Mango Office: a «Внешние информационные системы» entry pointing at the local
emulator (`make run` starts it), and a disabled «Отправка сведений в Mango Office» task."""

from __future__ import annotations

import os
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from clinic.models import ExternalSystem, ServerTask
from clinic.models.robot import SYSTEM_MANGO, TASK_MANGO_EXPORT

DEMO_CAMPAIGN = 56919


def emulator_port() -> int:
    return int(os.environ.get("MIS_MANGO_EMULATOR_PORT", "9102"))


def seed_mango(session: Session) -> bool:
    """Create the demo entry once; True if created."""
    if session.scalar(select(ExternalSystem).where(ExternalSystem.kind == SYSTEM_MANGO)) is not None:
        return False
    system = ExternalSystem(
        kind=SYSTEM_MANGO,
        name="Mango Office (эмулятор)",
        api_key="demo-" + secrets.token_hex(8),
        api_salt=secrets.token_urlsafe(24),
        campaign_id=DEMO_CAMPAIGN,
        base_url=f"http://127.0.0.1:{emulator_port()}/vpbx/",
        field_names="",
        field_ids="",
        webhook_secret=secrets.token_urlsafe(24),
        webhook_ips="",
        last_check_message="",
    )
    session.add(system)
    session.flush()
    session.add(
        ServerTask(
            kind=TASK_MANGO_EXPORT,
            name="Отправка сведений в Mango Office",
            external_system_id=system.id,
            is_enabled=True,
            run_at="09:00",
        )
    )
    return True


def emulator_command(
    session: Session, python: str, hooks_base: str
) -> tuple[list[str], dict[str, str]] | None:
    """argv and extra environment for the emulator of the demo entry (the key and the salt
    go through the environment, not the command line)."""
    system = session.scalar(
        select(ExternalSystem).where(ExternalSystem.kind == SYSTEM_MANGO).order_by(ExternalSystem.id)
    )
    if system is None or not system.base_url.startswith(f"http://127.0.0.1:{emulator_port()}/"):
        return None
    argv = [
        python,
        "-m",
        "emulators.mango",
        "--port",
        str(emulator_port()),
        "--campaign",
        str(system.campaign_id or DEMO_CAMPAIGN),
        "--webhook-url",
        f"{hooks_base}/MangoOffice/UpdateStatus?token={system.webhook_secret}",
    ]
    return argv, {"MANGO_EMULATOR_KEY": system.api_key, "MANGO_EMULATOR_SALT": system.api_salt}
