"""Issue 10, the SMS defects a walk through the product found: the dialog about the right
visit with no empty fields, one reminder per visit whichever screen sends it, no reminder
for a cancelled visit, mailing rows checked before «Рассылка СМС», patient templates only,
consent said when the dialog opens, and the clinic's clock on the «уже отправлено» line.

Against the sms.ru emulator and a real database, through Flask's test client."""

from __future__ import annotations

import html
import re
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from smsru.support import Sms
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from web.support import Web

from clinic.config import Config
from clinic.db import transaction
from clinic.models import (
    Appointment,
    ClinicSettings,
    Patient,
    SmsMailing,
    SmsMailingRow,
    SmsMessage,
    SmsPhoneFlag,
    SmsTemplate,
    User,
)
from clinic.models.schedule import STATUS_CANCELLED
from clinic.services import ValidationError
from clinic.sms import jobs, mailings, sending
from clinic.worker.jobs import JobContext

from .conftest import clinic_tomorrow


def _new_mailing(admin: Web, day: date, template_id: int) -> tuple[str, dict[str, str]]:
    """A new «Рассылка СМС» for `day` with that template: its URL and header fields."""
    header = {"period_from": day.isoformat(), "period_to": day.isoformat(), "template_id": str(template_id)}
    return admin.post_form("/sms/mailings/new", header).headers["Location"], header


def textarea(page: str) -> str:
    found = re.search(r'<textarea id="f-text"[^>]*>(.*?)</textarea>', page, re.S)
    assert found, "no text field on the page"
    return html.unescape(found.group(1))


def second_visit(sessions: sessionmaker[Session], clinic: dict[str, int], day: date, hour: int = 15) -> int:
    with transaction(sessions) as s:
        visit = Appointment(
            patient_id=clinic["patient"],
            doctor_id=clinic["doctor"],
            cabinet_id=clinic["cabinet"],
            starts_at=datetime.combine(day, time(hour)),
        )
        s.add(visit)
        s.flush()
        return visit.id


def sent_rows(sessions: sessionmaker[Session]) -> list[SmsMessage]:
    with sessions() as s:
        return list(s.scalars(select(SmsMessage).order_by(SmsMessage.id)))


def worker(sms_config: Config, sessions: sessionmaker[Session]) -> None:
    jobs.send_due(JobContext(sms_config, sessions))


# -- 1: «Отправить СМС» from the patient list or card ------------------------------------


def test_patient_dialog_is_about_the_nearest_visit_and_offers_the_others(
    reg: Web, sessions: sessionmaker[Session], clinic: dict[str, int], day: date
) -> None:
    later = second_visit(sessions, clinic, day)
    page = reg.text(f"/sms/send?patient_id={clinic['patient']}")
    assert textarea(page) == (
        f"Мария Петровна, ждём вас {day:%d.%m.%Y} в 10:00, врач Смирнов А.В., каб. 12 Терапия. "
        "Клиника Здоровье"
    )
    assert page.count('data-testid="sms-visit-choice"') == 2
    other = reg.text(f"/sms/send?patient_id={clinic['patient']}&appointment_id={later}")
    assert f"ждём вас {day:%d.%m.%Y} в 15:00" in textarea(other)
    # someone else's visit under this patient's dialog is not found
    assert (
        reg.get(f"/sms/send?patient_id={clinic['patient_no_phone']}&appointment_id={later}").status_code
        == 404
    )


def test_template_that_needs_a_visit_is_not_filled_with_blanks(
    reg: Web, sessions: sessionmaker[Session], clinic: dict[str, int]
) -> None:
    page = reg.text(f"/sms/send?patient_id={clinic['patient_no_phone']}")  # no visits at all
    assert textarea(page) == ""
    assert "заполняется по записи на приём" in page and "нет предстоящих приёмов" in page
    free = reg.text(f"/sms/send?patient_id={clinic['patient']}&appointment_id=0")  # «Без записи»
    assert textarea(free) == "" and "выберите приём выше" in free


def test_a_text_with_unfilled_fields_is_refused_until_edited(
    reg: Web, sms: Sms, sessions: sessionmaker[Session], clinic: dict[str, int], day: date
) -> None:
    with transaction(sessions) as s:
        s.get(Appointment, clinic["appointment"]).cabinet_id = None  # type: ignore[union-attr]
    url = f"/sms/send?appointment_id={clinic['appointment']}"
    page = reg.text(url)
    assert 'data-testid="sms-missing"' in page and "Кабинет" in page
    refused = reg.post_form(url, {"text": textarea(page), "phone": "+79161234567", "key": "m1"})
    assert refused.status_code == 422 and "не заполнены поля шаблона (Кабинет)" in refused.text
    assert sms.messages() == [] and sent_rows(sessions) == []
    fixed = textarea(page).replace("врач Смирнов А.В., .", "врач Смирнов А.В., каб. 12.")
    assert reg.post_form(url, {"text": fixed, "phone": "+79161234567", "key": "m2"}).status_code == 200
    assert [m["text"] for m in sms.messages()] == [fixed]


# -- 3: one reminder per visit, whichever screen ------------------------------------------


def test_second_send_from_the_dialog_needs_an_explicit_repeat(
    reg: Web, sms: Sms, sessions: sessionmaker[Session], clinic: dict[str, int]
) -> None:
    url = f"/sms/send?appointment_id={clinic['appointment']}"
    first = reg.text(url)
    form = {"text": textarea(first), "phone": "+79161234567", "key": "k1"}
    assert "Отправлено" in reg.post_form(url, form).text
    double = reg.client.post(url, data={**form, "csrf_token": reg.csrf(url)})  # the same form again
    assert double.status_code == 200 and "повторно не отправлено" in double.text
    # the dialog opened again warns and asks for a confirmed repeat
    again = reg.text(url)
    assert 'data-testid="sms-already"' in again and 'data-testid="sms-repeat"' in again
    assert "Отправить повторно" in again
    seen = re.search(r'name="seen" value="(\d+)"', again)
    assert seen
    unconfirmed = reg.post_form(url, {**form, "key": "k2", "seen": seen.group(1)})
    assert unconfirmed.status_code == 422 and "отметьте «Отправить повторно»" in unconfirmed.text
    assert len(sms.messages()) == 1
    confirmed = reg.post_form(url, {**form, "key": "k3", "seen": seen.group(1), "repeat": "1"})
    assert confirmed.status_code == 200 and "Отправлено" in confirmed.text
    twice = reg.client.post(
        url, data={**form, "key": "k3", "seen": seen.group(1), "repeat": "1", "csrf_token": reg.csrf(url)}
    )
    assert twice.status_code == 200  # a double click on «Отправить повторно»: still one repeat
    assert len(sms.messages()) == 2


def test_dialog_then_mailing_is_one_reminder(
    admin: Web,
    reg: Web,
    sms: Sms,
    sms_config: Config,
    sessions: sessionmaker[Session],
    clinic: dict[str, int],
    day: date,
) -> None:
    url = f"/sms/send?appointment_id={clinic['appointment']}"
    reg.post_form(url, {"text": textarea(reg.text(url)), "phone": "+79161234567", "key": "d1"})
    doc, header = _new_mailing(admin, day, clinic["template"])
    admin.post_form(doc, {**header, "action": "fill"})
    assert "Напоминание уже отправлено" in admin.text(doc)
    assert admin.post_form(doc, {**header, "action": "send"}).status_code == 302
    worker(sms_config, sessions)
    assert len(sms.messages()) == 1
    assert "(отправлено ранее из окна «Отправить СМС»)" in admin.text(doc)


def test_a_failed_reminder_may_be_sent_again(
    reg: Web, sms: Sms, sessions: sessionmaker[Session], clinic: dict[str, int]
) -> None:
    url = f"/sms/send?appointment_id={clinic['appointment']}"
    with transaction(sessions) as s:
        s.add(
            SmsMessage(
                idempotency_key=f"reminder:{clinic['appointment']}:"
                + f"{s.get(Appointment, clinic['appointment']).starts_at:%Y%m%d%H%M}",  # type: ignore[union-attr]
                appointment_id=clinic["appointment"],
                patient_id=clinic["patient"],
                phone="79161234567",
                text="x",
                state="failed",
                created_at=datetime.now(ZoneInfo("UTC")),
            )
        )
    page = reg.text(url)
    assert 'data-testid="sms-already"' not in page
    done = reg.post_form(url, {"text": textarea(page), "phone": "+79161234567", "key": "r1"})
    assert "Отправлено" in done.text and len(sms.messages()) == 1


# -- 4 and 16: cancelled visits, undeliverable numbers -----------------------------------


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"status": STATUS_CANCELLED}, "статус «Отменён»"),
        ({"confirmation_status": "cancelled", "extra_info": "Запись отменена"}, "«Запись отменена»"),
    ],
)
def test_no_reminder_for_a_cancelled_visit_from_the_dialog(
    reg: Web,
    sms: Sms,
    sms_config: Config,
    sessions: sessionmaker[Session],
    clinic: dict[str, int],
    change: dict[str, str],
    reason: str,
) -> None:
    with transaction(sessions) as s:
        visit = s.get(Appointment, clinic["appointment"])
        for key, value in change.items():
            setattr(visit, key, value)
    url = f"/sms/send?appointment_id={clinic['appointment']}"
    page = reg.text(url)
    assert 'data-testid="sms-blockers"' in page and reason in page
    assert re.search(r'data-testid="sms-submit"[^>]* disabled', page)
    refused = reg.post_form(url, {"text": "Напоминаем о приёме", "phone": "+79161234567", "key": "c1"})
    assert refused.status_code == 422 and reason in refused.text
    with pytest.raises(ValidationError) as info:  # the МИС's API path refuses the reminder too
        sending.send_single(sessions, sms_config, phone=None, text=None, key="api:x", reminder=True,
                            appointment_id=clinic["appointment"])  # fmt: skip
    assert reason in info.value.errors["appointment_id"]
    assert sms.messages() == [] and sent_rows(sessions) == []


def test_mailing_leaves_out_cancelled_visits_and_undeliverable_numbers(
    admin: Web,
    sms: Sms,
    sms_config: Config,
    sessions: sessionmaker[Session],
    clinic: dict[str, int],
    day: date,
) -> None:
    with transaction(sessions) as s:
        people = [
            Patient(last_name=name, first_name="Анна", patronymic="Ивановна", phone=phone)
            for name, phone in (
                ("Флагова", "+79035550001"),
                ("Роботова", "+79035550002"),
                ("Позднова", "+79035550003"),
            )
        ]
        s.add_all(people)
        s.flush()
        visits = [
            Appointment(patient_id=p.id, doctor_id=clinic["doctor"], cabinet_id=clinic["cabinet"],
                        starts_at=datetime.combine(day, time(11 + i)))
            for i, p in enumerate(people)
        ]  # fmt: skip
        s.add_all(visits)
        s.flush()
        s.add(
            SmsPhoneFlag(
                phone="79035550001", patient_id=people[0].id, code=106, reason="номер не обслуживается"
            )
        )
        robot_cancelled_late = visits[2].id
    doc, header = _new_mailing(admin, day, clinic["template"])
    with transaction(sessions) as s:
        s.get(Appointment, visits[1].id).confirmation_status = "cancelled"  # type: ignore[union-attr]
    admin.post_form(doc, {**header, "action": "fill"})
    with transaction(sessions) as s:  # cancelled by the robot after the document was filled
        s.get(Appointment, robot_cancelled_late).confirmation_status = "cancelled"  # type: ignore[union-attr]
    page = admin.text(doc)
    assert page.count('data-testid="mailing-recipient"') == 3  # the robot's earlier cancellation not picked
    assert "Не будет отправлено: На этот номер СМС не доставляются: номер не обслуживается" in page
    assert "Не будет отправлено: Пациент отменил запись" in page
    assert admin.post_form(doc, {**header, "action": "send"}).status_code == 302
    worker(sms_config, sessions)
    assert [m["phone"] for m in sms.messages()] == ["79161234567"]
    with sessions() as s:
        reasons = sorted(r for r in s.scalars(select(SmsMailingRow.skip_reason)) if r)
    assert len(reasons) == 2 and reasons[0].startswith("На этот номер")
    assert "Не отправлено: Пациент отменил запись" in admin.text(doc)


# -- 2: a hand-added row ------------------------------------------------------------------


def test_hand_added_row_shows_its_final_text_and_is_not_sent_with_blanks(
    admin: Web,
    sms: Sms,
    sms_config: Config,
    sessions: sessionmaker[Session],
    clinic: dict[str, int],
    day: date,
) -> None:
    doc, header = _new_mailing(admin, day, clinic["template"])
    admin.post_form(doc, {**header, "action": "fill"})
    admin.post_form(doc, {**header, "action": "add_row", "new_phone": "+7 903 000-11-22"})  # nobody's number
    page = admin.text(doc)
    texts = [html.unescape(t) for t in re.findall(r'data-testid="row-text">([^<]*)<', page)]
    assert texts[0].startswith(f"Мария Петровна, ждём вас {day:%d.%m.%Y} в 10:00")
    assert texts[1] == ", ждём вас  в , врач , . Клиника Здоровье"  # shown as it would read
    assert "Не будет отправлено: Не заполнены поля шаблона: Имя и отчество пациента, Дата приёма" in page
    assert 'data-testid="mailing-summary"' in page and "Не будут отправлены: 1 из 2" in page
    assert admin.post_form(doc, {**header, "action": "send"}).status_code == 302
    worker(sms_config, sessions)
    assert [m["phone"] for m in sms.messages()] == ["79161234567"]
    assert all("ждём вас  в" not in m["text"] for m in sms.messages())


def test_hand_added_patient_gets_the_visit_of_the_period(
    sessions: sessionmaker[Session], clinic: dict[str, int], day: date
) -> None:
    with transaction(sessions) as s:
        user = User(login="a", password_hash="x", role="admin")
        s.add(user)
        s.flush()
        header = {
            "period_from": day.isoformat(),
            "period_to": day.isoformat(),
            "template_id": clinic["template"],
        }
        doc = mailings.save_header(s, None, header, user, day)
        row = mailings.add_row(s, doc, {"patient_id": str(clinic["patient"])})
        assert row.appointment_id == clinic["appointment"]


# -- 6: a new mailing ---------------------------------------------------------------------


def test_new_mailing_preselects_the_default_patient_template_and_hides_doctors(
    admin: Web, sessions: sessionmaker[Session], clinic: dict[str, int], day: date
) -> None:
    with transaction(sessions) as s:
        doctors = SmsTemplate(
            name="Врачу о записи", recipient_type="doctor", is_default=True, body="К вам {patient_name}"
        )
        s.add(doctors)
        s.flush()
        doctors_id = doctors.id
    page = admin.text("/sms/mailings/new")
    assert re.search(rf'<option value="{clinic["template"]}" selected>Напоминание</option>', page)
    assert "Врачу о записи" not in page
    refused = admin.post_form(
        "/sms/mailings/new",
        {"period_from": day.isoformat(), "period_to": day.isoformat(), "template_id": str(doctors_id)},
    )
    assert refused.status_code == 422 and "выберите шаблон с абонентом «Пациент»" in refused.text
    with sessions() as s:
        assert s.scalars(select(SmsMailing)).all() == []


# -- 8: consent said when the dialog opens ------------------------------------------------


def test_no_consent_is_said_when_the_dialog_opens(
    reg: Web, sms: Sms, sessions: sessionmaker[Session], clinic: dict[str, int]
) -> None:
    with transaction(sessions) as s:
        s.get(Patient, clinic["patient"]).consent_sms = False  # type: ignore[union-attr]
    url = f"/sms/send?patient_id={clinic['patient']}"
    page = reg.text(url)
    assert 'data-testid="sms-blockers"' in page and "Пациент не дал согласия на СМС" in page
    assert re.search(r'data-testid="sms-submit"[^>]* disabled', page)
    refused = reg.post_form(url, {"text": "Привет", "phone": "+79161234567", "key": "n1"})
    assert refused.status_code == 422 and "Пациент не дал согласия на СМС" in refused.text
    assert sms.messages() == [] and sent_rows(sessions) == []  # nothing written, not even a skipped row


# -- 9: the clinic's clock ----------------------------------------------------------------


@pytest.fixture()
def far_east(server_in_new_york: None, sessions: sessionmaker[Session], day: date) -> str:
    """The server in New York, the clinic in Vladivostok."""
    with transaction(sessions) as s:
        s.scalars(select(ClinicSettings)).one().timezone = "Asia/Vladivostok"
    return "Asia/Vladivostok"


def test_already_sent_is_shown_in_the_clinic_zone(
    far_east: str, reg: Web, sms: Sms, sessions: sessionmaker[Session], clinic: dict[str, int]
) -> None:
    with transaction(sessions) as s:  # a visit that is still ahead in Vladivostok
        s.get(Appointment, clinic["appointment"]).starts_at = datetime.combine(  # type: ignore[union-attr]
            clinic_tomorrow(far_east) + timedelta(days=1), time(10)
        )
    url = f"/sms/send?appointment_id={clinic['appointment']}"
    reg.post_form(url, {"text": textarea(reg.text(url)), "phone": "+79161234567", "key": "t1"})
    (row,) = sent_rows(sessions)
    assert row.state == "sent" and row.sent_at is not None
    sent = row.sent_at.replace(tzinfo=ZoneInfo("UTC"))
    there = sent.astimezone(ZoneInfo(far_east)).strftime("%d.%m.%Y %H:%M")
    page = reg.text(url)
    warning = re.search(r'data-testid="sms-already">([^<]*)<', page)
    assert warning and f"уже отправлено {there}" in warning.group(1)
    for other in ("America/New_York", "UTC"):
        assert sent.astimezone(ZoneInfo(other)).strftime("%d.%m.%Y %H:%M") not in warning.group(1)


def test_a_queued_reminder_of_a_visit_cancelled_meanwhile_never_leaves(
    sessions: sessionmaker[Session], sms_config: Config, sms: Sms, clinic: dict[str, int]
) -> None:
    from clinic.services.settings import read_settings
    from clinic.sms import gateway, ledger

    from .conftest import START

    late = START.replace(hour=19, minute=30)  # 22:30 in Moscow: deferred to the morning
    msg_id, _ = sending.send_single(sessions, sms_config, phone=None, text=None, key="api:q", reminder=True,
                                    appointment_id=clinic["appointment"], clock=lambda: late)  # fmt: skip
    with transaction(sessions) as s:
        assert s.get(SmsMessage, msg_id).state == "queued"  # type: ignore[union-attr]
        s.get(Appointment, clinic["appointment"]).confirmation_status = "cancelled"  # type: ignore[union-attr]
        settings = read_settings(s)
        s.expunge(settings)
    client = gateway.make_client(sms_config, settings)
    try:
        ledger.dispatch_due(
            sessions, client, api_id=settings.sms_api_key, clock=lambda: late + timedelta(hours=11)
        )
    finally:
        client.close()
    with sessions() as s:
        row = s.get(SmsMessage, msg_id)
        assert row is not None and (row.state, row.note) == (
            "skipped",
            "Запись отменена: напоминание не отправлено",
        )
    assert sms.messages() == []


def test_no_reminder_for_a_visit_that_has_begun(
    reg: Web, sms: Sms, sessions: sessionmaker[Session], clinic: dict[str, int]
) -> None:
    with transaction(sessions) as s:
        s.get(Appointment, clinic["appointment"]).starts_at = datetime.combine(  # type: ignore[union-attr]
            clinic_tomorrow() - timedelta(days=2), time(10)
        )
    url = f"/sms/send?appointment_id={clinic['appointment']}"
    page = reg.text(url)
    assert 'data-testid="sms-blockers"' in page and "Приём уже начался" in page
    assert reg.post_form(url, {"text": "Ждём вас", "phone": "+79161234567", "key": "p1"}).status_code == 422
    assert sms.messages() == [] and sent_rows(sessions) == []
