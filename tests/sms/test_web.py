"""The SMS pages through Flask's test client: roles, the send dialog, templates, mailings
from draft to signed (the worker job sends), the history with filters, groups and CSV, and
the sms.ru callback on the hooks listener."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, time

import pytest
from flask import Flask
from smsru.support import API_ID, Sms
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from web.support import Web

from clinic.config import Config
from clinic.db import transaction
from clinic.models import (
    Appointment,
    Employee,
    SmsMailing,
    SmsMessage,
    SmsPhoneFlag,
    SmsTemplate,
    User,
)
from clinic.sms import jobs
from clinic.smsru.webhook import sign
from clinic.worker.jobs import JobContext
from webhooks.app import create_app

from .conftest import clinic_tomorrow

TOMORROW = clinic_tomorrow()




def _worker(sms_config: Config, sessions: sessionmaker[Session]) -> None:
    jobs.send_due(JobContext(sms_config, sessions))


def test_registrar_sends_from_the_appointment_dialog(
    reg: Web, sms: Sms, clinic: dict[str, int], sessions: sessionmaker[Session]
) -> None:
    page = reg.get(f"/sms/appointment/{clinic['appointment']}")
    assert page.status_code == 302
    dialog = reg.text(page.headers["Location"])
    assert "Мария Петровна, ждём вас" in dialog and "+79161234567" in dialog
    url = f"/sms/send?appointment_id={clinic['appointment']}"
    text = "Мария Петровна, напоминаем о приёме"
    done = reg.post_form(url, {"text": text, "phone": "8 916 123-45-67", "key": "n1"})
    assert done.status_code == 200
    assert 'data-testid="sms-result"' in done.text and "Отправлено" in done.text
    assert API_ID not in done.text
    assert [m["text"] for m in sms.messages(phone="79161234567")] == [text]
    # the same form submitted twice (double click) is one SMS
    reg.post_form(url, {"text": text, "phone": "8 916 123-45-67", "key": "n1"})
    assert len(sms.messages()) == 1
    with sessions() as s:
        row = s.scalars(select(SmsMessage)).one()
        assert (row.appointment_id, row.patient_id, row.source) == (
            clinic["appointment"],
            clinic["patient"],
            "single",
        )


def test_dialog_errors_are_russian_and_nothing_is_sent(reg: Web, sms: Sms, clinic: dict[str, int]) -> None:
    url = f"/sms/send?patient_id={clinic['patient']}"
    empty = reg.post_form(url, {"text": "  ", "phone": "+79161234567", "key": "a"})
    assert empty.status_code == 422 and "Текст сообщения пуст" in empty.text
    bad = reg.post_form(url, {"text": "Привет", "phone": "12", "key": "b"})
    assert bad.status_code == 422 and "Некорректный номер телефона" in bad.text
    long = reg.post_form(url, {"text": "Ж" * 600, "phone": "+79161234567", "key": "c"})
    assert long.status_code == 422 and "Текст слишком длинный" in long.text
    assert sms.messages() == []
    assert reg.get("/sms/send?patient_id=999999").status_code == 404


def test_no_default_template_is_explained_in_the_dialog(
    reg: Web, clinic: dict[str, int], sessions: sessionmaker[Session]
) -> None:
    with transaction(sessions) as s:
        s.get(SmsTemplate, clinic["template"]).is_default = False  # type: ignore[union-attr]
    page = reg.text(f"/sms/send?appointment_id={clinic['appointment']}")
    assert "Нет шаблона по умолчанию" in page


def test_balance_is_json_and_masks_the_key(reg: Web, sms: Sms) -> None:
    response = reg.get("/sms/balance")
    assert response.json == {"balance": "100000.00"}


def test_admin_pages_are_refused_to_a_registrar_server_side(reg: Web) -> None:
    for path in (
        "/sms/templates",
        "/sms/templates/new",
        "/sms/mailings",
        "/sms/mailings/new",
        "/sms/history",
    ):
        assert reg.get(path).status_code == 403, path
    response = reg.client.post("/sms/templates/new", data={"name": "x", "body": "y"})
    assert response.status_code in (400, 403)


def test_template_editor_rejects_unknown_placeholders_and_keeps_one_default(
    admin: Web, clinic: dict[str, int], sessions: sessionmaker[Session]
) -> None:
    bad = admin.post_form(
        "/sms/templates/new", {"name": "Плохой", "recipient_type": "patient", "body": "Здравствуйте, {имя}!"}
    )
    assert bad.status_code == 422 and "Неизвестное поле подстановки {имя}" in bad.text
    nameless = admin.post_form("/sms/templates/new", {"name": "", "recipient_type": "patient", "body": "x"})
    assert "Укажите наименование шаблона" in nameless.text
    ok = admin.post_form(
        "/sms/templates/new",
        {
            "name": "Новое",
            "recipient_type": "patient",
            "is_default": "on",
            "body": "{patient_name}: {date} {time}",
        },
    )
    assert ok.status_code == 302
    with sessions() as s:
        defaults = s.scalars(select(SmsTemplate.name).where(SmsTemplate.is_default.is_(True))).all()
    assert defaults == ["Новое"]
    preview = admin.client.post(
        "/sms/templates/preview",
        json={"body": "{patient_first_patronymic}, {bad}"},
        headers={"X-CSRFToken": admin.csrf("/sms/templates/new")},
    )
    assert preview.json["text"] == "Мария Петровна, {bad}"
    assert preview.json["problems"] == ["Неизвестное поле подстановки {bad}"]
    assert (preview.json["chars"], preview.json["parts"]) == (21, 1)


def test_a_row_without_a_number_is_left_out_and_the_rest_go(
    admin: Web, sms: Sms, clinic: dict[str, int], sessions: sessionmaker[Session], sms_config: Config
) -> None:
    with transaction(sessions) as s:
        s.add(
            Appointment(
                patient_id=clinic["patient_no_phone"],
                doctor_id=clinic["doctor"],
                cabinet_id=clinic["cabinet"],
                starts_at=datetime.combine(TOMORROW, time(11, 0)),
            )
        )
    header = {
        "period_from": TOMORROW.isoformat(),
        "period_to": TOMORROW.isoformat(),
        "template_id": str(clinic["template"]),
    }
    url = admin.post_form("/sms/mailings/new", header).headers["Location"]
    admin.post_form(url, {**header, "action": "fill"})
    assert admin.post_form(url, {**header, "action": "send"}).status_code == 302
    _worker(sms_config, sessions)
    with sessions() as s:
        rows = {r.patient_id: r for r in s.scalars(select(SmsMailing)).one().rows}
        assert rows[clinic["patient_no_phone"]].skip_reason.startswith("Нет номера телефона")
        assert rows[clinic["patient_no_phone"]].message_id is None
        assert rows[clinic["patient"]].message_id is not None
    assert [m["phone"] for m in sms.messages()] == ["79161234567"]
    assert "Не отправлено: Нет номера телефона" in admin.text(url)


def test_mailing_from_draft_to_signed(
    admin: Web, sms: Sms, clinic: dict[str, int], sessions: sessionmaker[Session], sms_config: Config
) -> None:
    tomorrow = TOMORROW
    with transaction(sessions) as s:
        # a second booking tomorrow, for the patient without a phone
        s.add(
            Appointment(
                patient_id=clinic["patient_no_phone"],
                doctor_id=clinic["doctor"],
                cabinet_id=clinic["cabinet"],  # the template names the cabinet
                starts_at=datetime.combine(tomorrow, time(11, 0)),
            )
        )
    header = {
        "period_from": tomorrow.isoformat(),
        "period_to": tomorrow.isoformat(),
        "template_id": str(clinic["template"]),
    }
    created = admin.post_form("/sms/mailings/new", header)
    assert created.status_code == 302
    url = created.headers["Location"]
    filled = admin.post_form(url, {**header, "action": "fill"})
    assert filled.status_code == 302
    page = admin.text(url)
    assert page.count('data-testid="mailing-recipient"') == 2 and 'data-testid="no-phone"' in page
    # the row without a number is named before sending, and would be left out, not block the rest
    assert "Не будет отправлено: Нет номера телефона: введите номер или удалите строку" in page
    with sessions() as s:
        mailing = s.scalars(select(SmsMailing)).one()
        rows = {r.patient_id: r.id for r in mailing.rows}
    fixed = {**header, f"row_phone_{rows[clinic['patient_no_phone']]}": "+7 903 111-22-33"}
    cost = admin.post_form(url, {**fixed, "action": "cost"})
    assert "Стоимость рассылки:" in cost.text
    assert admin.post_form(url, {**fixed, "action": "send"}).status_code == 302
    with sessions() as s:
        assert s.scalars(select(SmsMailing.state)).one() == "sending"
    # another document covering the same visits cannot re-send the reminders
    _worker(sms_config, sessions)
    with sessions() as s:
        assert s.scalars(select(SmsMailing.state)).one() == "sent"
        states = s.scalars(select(SmsMessage.state)).all()
    assert states == ["sent", "sent"]
    assert sorted(m["phone"] for m in sms.messages()) == ["79031112233", "79161234567"]
    page = admin.text(url)
    assert "Отправлено" in page and "&#34;status&#34;: &#34;OK&#34;" in page and API_ID not in page
    signed = admin.post_form(url, {"action": "sign"})
    assert signed.status_code == 302
    locked = admin.post_form(url, {**header, "action": "save"})
    assert locked.status_code == 422 and "изменения запрещены" in locked.text
    again = admin.post_form("/sms/mailings/new", header)
    url2 = again.headers["Location"]
    admin.post_form(url2, {**header, "action": "fill"})
    with sessions() as s:
        second = s.scalars(select(SmsMailing).where(SmsMailing.number == 2)).one()
        row_ids = [r.id for r in second.rows]
    admin.post_form(url2, {**header, f"row_phone_{row_ids[1]}": "+79031112233", "action": "send"})
    _worker(sms_config, sessions)
    assert len(sms.messages()) == 2  # nothing new went out
    assert "(отправлено ранее)" in admin.text(url2)


def test_history_filters_groups_and_csv(
    admin: Web, reg: Web, sms: Sms, clinic: dict[str, int], sessions: sessionmaker[Session]
) -> None:
    reg.post_form(
        f"/sms/send?patient_id={clinic['patient']}&appointment_id=0",
        {"text": "Первое", "phone": "+79161234567", "key": "1"},
    )
    admin.post_form(
        f"/sms/send?patient_id={clinic['patient']}&appointment_id=0",
        {"text": '=HYPERLINK("http://evil.example","Второе")', "phone": "+79161234568", "key": "2"},
    )
    page = admin.text("/sms/history")
    assert page.count('data-testid="history-row"') == 2
    with sessions() as s:
        reg_id = s.scalars(select(User.id).where(User.login == "reg")).one()
    only_reg = admin.text(f"/sms/history?user={reg_id}")
    assert only_reg.count('data-testid="history-row"') == 1 and "Первое" in only_reg
    by_phone = admin.text("/sms/history?patient=9161234568")
    assert by_phone.count('data-testid="history-row"') == 1 and "Второе" in by_phone
    grouped = admin.text("/sms/history?group=user")
    assert grouped.count('data-testid="history-group-row"') == 2
    csv_response = admin.get("/sms/history?format=csv")
    body = csv_response.get_data(as_text=True)
    assert csv_response.mimetype == "text/csv"
    assert body.splitlines()[0].lstrip("\ufeff").startswith("Пользователь;Документ;Дата отправки;Текст")
    assert "Первое" in body and "Второе" in body and API_ID not in body
    texts = [row[3] for row in csv.reader(io.StringIO(body.lstrip("\ufeff")), delimiter=";")][1:]
    assert sorted(texts) == sorted(["Первое", '\'=HYPERLINK("http://evil.example","Второе")'])


def _callback(app: Flask, records: list[str], *, key: str = API_ID, multipart: bool = False):  # type: ignore[no-untyped-def]
    hooks = create_app(app.config["MIS"], public_only=True, session_factory=app.extensions["mis_sessions"])
    form = {f"data[{i}]": r for i, r in enumerate(records)}
    form["hash"] = sign(key, records)
    client = hooks.test_client()
    if multipart:
        return client.post("/smsru/callback", data=form, content_type="multipart/form-data")
    return client.post("/smsru/callback", data=form)


def test_delivery_callbacks_update_the_ledger_and_flag_dead_numbers(
    app: Flask, reg: Web, sms: Sms, clinic: dict[str, int], sessions: sessionmaker[Session]
) -> None:
    reg.post_form(
        f"/sms/send?patient_id={clinic['patient']}&appointment_id=0",
        {"text": "Привет", "phone": "+79161234567", "key": "1"},
    )
    with sessions() as s:
        sms_id = s.scalars(select(SmsMessage.sms_id)).one()
    forged = _callback(app, [f"sms_status\n{sms_id}\n103\n1779958800"], key="wrong")
    assert forged.status_code == 403 and forged.is_json  # sms.ru resends it: nothing is lost
    with sessions() as s:
        assert s.scalars(select(SmsMessage.delivery_code)).one() is None
    for multipart in (False, True, False):  # a duplicate changes nothing
        answer = _callback(app, [f"sms_status\n{sms_id}\n106\n1779958800"], multipart=multipart)
        assert answer.status_code == 200 and answer.get_data(as_text=True) == "100"
    late = _callback(app, [f"sms_status\n{sms_id}\n102\n1779958801"])  # a late pending code
    assert late.get_data(as_text=True) == "100"
    with sessions() as s:
        row = s.scalars(select(SmsMessage)).one()
        assert (row.delivery_code, row.delivery_final) == (106, True)
        flag = s.scalars(select(SmsPhoneFlag)).one()
        assert (flag.phone, flag.patient_id) == ("79161234567", clinic["patient"])
    page = reg.text(f"/sms/send?patient_id={clinic['patient']}")
    assert 'data-testid="sms-flag"' in page
    # messages delivered: one whose delivery predates the failure we recorded says nothing
    # new (the flag stays); a later one means the number works again (the flag goes)
    delivered = {"Раньше": 1779958700, "Позже": int(datetime.now(UTC).timestamp()) + 60}
    flags_after = []
    for n, (text, at) in enumerate(delivered.items(), start=2):
        reg.post_form(
            f"/sms/send?patient_id={clinic['patient']}&appointment_id=0",
            {"text": text, "phone": "+79161234567", "key": str(n)},
        )
        with sessions() as s:
            sent = s.scalars(select(SmsMessage.sms_id).where(SmsMessage.text == text)).one()
        assert _callback(app, [f"sms_status\n{sent}\n103\n{at}"]).get_data(as_text=True) == "100"
        with sessions() as s:
            flags_after.append(s.scalars(select(SmsPhoneFlag.phone)).all())
    assert flags_after == [["79161234567"], []]
    assert 'data-testid="sms-flag"' not in reg.text(f"/sms/send?patient_id={clinic['patient']}")
    garbage = create_app(app.config["MIS"], public_only=True, session_factory=app.extensions["mis_sessions"])
    junk = garbage.test_client().post("/smsru/callback", data=b"\xff\xfe", content_type="text/plain")
    assert junk.status_code == 400


def test_callbacks_from_the_emulator_itself(
    app: Flask, reg: Web, sms: Sms, clinic: dict[str, int], sessions: sessionmaker[Session]
) -> None:
    """The emulator's own signed POSTs (urlencoded) reach the hooks app over HTTP."""
    from smsru.support import ServerThread

    hooks = create_app(app.config["MIS"], public_only=True, session_factory=app.extensions["mis_sessions"])
    server = ServerThread(hooks).start()
    try:
        sms.configure(callback_urls=[f"{server.url}/smsru/callback"], callback_format="urlencoded")
        reg.post_form(
            f"/sms/send?patient_id={clinic['patient']}&appointment_id=0",
            {"text": "Привет", "phone": "+79161234567", "key": "1"},
        )
        sms.advance(30)
        sms.advance(0)
        with sessions() as s:
            row = s.scalars(select(SmsMessage)).one()
            assert (row.delivery_code, row.delivery_text) == (103, "Сообщение доставлено")
        attempts = sms.callbacks()["attempts"]
        assert attempts and all(a["ok"] for a in attempts)
    finally:
        server.stop()


def test_patient_card_and_list_offer_the_dialog_and_show_the_flag(
    reg: Web, clinic: dict[str, int], sessions: sessionmaker[Session]
) -> None:
    card = reg.text(f"/patients/{clinic['patient']}")
    assert (
        f"/sms/send?patient_id={clinic['patient']}" in card and 'data-testid="sms-undeliverable"' not in card
    )
    listing = reg.text("/patients?q=Иванова")
    assert f"/sms/send?patient_id={clinic['patient']}" in listing and "Действия" in listing
    with transaction(sessions) as s:
        s.add(
            SmsPhoneFlag(
                phone="79161234567", patient_id=clinic["patient"], code=106, reason="сбой в телефоне"
            )
        )
    assert 'data-testid="sms-undeliverable"' in reg.text(f"/patients/{clinic['patient']}")
    day = reg.text(f"/schedule?date={TOMORROW.isoformat()}")
    assert f"/sms/appointment/{clinic['appointment']}" in day


def test_quiet_hours_are_on_the_settings_page(admin: Web) -> None:
    page = admin.text("/admin/settings?tab=service")
    assert 'name="sms_quiet_from" type="text" value="0"' in page and "Тихие часы с" in page


def test_stop_list_page_blocks_sends(admin: Web, reg: Web, sms: Sms, clinic: dict[str, int]) -> None:
    assert reg.get("/sms/stoplist").status_code == 403
    bad = admin.post_form("/sms/stoplist", {"phone": "12", "note": ""})
    assert bad.status_code == 422 and "Некорректный номер телефона" in bad.text
    assert admin.post_form("/sms/stoplist", {"phone": "8 916 123-45-67", "note": "отказ"}).status_code == 302
    assert "+79161234567" in admin.text("/sms/stoplist")
    done = reg.post_form(
        f"/sms/send?patient_id={clinic['patient']}", {"text": "Привет", "phone": "+79161234567", "key": "s"}
    )
    assert "Номер в стоп-листе клиники" in done.text
    assert sms.messages() == []


def test_dialog_writes_to_the_doctor_or_the_chief_with_their_templates(
    reg: Web, sms: Sms, clinic: dict[str, int], sessions: sessionmaker[Session]
) -> None:
    with transaction(sessions) as s:
        appointment = s.get(Appointment, clinic["appointment"])
        assert appointment is not None and appointment.doctor is not None
        appointment.doctor.phone = "+79035550011"
        s.add(Employee(last_name="Главный", first_name="Павел", role="chief_doctor", phone="+79035550022"))
        s.add(
            SmsTemplate(
                name="Врачу",
                recipient_type="doctor",
                is_default=True,
                body="К вам {patient_name} {date} в {time}",
            )
        )
    url = f"/sms/send?appointment_id={clinic['appointment']}"
    patient_page = reg.text(url)
    assert (
        'data-testid="sms-to-doctor"' in patient_page and 'data-testid="sms-to-chief_doctor"' in patient_page
    )
    doctor_page = reg.text(url + "&to=doctor")
    assert "+79035550011" in doctor_page and "Смирнов Андрей Викторович" in doctor_page
    assert "К вам Иванова Мария Петровна" in doctor_page  # the doctor's default template
    chief_page = reg.text(url + "&to=chief_doctor")
    assert "+79035550022" in chief_page and "Нет шаблона по умолчанию для главного врача" in chief_page
    assert reg.get(url + "&to=nobody").status_code == 404
    done = reg.post_form(
        url + "&to=doctor",
        {"text": "К вам пациент завтра", "phone": "+79035550011", "key": "d1", "to": "doctor"},
    )
    assert done.status_code == 200 and "Отправлено" in done.text
    assert [m["text"] for m in sms.messages(phone="79035550011")] == ["К вам пациент завтра"]
    with sessions() as s:
        row = s.scalars(select(SmsMessage)).one()
        # not the patient's SMS: no patient in the history, and no "reminder already sent"
        assert (row.patient_id, row.appointment_id) == (None, None)
    assert 'data-testid="sms-already"' not in reg.text(url)


def test_delivery_report_addresses_are_registered_at_sms_ru(admin: Web, reg: Web, sms: Sms) -> None:
    page = admin.text("/sms/callbacks")
    assert "Ни одного адреса" in page and "http://127.0.0.1:" in page  # our hooks address suggested
    url = "https://clinic.example.ru:55055/smsru/callback"
    added = admin.post_form("/sms/callbacks", {"action": "add", "url": url})
    assert added.status_code == 302
    assert sms.call("callback/get")["callback"] == [url]  # sms.ru itself has it now
    listed = admin.text("/sms/callbacks")
    assert 'data-testid="callback-row"' in listed and url in listed and API_ID not in listed
    for bad, message in (
        ("ftp://x.ru/cb", "http:// или https://"),
        ("https://user:pw@x.ru/cb", "логин и пароль"),
        ("https://x.ru:99999/cb", "Некорректный"),
        ("   ", "Введите адрес"),
    ):
        refused = admin.post_form("/sms/callbacks", {"action": "add", "url": bad})
        assert refused.status_code == 422 and message in refused.text
    assert sms.call("callback/get")["callback"] == [url]  # nothing half-registered
    # sms.ru itself may refuse an address (901): shown at the field, nothing registered
    sms.faults({"kind": "api_error", "path": "callback/add", "code": 901, "count": 1})
    refused_by_smsru = admin.post_form(
        "/sms/callbacks", {"action": "add", "url": "https://other.example.ru/cb"}
    )
    assert refused_by_smsru.status_code == 422 and 'data-error-for="url"' in refused_by_smsru.text
    assert sms.call("callback/get")["callback"] == [url]
    admin.post_form("/sms/callbacks", {"action": "delete", "url": url})
    assert sms.call("callback/get").get("callback", []) == []
    assert reg.get("/sms/callbacks").status_code in (302, 403)  # admins only, on the server


def test_callbacks_page_explains_an_unreachable_sms_ru(
    admin: Web, app: Flask, sms_config: Config, sessions: sessionmaker[Session]
) -> None:
    import dataclasses

    app.config["MIS"] = dataclasses.replace(sms_config, smsru_url="http://127.0.0.1:9/")  # discard port
    page = admin.text("/sms/callbacks")
    assert "Запрос к sms.ru не выполнен: нет соединения с sms.ru" in page
    assert "Error" not in page and API_ID not in page


def test_non_ascii_digits_in_ids_are_404_not_500(reg: Web) -> None:
    """Issue 12 point 13: '²'.isdigit() is true but int('²') raises."""
    for raw in ("%C2%B2", "%D9%A1%D9%A2", "99999999999"):
        assert reg.get(f"/sms/send?patient_id={raw}").status_code == 404, raw


@pytest.mark.parametrize(
    ("cell", "shown"),
    [
        ('=HYPERLINK("http://evil","x")', '\'=HYPERLINK("http://evil","x")'),
        ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tTAB", "'\tTAB"),
        ("\r=1", "'\r=1"),
        ("+79161234567", "+79161234567"),
        ("-1.5", "-1.5"),
        ("Иванов", "Иванов"),
        (None, ""),
    ],
)
def test_csv_cells_never_start_a_formula(cell: object, shown: str) -> None:
    """Issue 12 point 14: the history CSV neutralizes cells a spreadsheet would run."""
    from webhooks.ui.sms import safe_cell

    assert safe_cell(cell) == shown


def test_unknown_results_are_counted_and_resent_only_on_purpose(
    admin: Web, sms: Sms, clinic: dict[str, int], sessions: sessionmaker[Session], sms_config: Config
) -> None:
    """Issue 12 point 15: a gateway 5xx makes the batch «результат неизвестен»; the mailing
    says how many, and «Отправить повторно» needs the operator's explicit confirmation."""
    header = {"period_from": TOMORROW.isoformat(), "period_to": TOMORROW.isoformat(),
              "template_id": str(clinic["template"])}  # fmt: skip
    url = admin.post_form("/sms/mailings/new", header).headers["Location"]
    admin.post_form(url, {**header, "action": "fill"})
    sms.faults({"kind": "http_status", "path": "sms/send", "status": 502, "count": 1})
    assert admin.post_form(url, {**header, "action": "send"}).status_code == 302
    _worker(sms_config, sessions)
    with sessions() as s:
        assert s.scalars(select(SmsMailing.state)).one() == "sent"
        assert s.scalars(select(SmsMessage.state)).all() == ["unknown"]
    listing = admin.text("/sms/mailings")
    assert "неизвестно 1" in listing
    page = admin.text(url)
    assert "результат неизвестен 1" in page and 'data-testid="resend-unknown"' in page
    assert "могут получить СМС дважды" in page

    unconfirmed = admin.post_form(url, {"action": "resend_unknown"})
    assert unconfirmed.status_code == 422 and "Подтвердите повторную отправку" in unconfirmed.text
    _worker(sms_config, sessions)
    assert len(sms.messages()) == 0  # the 502 sent nothing, and nothing was resent unasked

    confirmed = admin.post_form(url, {"action": "resend_unknown", "resend_confirm": "on"})
    assert confirmed.status_code == 302
    _worker(sms_config, sessions)
    assert [m["phone"] for m in sms.messages()] == ["79161234567"]
    with sessions() as s:
        states = sorted(s.scalars(select(SmsMessage.state)).all())
        assert states == ["sent", "unknown"]  # the old row keeps its history
        assert s.scalars(select(SmsMailing.state)).one() == "sent"
    page = admin.text(url)
    assert "отправлено 1, ошибок 0, результат неизвестен 0" in page
    assert admin.post_form(url, {"action": "resend_unknown", "resend_confirm": "on"}).status_code == 422


def test_counter_and_preview_refuse_hostile_json(admin: Web) -> None:
    """Issue 12 point 13: deep nesting raised RecursionError (a 500) in the dialog's counter
    and the template preview."""
    token = admin.csrf("/sms/templates/new")
    for url in ("/sms/count", "/sms/templates/preview"):
        deep = admin.client.post(url, data="[" * 50_000, content_type="application/json",
                                 headers={"X-CSRFToken": token})
        assert deep.status_code == 400 and "вложенность" in deep.get_json()["error"], url
        ok = admin.client.post(url, json={"text": "Привет", "body": "Привет"}, headers={"X-CSRFToken": token})
        assert ok.status_code == 200, url
