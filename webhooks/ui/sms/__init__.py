"""SMS pages, one module per screen.

  send       sms_send       /sms/send?appointment_id=|patient_id=   «Отправить СМС» (registrar, admin)
                            /sms/appointment/<id>                    the scheduler's context-menu entry
                            /sms/balance, /sms/count                 JSON for the dialog
  templates  sms_templates  /sms/templates, /new, /<id>, /preview     «Шаблоны для отправки СМС» (admin)
  mailings   sms_mailings   /sms/mailings, /new, /<id>                «Рассылка СМС» (admin)
  history    sms_history    /sms/history[?format=csv]                 «История действий по смс» (admin)
  stoplist   sms_stoplist   /sms/stoplist                             «Стоп-лист СМС» (admin)
  callbacks  sms_callbacks  /sms/callbacks                            «Отчёты о доставке» (admin)
  common     what more than one screen uses

Roles are enforced here, on the server; the menu only hides what a user may not open.
"""

from __future__ import annotations

from flask import Flask
from sqlalchemy import select

from clinic.models import Patient, SmsPhoneFlag
from webhooks.ui.db import db
from webhooks.ui.sms.callbacks import callbacks_bp
from webhooks.ui.sms.history import history_bp, safe_cell
from webhooks.ui.sms.mailings import mailings_bp
from webhooks.ui.sms.send import send_bp
from webhooks.ui.sms.stoplist import stoplist_bp
from webhooks.ui.sms.templates import templates_bp

__all__ = [
    "callbacks_bp",
    "history_bp",
    "mailings_bp",
    "register",
    "safe_cell",
    "send_bp",
    "stoplist_bp",
    "templates_bp",
]


def register(app: Flask) -> None:
    """Blueprints, menu entries and the scheduler's context-menu action (from register_ui)."""
    from webhooks.ui.menu import GROUP_SMS, add_appointment_action, add_menu_item

    for blueprint in (send_bp, templates_bp, mailings_bp, history_bp, stoplist_bp, callbacks_bp):
        app.register_blueprint(blueprint)
    add_menu_item(app, "Рассылка СМС", "sms_mailings.mailings_index", admin_only=True, group=GROUP_SMS)
    add_menu_item(app, "Шаблоны СМС", "sms_templates.templates_index", admin_only=True, group=GROUP_SMS)
    add_menu_item(app, "История СМС", "sms_history.history", admin_only=True, group=GROUP_SMS)
    add_menu_item(app, "Стоп-лист СМС", "sms_stoplist.stoplist", admin_only=True, group=GROUP_SMS)
    add_menu_item(app, "Отчёты о доставке", "sms_callbacks.callbacks", admin_only=True, group=GROUP_SMS)
    add_appointment_action(app, "Отправить СМС", "sms_send.appointment")
    app.jinja_env.globals["sms_phone_flag"] = _phone_flag


def _phone_flag(patient: Patient) -> SmsPhoneFlag | None:
    """For the patient card: the flag of a number sms.ru could not deliver to."""
    if not patient.phone:
        return None
    return db().scalar(select(SmsPhoneFlag).where(SmsPhoneFlag.phone == patient.phone.lstrip("+")))
