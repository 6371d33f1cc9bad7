"""«Правила напоминаний»: checking and saving a rule. Every field is checked before anything
is written; errors are Russian messages per field (ValidationError), nothing is saved then."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from clinic.inputs import parse_id
from clinic.models import Employee, Service, SmsTemplate
from clinic.models.reminders import (
    JOB_PLANNED,
    MOMENT_BEFORE,
    MOMENT_EVENING,
    MOMENTS,
    UNIT_DAYS,
    UNIT_HOURS,
    UNITS,
    ReminderJob,
    ReminderRule,
)
from clinic.models.sms import RECIPIENT_PATIENT
from clinic.reminders import channels
from clinic.services import ValidationError, as_text, parse_bool, parse_int
from clinic.services.settings import read_settings
from clinic.sms import templating
from clinic.sms.rules import text_problem

MAX_HOURS = 24 * 14  # two weeks, in hours or days alike
MAX_DAYS = 14
MAX_STOP_BEFORE_MIN = 24 * 60


def parse_hhmm(raw: str) -> tuple[int, int] | None:
    hh, sep, mm = raw.strip().partition(":")
    if not sep or len(mm) != 2 or not (hh.isascii() and hh.isdigit() and mm.isascii() and mm.isdigit()):
        return None
    h, m = int(hh), int(mm)
    return (h, m) if 0 <= h < 24 and 0 <= m < 60 else None


def departments(session: Session) -> list[str]:
    """The «Подразделение» choices: the specialties of active doctors."""
    rows = session.scalars(
        select(Employee.specialty).where(Employee.is_active.is_(True), Employee.specialty != "").distinct()
    )
    return sorted(set(rows))


def template_problem(template: SmsTemplate) -> str | None:
    """Why this template cannot make reminders (Russian), or None."""
    if template.recipient_type != RECIPIENT_PATIENT:
        return f"Шаблон «{template.name}» адресован не пациенту"
    if found := templating.problems(template.body):
        return f"Шаблон «{template.name}»: " + "; ".join(found)
    sample = templating.render(template.body, templating.sample_values_for_length())
    if problem := text_problem(sample):
        return f"Шаблон «{template.name}»: {problem}"
    return None


def _ref(
    session: Session, data: Mapping[str, object], name: str, model: type, what: str, errors: dict[str, str]
) -> int | None:  # noqa: E501
    raw = as_text(data.get(name))
    if not raw:
        return None
    row_id = parse_id(raw)
    if row_id is None or session.get(model, row_id) is None:
        errors[name] = f"{what} не найден(а): выберите из списка"
        return None
    return row_id


def validate(session: Session, data: Mapping[str, object]) -> dict[str, object]:
    """Clean values of a rule from a form (or JSON), or ValidationError."""
    errors: dict[str, str] = {}
    clean: dict[str, object] = {}
    name = as_text(data.get("name"))
    if not name:
        errors["name"] = "Укажите наименование правила"
    elif len(name) > 200:
        errors["name"] = "Наименование длиннее 200 символов"
    clean["name"] = name

    active = parse_bool(data.get("is_active"))
    if active is None:
        errors["is_active"] = "Некорректное значение флажка"
    clean["is_active"] = bool(active)

    channel_key = as_text(data.get("channel"))
    channel = channels.get(channel_key)
    if channel is None:
        errors["channel"] = "Выберите канал из списка" if not channel_key else "Такой канал не подключён"
    clean["channel"] = channel_key

    moment = as_text(data.get("moment"))
    if moment not in MOMENTS:
        errors["moment"] = "Выберите, когда отправлять напоминание"
    clean["moment"] = moment
    clean["offset_value"], clean["offset_unit"], clean["evening_time"] = 24, UNIT_HOURS, "18:00"
    if moment == MOMENT_BEFORE:
        unit = as_text(data.get("offset_unit"))
        value = parse_int(data.get("offset_value"))
        if unit not in UNITS:
            errors["offset_unit"] = "Выберите: часов или дней"
        limit = MAX_DAYS if unit == UNIT_DAYS else MAX_HOURS
        if value is None:
            errors["offset_value"] = "Укажите целое число"
        elif not 1 <= value <= limit:
            errors["offset_value"] = f"Число от 1 до {limit}"
        clean["offset_value"], clean["offset_unit"] = value if value is not None else 0, unit
    elif moment == MOMENT_EVENING:
        raw = as_text(data.get("evening_time"))
        at = parse_hhmm(raw)
        if at is None:
            errors["evening_time"] = "Время в формате ЧЧ:ММ, например 18:00"
        else:
            clean["evening_time"] = f"{at[0]:02d}:{at[1]:02d}"
            settings = read_settings(session)
            start, end = settings.sms_quiet_from, settings.sms_quiet_to
            hour = at[0]
            quiet = start != end and (start <= hour < end if start < end else (hour >= start or hour < end))
            if quiet:
                errors["evening_time"] = (
                    f"Время попадает в тихие часы ({start:02d}:00–{end:02d}:00): "
                    "напоминание ушло бы только утром в день приёма"
                )

    stop_before = parse_int(data.get("stop_before_min"))
    if stop_before is None:
        errors["stop_before_min"] = "Укажите целое число минут"
    elif not 0 <= stop_before <= MAX_STOP_BEFORE_MIN:
        errors["stop_before_min"] = f"Число минут от 0 до {MAX_STOP_BEFORE_MIN}"
    clean["stop_before_min"] = stop_before if stop_before is not None else 0

    clean["doctor_id"] = _ref(session, data, "doctor_id", Employee, "Врач", errors)
    clean["service_id"] = _ref(session, data, "service_id", Service, "Услуга", errors)
    department = as_text(data.get("department"))
    if department and department not in departments(session):
        errors["department"] = "Подразделение не найдено: выберите из списка"
    clean["department"] = department

    template_id = _ref(session, data, "template_id", SmsTemplate, "Шаблон", errors)
    if channel is not None and channel.needs_template:
        if template_id is None and "template_id" not in errors:
            errors["template_id"] = "Выберите шаблон СМС"
        elif template_id is not None:
            template = session.get(SmsTemplate, template_id)
            assert template is not None
            if problem := template_problem(template):
                errors["template_id"] = problem
    clean["template_id"] = template_id if channel is None or channel.needs_template else None
    if errors:
        raise ValidationError(errors)
    return clean


def save_rule(
    session: Session, rule: ReminderRule | None, data: Mapping[str, object], *, now: datetime
) -> ReminderRule:
    """Create or change a rule (flushed, the caller commits). Reminders it planned and not
    yet sent are dropped: the worker plans them again by the new settings. Switching a rule
    on (or creating it) starts it from `now`: visits whose moment has passed are not
    reminded late."""
    values = validate(session, data)
    if rule is None:
        rule = ReminderRule(active_since=now)
        session.add(rule)
    elif values["is_active"] and not rule.is_active:
        rule.active_since = now
    for key, value in values.items():
        setattr(rule, key, value)
    session.flush()
    session.execute(
        delete(ReminderJob)
        .where(ReminderJob.rule_id == rule.id, ReminderJob.state == JOB_PLANNED)
        .execution_options(synchronize_session=False)
    )
    return rule


def delete_rule(session: Session, rule: ReminderRule) -> None:
    """A rule that made reminders stays for their history: only switching it off is allowed."""
    used = session.scalar(
        select(ReminderJob.id)
        .where(ReminderJob.rule_id == rule.id, ReminderJob.state != JOB_PLANNED)
        .limit(1)
    )
    if used is not None:
        raise ValidationError(
            {"rule": "По правилу уже отправлялись напоминания: его можно выключить, но не удалить"}
        )
    session.execute(delete(ReminderJob).where(ReminderJob.rule_id == rule.id))
    session.delete(rule)
    session.flush()


def list_rules(session: Session) -> list[ReminderRule]:
    return list(
        session.scalars(select(ReminderRule).order_by(ReminderRule.is_active.desc(), ReminderRule.name))
    )
