"""«История действий по смс» (admin): /sms/history[?format=csv] — the ledger filtered and
grouped on the page, or all of it as a CSV a spreadsheet opens safely."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, date, datetime, timedelta

from flask import Blueprint, Response, render_template, request
from sqlalchemy import or_, select
from sqlalchemy.orm import joinedload

from clinic.inputs import parse_id
from clinic.models import MESSAGE_STATES, Patient, SmsMessage, User
from clinic.services.settings import read_settings
from clinic.sms import rules
from webhooks.auth import require_admin
from webhooks.ui.db import db
from webhooks.ui.sms.common import masked

history_bp = Blueprint("sms_history", __name__, url_prefix="/sms/history")
history_bp.before_request(require_admin)


def _local(value: datetime | None) -> str:
    """A UTC timestamp from the ledger in the clinic's time zone, for pages and CSV."""
    if value is None:
        return ""
    zone = rules.zone(read_settings(db()))
    return rules.as_aware(value).astimezone(zone).strftime("%d.%m.%Y %H:%M:%S")


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-][0-9 ()\-.,]*")


def safe_cell(value: object) -> str:
    """A CSV cell a spreadsheet cannot run: one starting like a formula (=HYPERLINK(…), +cmd,
    -, @, tab, CR) gets a leading apostrophe (OWASP's CSV-injection advice), except a plain
    signed number such as a phone «+79161234567» or a cost «-1.5», which runs nothing."""
    text = "" if value is None else str(value)
    if text.startswith(_FORMULA_START) and not _PLAIN_NUMBER.fullmatch(text):
        return "'" + text
    return text


GROUPS = {
    "user": "Пользователь",
    "mailing": "Документ",
    "day": "Дата отправки",
    "phone": "Номер телефона",
    "patient": "Пациент",
    "state": "Состояние",
    "delivery": "Статус доставки",
}
DELIVERY_FILTERS = {"delivered": "Доставлено", "failed": "Не доставлено", "pending": "Ожидает"}
HISTORY_LIMIT = 1000


def _day(raw: str) -> date | None:
    try:
        return date.fromisoformat(raw) if raw else None
    except ValueError:
        return None


def _history_rows(f: dict[str, str]) -> list[SmsMessage]:
    session = db()
    zone = rules.zone(read_settings(session))
    query = (
        select(SmsMessage)
        .options(joinedload(SmsMessage.user), joinedload(SmsMessage.patient), joinedload(SmsMessage.mailing))
        .order_by(SmsMessage.created_at.desc(), SmsMessage.id.desc())
    )
    if day := _day(f["date_from"]):
        query = query.where(
            SmsMessage.created_at >= datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(UTC)
        )
    if day := _day(f["date_to"]):
        end = datetime(day.year, day.month, day.day, tzinfo=zone) + timedelta(days=1)
        query = query.where(SmsMessage.created_at < end.astimezone(UTC))
    if (user_id := parse_id(f["user"])) is not None:
        query = query.where(SmsMessage.user_id == user_id)
    if f["patient"]:
        like = f"%{f['patient']}%"
        digits = "".join(ch for ch in f["patient"] if ch.isdigit())
        conds = [Patient.last_name.ilike(like), Patient.first_name.ilike(like)]
        if len(digits) >= 4:
            conds.append(SmsMessage.phone.like(f"%{digits[-10:]}%"))
        query = query.outerjoin(Patient, Patient.id == SmsMessage.patient_id).where(or_(*conds))
    if f["state"] in MESSAGE_STATES:
        query = query.where(SmsMessage.state == f["state"])
    if f["delivery"] == "delivered":
        query = query.where(SmsMessage.delivery_code.in_((103, 110)))
    elif f["delivery"] == "failed":
        query = query.where(SmsMessage.delivery_code.in_((104, 105, 106, 107, 108, 150)))
    elif f["delivery"] == "pending":
        query = query.where(SmsMessage.state == "sent", SmsMessage.delivery_final.is_(False))
    return list(session.scalars(query.limit(HISTORY_LIMIT if f["format"] != "csv" else 200000)).unique())


def _history_cells(row: SmsMessage) -> dict[str, str]:
    return {
        "user": (row.user.full_name or row.user.login)
        if row.user
        else ("МИС (API)" if row.source == "api" else ""),
        "mailing": f"Рассылка СМС № {row.mailing.number}" if row.mailing else "",
        "sent": _local(row.sent_at or row.created_at),
        "day": _local(row.sent_at or row.created_at)[:10],
        "text": row.text,
        "phone": "+" + row.phone,
        "answer": masked(row.gateway_answer or row.note),
        "patient": row.patient.full_name if row.patient else "",
        "state": row.state_title + (f": {row.note}" if row.note and row.state != "sent" else ""),
        "delivery": row.delivery_text or ("Ожидает" if row.state == "sent" else ""),
        "cost": f"{row.cost:.2f}" if row.cost is not None else "",
    }


@history_bp.get("")
def history():  # type: ignore[no-untyped-def]
    f = {
        k: request.args.get(k, "").strip()[:100]
        for k in ("date_from", "date_to", "user", "patient", "state", "delivery", "group", "format")
    }
    rows = _history_rows(f)
    cells = [_history_cells(r) for r in rows]
    if f["format"] == "csv":
        out = io.StringIO()
        writer = csv.writer(out, delimiter=";")
        header = [
            "Пользователь",
            "Документ",
            "Дата отправки",
            "Текст",
            "Номер телефона",
            "Ответ",
            "Пациент",
            "Состояние",
            "Статус доставки",
            "Стоимость",
        ]
        writer.writerow(header)
        for c in cells:
            writer.writerow(
                safe_cell(value)
                for value in [
                    c["user"],
                    c["mailing"],
                    c["sent"],
                    c["text"],
                    c["phone"],
                    c["answer"],
                    c["patient"],
                    c["state"],
                    c["delivery"],
                    c["cost"],
                ]
            )
        return Response(
            "\ufeff" + out.getvalue(),
            mimetype="text/csv",
            headers={"Content-Disposition": "attachment; filename=sms-history.csv"},
        )
    groups: list[tuple[str, list[dict[str, str]]]] = []
    if f["group"] in GROUPS:
        index: dict[str, list[dict[str, str]]] = {}
        for c in cells:
            index.setdefault(c[f["group"]] or "—", []).append(c)
        groups = sorted(index.items())
    else:
        groups = [("", cells)]
    users = db().scalars(select(User).order_by(User.login)).all()
    return render_template(
        "sms/history.html",
        f=f,
        groups=groups,
        total=len(cells),
        limit=HISTORY_LIMIT,
        users=users,
        states=MESSAGE_STATES,
        deliveries=DELIVERY_FILTERS,
        group_choices=GROUPS,
    )
