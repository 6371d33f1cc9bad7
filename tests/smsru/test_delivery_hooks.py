"""POST /smsru/callback on the hooks listener and the sms/status poll (issue 10, points 5
and 20): a status never moves backwards, each record of a signed batch is applied or
refused on its own, hostile requests get a JSON 4xx and an exchange-log row (never a 5xx),
and every sent SMS gets its cost, also after its final status came by callback."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from clinic.config import Config
from clinic.db import transaction
from clinic.models import ClinicSettings, ExchangeLogEntry, SmsMessage
from clinic.sms import delivery
from clinic.smsru.webhook import sign
from webhooks.app import HOOKS_MAX_BODY, create_app

from .support import API_ID, ServerThread, Sms

URL = "/smsru/callback"
T0 = 1_779_958_800  # 2026-05-28 09:00 UTC
OWNER = "sms.ru Отчёты о доставке"


@pytest.fixture()
def settings(sessions: sessionmaker[Session]) -> None:
    with transaction(sessions) as session:
        session.add(ClinicSettings(name="Клиника", sms_api_key=API_ID, timezone="Europe/Moscow"))


@pytest.fixture()
def hooks(config: Config, sessions: sessionmaker[Session], settings: None) -> FlaskClient:
    return create_app(config, public_only=True, session_factory=sessions).test_client()


def add_message(sessions: sessionmaker[Session], sms_id: str, *, sent_ago: timedelta = timedelta(0)) -> int:
    with transaction(sessions) as session:
        now = datetime.now(UTC)
        row = SmsMessage(
            idempotency_key=f"test:{sms_id}",
            source="single",
            phone="79161234567",
            text="Приём завтра в 10:00",
            state="sent",
            created_at=now - sent_ago,
            sent_at=now - sent_ago,
            sms_id=sms_id,
            gateway_code=100,
        )
        session.add(row)
        session.flush()
        return row.id


def message(sessions: sessionmaker[Session], msg_id: int) -> SmsMessage:
    with sessions() as session:
        row = session.get(SmsMessage, msg_id)
        assert row is not None
        return row


def signed(records: list[str], key: str = API_ID) -> dict[str, str]:
    form = {f"data[{i}]": r for i, r in enumerate(records)}
    form["hash"] = sign(key, records)
    return form


def post(hooks: FlaskClient, records: list[str]):  # type: ignore[no-untyped-def]
    return hooks.post(URL, data=signed(records))


def status(sms_id: str, code: int, at: int) -> str:
    return f"sms_status\n{sms_id}\n{code}\n{at}"


def log_rows(sessions: sessionmaker[Session]) -> list[ExchangeLogEntry]:
    with sessions() as session:
        query = select(ExchangeLogEntry).where(ExchangeLogEntry.owner == OWNER).order_by(ExchangeLogEntry.id)
        return list(session.scalars(query))


# ---------------------------------------------------------------- never backwards


def test_a_redelivered_older_batch_never_moves_the_status_back(
    hooks: FlaskClient, sessions: sessionmaker[Session]
) -> None:
    msg = add_message(sessions, "000000-1")
    assert post(hooks, [status("000000-1", 101, T0 + 1)]).text == "100"
    assert post(hooks, [status("000000-1", 102, T0 + 3)]).text == "100"

    again = post(hooks, [status("000000-1", 101, T0 + 1)])  # the first batch, resent

    assert again.status_code == 200 and again.text == "100"
    row = message(sessions, msg)
    assert (row.delivery_code, row.delivery_final) == (102, False)
    assert json.loads(log_rows(sessions)[-1].response)["записи"]["data[0]"].startswith("устарела")


def test_a_final_status_is_never_replaced_by_a_pending_one_even_a_later_one(
    hooks: FlaskClient, sessions: sessionmaker[Session]
) -> None:
    msg = add_message(sessions, "000000-2")
    post(hooks, [status("000000-2", 103, T0 + 5)])
    post(hooks, [status("000000-2", 102, T0 + 3)])
    post(hooks, [status("000000-2", 101, T0 + 60)])  # later, but a step behind

    row = message(sessions, msg)
    assert (row.delivery_code, row.delivery_final) == (103, True)
    assert row.delivery_text == "Сообщение доставлено"


def test_between_final_codes_the_later_record_wins(
    hooks: FlaskClient, sessions: sessionmaker[Session]
) -> None:
    msg = add_message(sessions, "000000-3")
    post(hooks, [status("000000-3", 103, T0 + 5)])
    post(hooks, [status("000000-3", 104, T0 + 2)])  # older: ignored
    assert message(sessions, msg).delivery_code == 103

    post(hooks, [status("000000-3", 110, T0 + 90)])  # «прочитано», later

    assert message(sessions, msg).delivery_code == 110


def test_a_batch_out_of_order_ends_at_the_furthest_step(
    hooks: FlaskClient, sessions: sessionmaker[Session]
) -> None:
    msg = add_message(sessions, "000000-4")

    post(
        hooks,
        [status("000000-4", 103, T0 + 5), status("000000-4", 101, T0 + 1), status("000000-4", 102, T0 + 3)],
    )

    row = message(sessions, msg)
    assert (row.delivery_code, row.delivery_at.replace(tzinfo=UTC)) == (
        103,
        datetime.fromtimestamp(T0 + 5, UTC),
    )


# ---------------------------------------------------------------- one record at a time


def test_one_malformed_record_does_not_discard_the_good_ones(
    hooks: FlaskClient, sessions: sessionmaker[Session], caplog: pytest.LogCaptureFixture
) -> None:
    first, second, third = (add_message(sessions, f"000000-{n}") for n in (11, 12, 13))
    records = [
        status("000000-11", 103, T0 + 5),
        status("000000-12", 103, (T0 + 5) * 1000),  # milliseconds
        status("000000-13", 102, T0 + 3),
        "sms_status\n000000-13\n²\n1779958800",
        "callcheck_status\n202626-48053517\n401\n1779958881",
        "test\n1779958811",
        "sms_status\n000000-99\n103\n1779958800",
    ]

    with caplog.at_level(logging.WARNING):
        reply = post(hooks, records)

    assert reply.status_code == 200 and reply.text == "100"  # the good ones are stored
    assert message(sessions, first).delivery_code == 103
    assert message(sessions, second).delivery_code is None  # left to the sms/status poll
    assert message(sessions, third).delivery_code == 102
    (row,) = log_rows(sessions)
    assert row.http_status == 200
    lines = json.loads(row.response)["записи"]
    assert lines["data[0]"].startswith("применена")
    assert lines["data[1]"].startswith("отклонена") and "миллисекунды" in lines["data[1]"]
    assert lines["data[3]"].startswith("отклонена") and "не число" in lines["data[3]"]
    assert lines["data[4]"].startswith("пропущена") and lines["data[5]"].startswith("пропущена")
    assert lines["data[6]"].startswith("не найдена")
    assert '"hash": "***"' in row.payload and sign(API_ID, records) not in row.payload
    assert not any(r.exc_info for r in caplog.records)


def test_a_resent_batch_changes_nothing(hooks: FlaskClient, sessions: sessionmaker[Session]) -> None:
    msg = add_message(sessions, "000000-21")
    records = [status("000000-21", 101, T0 + 1), status("000000-21", 106, T0 + 4)]
    post(hooks, records)
    before = message(sessions, msg)

    assert post(hooks, records).text == "100"

    after = message(sessions, msg)
    assert (
        (after.delivery_code, after.delivery_at)
        == (before.delivery_code, before.delivery_at)
        == (
            106,
            before.delivery_at,
        )
    )
    lines = json.loads(log_rows(sessions)[-1].response)["записи"]
    assert lines["data[0]"].startswith("устарела") and lines["data[1]"].startswith("повтор")


# ---------------------------------------------------------------- refusals


def test_a_non_ascii_hash_is_a_400_without_a_traceback(
    hooks: FlaskClient, sessions: sessionmaker[Session], caplog: pytest.LogCaptureFixture
) -> None:
    msg = add_message(sessions, "000000-31")
    form = {"data[0]": status("000000-31", 103, T0), "hash": "я" * 64}

    with caplog.at_level(logging.WARNING):
        reply = hooks.post(URL, data=form)

    assert reply.status_code == 400 and reply.is_json and "hash" in reply.json["error"]
    assert not any(r.exc_info for r in caplog.records)
    assert message(sessions, msg).delivery_code is None
    assert [r.http_status for r in log_rows(sessions)] == [400]


def test_a_wrong_signature_is_a_403_so_sms_ru_sends_the_batch_again(
    hooks: FlaskClient, sessions: sessionmaker[Session]
) -> None:
    msg = add_message(sessions, "000000-32")
    records = [status("000000-32", 103, T0)]

    forged = hooks.post(URL, data=signed(records, key="another-key"))

    assert forged.status_code == 403 and "подпись" in forged.json["error"]
    assert message(sessions, msg).delivery_code is None
    assert post(hooks, records).text == "100"  # the same batch, signed by sms.ru
    assert message(sessions, msg).delivery_code == 103


def test_without_a_key_in_the_settings_the_batch_waits(
    config: Config, sessions: sessionmaker[Session]
) -> None:
    hooks = create_app(config, public_only=True, session_factory=sessions).test_client()

    reply = hooks.post(URL, data=signed([status("000000-33", 103, T0)]))

    assert reply.status_code == 403 and "ключ API" in reply.json["error"]


def test_database_trouble_is_a_503_and_the_resent_batch_is_applied(
    hooks: FlaskClient, sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy.exc import OperationalError

    msg = add_message(sessions, "000000-34")
    records = [status("000000-34", 103, T0)]

    def broken(*_a: object, **_k: object) -> None:
        raise OperationalError("UPDATE sms_messages", {}, Exception("database is locked"))

    with monkeypatch.context() as patch:
        patch.setattr("webhooks.hooks_smsru.apply_callback", broken)
        reply = post(hooks, records)
    assert reply.status_code == 503 and reply.is_json and "повторите" in reply.json["error"]
    assert message(sessions, msg).delivery_code is None

    assert post(hooks, records).text == "100"
    assert message(sessions, msg).delivery_code == 103
    assert [r.http_status for r in log_rows(sessions)] == [503, 200]


def _multipart(fields: int) -> bytes:
    parts = [f'--x\r\nContent-Disposition: form-data; name="f{n}"\r\n\r\n1\r\n' for n in range(fields)]
    return ("".join(parts) + "--x--\r\n").encode()


HOSTILE: list[tuple[str, object, str | None]] = [
    ("empty", b"", None),
    ("not a form", b"\xff\xfe", "text/plain"),
    ("JSON body", b'{"data":["x"],"hash":"y"}', "application/json"),
    ("no hash", {"data[0]": status("1-1", 103, T0)}, None),
    ("empty hash", {"data[0]": status("1-1", 103, T0), "hash": " "}, None),
    ("short hash", {"data[0]": status("1-1", 103, T0), "hash": "abc"}, None),
    ("non-hex hash", {"data[0]": status("1-1", 103, T0), "hash": "z" * 64}, None),
    ("non-ASCII hash", {"data[0]": status("1-1", 103, T0), "hash": "я" * 64}, None),
    ("fullwidth hash", {"data[0]": status("1-1", 103, T0), "hash": "０" * 64}, None),
    ("forged hash", {"data[0]": status("1-1", 103, T0), "hash": "0" * 64}, None),
    ("hash only", {"hash": "0" * 64}, None),
    ("data index of 5000 digits", {"data[" + "9" * 5000 + "]": "test\n1", "hash": "0" * 64}, None),
    ("data as a list", {"data": "x", "hash": "0" * 64}, None),
    ("NUL in sms_id (signed)", signed([status("1-1\x00", 103, T0)]), None),
    ("non-ASCII sms_id (signed)", signed([status("１-１", 103, T0)]), None),
    ("milliseconds (signed)", signed([status("1-1", 103, T0 * 1000)]), None),
    ("time of 40 digits (signed)", signed([status("1-1", 103, 10**40)]), None),
    ("code ² (signed)", signed(["sms_status\n1-1\n²\n1779958800"]), None),
    ("code -1 (signed)", signed([status("1-1", -1, T0)]), None),
    ("code of 30 digits (signed)", signed([status("1-1", 10**30, T0)]), None),
    ("fullwidth time (signed)", signed(["sms_status\n1-1\n103\n１７７９９５８８００"]), None),
    ("empty record (signed)", signed([""]), None),
    ("kind only (signed)", signed(["sms_status"]), None),
    ("unknown kind (signed)", signed(["x" * 10_000]), None),
    ("100 garbage records (signed)", signed([f"sms_status\n{n}\nx\ny" for n in range(100)]), None),
    ("too many fields", _multipart(2000), "multipart/form-data; boundary=x"),
    ("multipart without records", _multipart(3), "multipart/form-data; boundary=x"),
    (
        "over the listener's bound",
        b"data%5B0%5D=" + b"x" * HOOKS_MAX_BODY,
        "application/x-www-form-urlencoded",
    ),
    (
        "one field over the bound",
        _multipart(1)[:-7] + b"x" * HOOKS_MAX_BODY + b"\r\n--x--\r\n",
        "multipart/form-data; boundary=x",
    ),
]


@pytest.mark.parametrize(("body", "content_type"), [h[1:] for h in HOSTILE], ids=[h[0] for h in HOSTILE])
def test_hostile_request_is_100_or_a_json_4xx_and_logged(
    hooks: FlaskClient,
    sessions: sessionmaker[Session],
    caplog: pytest.LogCaptureFixture,
    body: object,
    content_type: str | None,
) -> None:
    msg = add_message(sessions, "1-1")

    with caplog.at_level(logging.WARNING):
        reply = (
            hooks.post(URL, data=body, content_type=content_type)
            if content_type
            else hooks.post(URL, data=body)
        )

    assert reply.status_code == 200 or 400 <= reply.status_code < 500, reply.text
    if reply.status_code == 200:
        assert reply.text == "100"
    else:
        assert reply.is_json and reply.json["error"]
    (row,) = log_rows(sessions)
    assert row.http_status == reply.status_code
    assert message(sessions, msg).delivery_code is None
    assert not any(r.exc_info for r in caplog.records)


# ---------------------------------------------------------------- cost (point 5)


@pytest.fixture()
def hooks_server(config: Config, sessions: sessionmaker[Session], settings: None) -> Iterator[str]:
    server = ServerThread(create_app(config, public_only=True, session_factory=sessions)).start()
    yield server.url
    server.stop()


def test_every_sent_sms_gets_its_cost_also_after_the_final_callback(
    sms: Sms, sessions: sessionmaker[Session], hooks_server: str
) -> None:
    """sms/send gives no cost (smsru.md §2.2), sms/status does (§3); the emulator's callbacks
    bring the final status first, and the poll must still ask for the price."""
    sms.configure(callback_urls=[f"{hooks_server}{URL}"], callback_format="urlencoded")
    with sms.client() as client:
        sent = client.send_each({"79161234567": "Приём завтра в 10:00", "79161234568": "я" * 71})
        ids = [r.sms_id for r in sent.recipients]
        assert all(ids) and all(getattr(r, "cost", None) is None for r in sent.recipients)
        msgs = [add_message(sessions, str(sms_id), sent_ago=timedelta(minutes=5)) for sms_id in ids]
        sms.advance(30)  # 101, 102, 103 pushed to our hooks listener

        assert [message(sessions, m).delivery_code for m in msgs] == [103, 103]
        assert [message(sessions, m).cost for m in msgs] == [None, None]

        changed = delivery.poll_statuses(sessions, client, now=datetime.now(UTC))

        assert changed == 2
        assert [message(sessions, m).cost for m in msgs] == [
            Decimal("1.50"),
            Decimal("3.00"),
        ]  # 1 and 2 parts
        assert [message(sessions, m).delivery_code for m in msgs] == [103, 103]
        assert delivery.poll_statuses(sessions, client, now=datetime.now(UTC)) == 0  # nothing left to ask


def test_the_poll_fills_the_cost_while_delivery_is_pending_and_never_steps_back(
    sms: Sms, sessions: sessionmaker[Session], settings: None
) -> None:
    with sms.client() as client:
        (rec,) = client.send_each({"79161234567": "Приём завтра"}).recipients
        msg = add_message(sessions, str(rec.sms_id), sent_ago=timedelta(minutes=5))

        delivery.poll_statuses(sessions, client, now=datetime.now(UTC))
        row = message(sessions, msg)
        assert (row.delivery_code, row.cost) == (100, Decimal("1.50"))

        sms.advance(30)
        delivery.poll_statuses(sessions, client, now=datetime.now(UTC))
        assert message(sessions, msg).delivery_code == 103


def test_a_send_reply_with_a_price_keeps_it_and_one_without_gives_none() -> None:
    """sms/send documents no cost (smsru.md §2.2); should sms.ru add one, it is read."""
    from clinic.smsru.replies import parse_send

    body = {
        "status": "OK",
        "status_code": 100,
        "sms": {
            "79161234567": {"status": "OK", "status_code": 100, "sms_id": "000000-1", "cost": "1.5"},
            "79161234568": {"status": "OK", "status_code": 100, "sms_id": "000000-2"},
        },
    }

    result = parse_send(body, ["79161234567", "79161234568"], test=False)

    assert [r.cost for r in result.recipients] == [Decimal("1.5"), None]


def test_a_get_is_a_json_405_and_logged(hooks: FlaskClient, sessions: sessionmaker[Session]) -> None:
    reply = hooks.get(URL)

    assert reply.status_code == 405 and reply.is_json and reply.headers["Allow"] == "POST"
    assert [r.http_status for r in log_rows(sessions)] == [405]
