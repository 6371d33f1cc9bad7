"""The one place the UI asks the PBX to take telephony changes (SIP, RTP, users' SIP accounts).

The applier is injected into create_app by the launcher (clinic.pbx_port.PbxApplier); it
renders and reloads the Asterisk configuration. Call this only after the change is committed,
because the applier reads the database.
"""

from __future__ import annotations

import logging

from flask import current_app, flash

from clinic.pbx_port import ApplyResult, PbxApplier

log = logging.getLogger(__name__)

NOT_CONNECTED = "АТС не подключена: изменения телефонии сохранены, но к Asterisk не применены."
FAILED = "АТС: не удалось применить настройки (внутренняя ошибка, подробности в журнале сервера)."


def apply_telephony(author_id: int | None) -> ApplyResult | None:
    """Run the applier and flash its message; None when no PBX is connected."""
    applier: PbxApplier | None = current_app.extensions.get("mis_pbx_apply")
    if applier is None:
        flash(NOT_CONNECTED, "warning")
        return None
    try:
        result = applier(author_id)
    except Exception:
        # The change is already saved; the admin can retry, so report and keep the page alive.
        log.exception("PBX apply failed")
        flash(FAILED, "error")
        return ApplyResult(ok=False, message=FAILED)
    flash(f"АТС: {result.message}", "success" if result.ok else "error")
    if result.warning:
        flash(f"АТС: {result.warning}", "warning")
    return result
