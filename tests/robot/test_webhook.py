"""POST /MangoOffice/UpdateStatus on the hooks listener: bodies, protection, answers,
idempotency, stale callbacks, and the exchange log."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import time, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from clinic.config import Config
from clinic.models import Appointment, ExchangeLogEntry, ExternalSystem, utcnow
from clinic.robot.export import export_day
from clinic.robot.status import ROBOT_CANCEL_REASON
from clinic.robot.systems import ClientOptions
from webhooks.app import create_app
from webhooks.hook_log import exchange_row, store_row

from .conftest import SECRET, Clinic
from .support import RunningEmulator

URL = "/MangoOffice/UpdateStatus"


@pytest.fixture()
def hooks(config: Config, sessions: sessionmaker[Session]) -> FlaskClient:
    app: Flask = create_app(config, public_only=True, session_factory=sessions)
    return app.test_client()


@pytest.fixture()
def sent(
    sessions: sessionmaker[Session],
    clinic: Clinic,
    system_id: int,
    emu: RunningEmulator,
    options: ClientOptions,
) -> int:
    """An appointment exported to Mango; its id is the «Доп. информация» sent back."""
    appointment = clinic.appointment(at=time(10, 0))
    export_day(sessions, system_id, clinic.day, options=options)
    return appointment


def post(hooks: FlaskClient, body: object, *, token: str = SECRET, **kw: object):  # type: ignore[no-untyped-def]
    return hooks.post(f"{URL}?token={token}", json=body, **kw)


def test_status_1_confirms(hooks: FlaskClient, sent: int, clinic: Clinic) -> None:
    reply = post(hooks, {"id": str(sent), "status": 1})

    assert reply.status_code == 200, reply.text
    assert reply.json["result"] == "applied"
    a = clinic.get(sent)
    assert a.extra_info == "Запись подтверждена"
    assert (a.confirmation_status, a.confirmation_source) == ("confirmed", "mango")
    assert a.confirmed_at is not None


def test_status_2_cancels_and_id_may_be_a_number(hooks: FlaskClient, sent: int, clinic: Clinic) -> None:
    reply = post(hooks, {"id": sent, "status": 2})

    assert reply.status_code == 200
    a = clinic.get(sent)
    assert a.extra_info == "Запись отменена"
    assert a.confirmation_status == "cancelled"
    # the patient's cancellation frees the slot like staff do (clinic/robot/status.py)
    assert (a.status, a.cancel_reason) == ("cancelled", ROBOT_CANCEL_REASON)


def test_form_encoded_body(hooks: FlaskClient, sent: int, clinic: Clinic) -> None:
    reply = hooks.post(f"{URL}?token={SECRET}", data={"id": str(sent), "status": "1"})

    assert reply.status_code == 200
    assert clinic.get(sent).confirmation_status == "confirmed"


def test_the_manuals_literal_template_body(hooks: FlaskClient, sent: int, clinic: Clinic) -> None:
    raw = '{\n  "id": ' + str(sent) + ',\n  "status": 2\n}'
    reply = hooks.post(f"{URL}?token={SECRET}", data=raw, content_type="application/json")

    assert reply.status_code == 200
    assert clinic.get(sent).confirmation_status == "cancelled"


def test_token_in_header(hooks: FlaskClient, sent: int, clinic: Clinic) -> None:
    reply = hooks.post(URL, json={"id": str(sent), "status": 1}, headers={"X-Webhook-Token": SECRET})

    assert reply.status_code == 200


def test_repeated_callback_changes_nothing(hooks: FlaskClient, sent: int, clinic: Clinic) -> None:
    assert post(hooks, {"id": str(sent), "status": 1}).json["result"] == "applied"
    before = clinic.get(sent)

    again = post(hooks, {"id": str(sent), "status": 1})

    assert again.status_code == 200
    assert again.json["result"] == "repeated"
    after = clinic.get(sent)
    assert (after.extra_info, after.confirmed_at, after.updated_at) == (
        before.extra_info,
        before.confirmed_at,
        before.updated_at,
    )


def test_a_later_robot_answer_replaces_the_earlier(hooks: FlaskClient, sent: int, clinic: Clinic) -> None:
    post(hooks, {"id": str(sent), "status": 1})
    post(hooks, {"id": str(sent), "status": 2})

    assert clinic.get(sent).extra_info == "Запись отменена"


def test_staff_note_in_extra_info_is_kept(
    hooks: FlaskClient, sessions: sessionmaker[Session], sent: int, clinic: Clinic
) -> None:
    with sessions() as session, session.begin():
        a = session.get(Appointment, sent)
        assert a is not None
        a.extra_info = "Просит перезвонить после 18:00"

    post(hooks, {"id": str(sent), "status": 1})

    assert clinic.get(sent).extra_info == "Запись подтверждена\nПросит перезвонить после 18:00"


def test_stale_callback_does_not_overwrite_a_later_staff_confirmation(
    hooks: FlaskClient, sessions: sessionmaker[Session], sent: int, clinic: Clinic
) -> None:
    with sessions() as session, session.begin():
        a = session.get(Appointment, sent)
        assert a is not None
        a.confirmation_status, a.confirmation_source, a.confirmed_at = "confirmed", "registrar", utcnow()

    reply = post(hooks, {"id": str(sent), "status": 2})

    assert reply.status_code == 200 and reply.json["result"] == "stale"
    a = clinic.get(sent)
    assert (a.confirmation_status, a.confirmation_source, a.extra_info) == ("confirmed", "registrar", "")


def test_stale_callback_for_a_moved_appointment(
    hooks: FlaskClient, sessions: sessionmaker[Session], sent: int, clinic: Clinic
) -> None:
    with sessions() as session, session.begin():
        a = session.get(Appointment, sent)
        assert a is not None
        a.starts_at = a.starts_at + timedelta(hours=2)

    assert post(hooks, {"id": str(sent), "status": 1}).json["result"] == "stale"
    assert clinic.get(sent).confirmation_status == ""


def test_stale_callback_for_a_cancelled_appointment(
    hooks: FlaskClient, sessions: sessionmaker[Session], sent: int, clinic: Clinic
) -> None:
    with sessions() as session, session.begin():
        a = session.get(Appointment, sent)
        assert a is not None
        a.status = "cancelled"

    assert post(hooks, {"id": str(sent), "status": 1}).json["result"] == "stale"
    assert clinic.get(sent).extra_info == ""


def test_unknown_id_is_404(hooks: FlaskClient, sent: int) -> None:
    reply = post(hooks, {"id": "999999", "status": 1})

    assert reply.status_code == 404
    assert "не найдена" in reply.json["error"]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"id": "1", "status": 3}, "status"),
        ({"id": "1", "status": "да"}, "status"),
        ({"id": "1", "status": True}, "status"),
        ({"id": "1"}, "status"),
        ({"status": 1}, "id"),
        ({"id": None, "status": 1}, "id"),
        ({"id": "", "status": 1}, "id"),
        ([1, 2], "объект"),
        ("text", "объект"),
    ],
)
def test_bad_body_is_400_with_a_reason(hooks: FlaskClient, sent: int, body: object, reason: str) -> None:
    reply = post(hooks, body)

    assert reply.status_code == 400
    assert reason in reply.json["error"]


@pytest.mark.parametrize("raw", [b"", b"{not json", b"\xff\xfe", b"id=1&status=1&"])
def test_unparseable_body_is_400(hooks: FlaskClient, sent: int, raw: bytes) -> None:
    reply = hooks.post(f"{URL}?token={SECRET}", data=raw, content_type="application/json")

    assert reply.status_code == 400
    assert reply.is_json and reply.json["error"]


def test_oversized_body_is_413_and_logged(
    hooks: FlaskClient, sessions: sessionmaker[Session], sent: int
) -> None:
    reply = hooks.post(f"{URL}?token={SECRET}", data=b"x" * 70_000, content_type="application/json")

    assert reply.status_code == 413 and reply.is_json
    with sessions() as session:
        row = session.scalars(select(ExchangeLogEntry).where(ExchangeLogEntry.direction == "in")).one()
    assert row.http_status == 413 and "70000 байт не сохранено" in row.payload
    assert SECRET not in row.payload


def test_get_is_405_json(hooks: FlaskClient) -> None:
    reply = hooks.get(URL)

    assert reply.status_code == 405 and reply.is_json


def test_missing_or_wrong_token_is_403(hooks: FlaskClient, sent: int, clinic: Clinic) -> None:
    assert post(hooks, {"id": str(sent), "status": 1}, token="").status_code == 403
    assert post(hooks, {"id": str(sent), "status": 1}, token=SECRET + "x").status_code == 403
    assert clinic.get(sent).confirmation_status == ""


def test_no_protection_configured_refuses_everything(
    hooks: FlaskClient, sessions: sessionmaker[Session], sent: int
) -> None:
    with sessions() as session, session.begin():
        for system in session.scalars(select(ExternalSystem)):
            system.webhook_secret = ""
            system.webhook_ips = ""

    reply = hooks.post(URL, json={"id": str(sent), "status": 1})

    assert reply.status_code == 403
    assert "не защищён" in reply.json["error"]


def test_ip_allow_list(
    hooks: FlaskClient, sessions: sessionmaker[Session], sent: int, clinic: Clinic
) -> None:
    with sessions() as session, session.begin():
        for system in session.scalars(select(ExternalSystem)):
            system.webhook_secret = ""
            system.webhook_ips = "81.88.80.0/22 10.1.2.3"

    outside = hooks.post(URL, json={"id": str(sent), "status": 1}, environ_base={"REMOTE_ADDR": "127.0.0.1"})
    inside = hooks.post(URL, json={"id": str(sent), "status": 1}, environ_base={"REMOTE_ADDR": "81.88.82.36"})

    assert outside.status_code == 403
    assert inside.status_code == 200
    assert clinic.get(sent).confirmation_status == "confirmed"


def test_allow_list_and_secret_both_required_when_both_set(
    hooks: FlaskClient, sessions: sessionmaker[Session], sent: int
) -> None:
    with sessions() as session, session.begin():
        for system in session.scalars(select(ExternalSystem)):
            system.webhook_ips = "10.1.2.3"

    right_ip_no_token = hooks.post(
        URL, json={"id": str(sent), "status": 1}, environ_base={"REMOTE_ADDR": "10.1.2.3"}
    )
    token_wrong_ip = post(hooks, {"id": str(sent), "status": 1})

    assert right_ip_no_token.status_code == 403
    assert token_wrong_ip.status_code == 403


def test_every_request_and_answer_is_logged_with_the_token_masked(
    hooks: FlaskClient, sessions: sessionmaker[Session], sent: int
) -> None:
    post(hooks, {"id": str(sent), "status": 1})
    post(hooks, {"id": "nope", "status": 1})
    post(hooks, {"id": str(sent), "status": 9})
    post(hooks, {"id": str(sent), "status": 1}, token="wrong-token-value")

    with sessions() as session:
        rows = session.scalars(
            select(ExchangeLogEntry).where(ExchangeLogEntry.direction == "in").order_by(ExchangeLogEntry.id)
        ).all()
    assert [r.http_status for r in rows] == [200, 404, 400, 403]
    assert all(r.owner == "Mango Office UpdateStatus" for r in rows)
    assert json.loads(rows[0].payload.split("\n", 1)[1]) == {"id": str(sent), "status": 1}
    assert json.loads(rows[0].response)["result"] == "applied"
    text = " ".join(r.payload + r.response for r in rows)
    assert SECRET not in text and "wrong-token-value" not in text
    assert '"token": "***"' in rows[0].payload


def test_database_trouble_is_503_json_never_500(
    hooks: FlaskClient, sent: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy.exc import OperationalError

    def broken(*_a: object, **_k: object) -> None:
        raise OperationalError("UPDATE appointments", {}, Exception("database is locked"))

    monkeypatch.setattr("webhooks.hooks_mango.apply", broken)

    reply = post(hooks, {"id": str(sent), "status": 1})

    assert reply.status_code == 503
    assert "повторите" in reply.json["error"]


# ---------------------------------------------------------------- hostile bodies (issue 10, point 19)

_SPACES = b'{"id":' + b" " * (64 * 1024 - 6)  # 64 KB: the most the listener reads
HOSTILE: list[tuple[str, bytes, str]] = [
    ("nested 100k deep", b"[" * 100_000 + b"]" * 100_000, "application/json"),
    ("nested 30k deep", b"[" * 30_000 + b"]" * 30_000, "application/json"),
    ("objects 10k deep", b'{"a":' * 10_000 + b"1" + b"}" * 10_000, "application/json"),
    ("id 10k deep", b'{"status":1,"id":' + b"[" * 10_000 + b"]" * 10_000 + b"}", "application/json"),
    ("lone surrogate in id", b'{"id":"\\ud800","status":1}', "application/json"),
    ("surrogate pair halves swapped", b'{"id":"\\udc00\\ud800","status":2}', "application/json"),
    ("NUL in id", b'{"id":"1\\u0000","status":1}', "application/json"),
    ("control character in id", b'{"id":"1\\u0007","status":1}', "application/json"),
    ("superscript two as status", '{"id":"1","status":"²"}'.encode(), "application/json"),
    ("arabic digit as status", '{"id":"1","status":"١"}'.encode(), "application/json"),
    ("form status superscript", "id=1&status=²".encode(), "application/x-www-form-urlencoded"),
    ("form id with NUL", b"id=1%00&status=1", "application/x-www-form-urlencoded"),
    ("form id not UTF-8", b"id=%ED%A0%80&status=1", "application/x-www-form-urlencoded"),
    ("64 KB of spaces after id", _SPACES, "application/json"),
    ("spaces then status", b'{"id":' + b" " * 3000 + b',"status":1}', "application/json"),
    ("status with 5000 digits", b'{"id":"1","status":' + b"1" * 5000 + b"}", "application/json"),
    ("status NaN", b'{"id":"1","status":NaN}', "application/json"),
    ("status infinity", b'{"id":"1","status":1e999}', "application/json"),
    ("status 1.5", b'{"id":"1","status":1.5}', "application/json"),
    ("status null", b'{"id":"1","status":null}', "application/json"),
    ("status list", b'{"id":"1","status":[1]}', "application/json"),
    ("id float", b'{"id":1.5,"status":1}', "application/json"),
    ("id object", b'{"id":{"a":1},"status":1}', "application/json"),
    ("id 65 characters", b'{"id":"' + b"7" * 65 + b'","status":1}', "application/json"),
    ("id with 5000 digits", b'{"id":' + b"7" * 5000 + b',"status":1}', "application/json"),
    ("top-level null", b"null", "application/json"),
    ("top-level number", b"12", "application/json"),
    ("empty", b"", "application/json"),
    ("only whitespace", b" \n\t ", "application/json"),
    ("not UTF-8", b"\xff\xfe\x00\x01", "application/json"),
    ("CESU surrogate bytes", b'{"id":"\xed\xa0\x80","status":1}', "application/json"),
    ("NUL bytes", b"\x00" * 1000, "application/json"),
    ("loose shape, no colon", b'{"id" 5, "status": 1}', "application/json"),
    ("multipart junk", b"--x\r\nContent-Disposition: form-data\r\n\r\n1\r\n--x--", "multipart/form-data"),
    ("huge", b"x" * 1_000_000, "application/json"),
    ("unknown id", b'{"id":"424242","status":1}', "application/json"),
]


def _log_rows(sessions: sessionmaker[Session]) -> list[ExchangeLogEntry]:
    with sessions() as session:
        query = (
            select(ExchangeLogEntry).where(ExchangeLogEntry.direction == "in").order_by(ExchangeLogEntry.id)
        )
        return list(session.scalars(query))


@pytest.mark.parametrize(("raw", "content_type"), [h[1:] for h in HOSTILE], ids=[h[0] for h in HOSTILE])
def test_hostile_body_is_a_json_4xx_and_logged(
    hooks: FlaskClient,
    sessions: sessionmaker[Session],
    sent: int,
    clinic: Clinic,
    raw: bytes,
    content_type: str,
) -> None:
    reply = hooks.post(f"{URL}?token={SECRET}", data=raw, content_type=content_type)

    assert 400 <= reply.status_code < 500, reply.text
    assert reply.is_json and reply.json["error"]
    (row,) = _log_rows(sessions)
    assert row.http_status == reply.status_code and row.owner == "Mango Office UpdateStatus"
    assert json.loads(row.response) == reply.json
    assert clinic.get(sent).confirmation_status == ""  # nothing half-applied


def test_malformed_values_get_a_russian_reason(hooks: FlaskClient, sent: int) -> None:
    def reason(raw: bytes) -> str:
        reply = hooks.post(f"{URL}?token={SECRET}", data=raw, content_type="application/json")
        assert reply.status_code == 400
        return str(reply.json["error"])

    assert "глубоко" in reason(b"[" * 30_000 + b"]" * 30_000)
    assert "недопустимые символы" in reason(b'{"id":"\\ud800","status":1}')
    assert "status" in reason('{"id":"1","status":"²"}'.encode())
    assert "не JSON" in reason(_SPACES)


def test_a_status_given_as_a_string_of_ascii_digits_still_works(
    hooks: FlaskClient, sent: int, clinic: Clinic
) -> None:
    reply = hooks.post(f"{URL}?token={SECRET}", data={"id": f" {sent} ", "status": " 2 "})

    assert reply.status_code == 200
    assert clinic.get(sent).confirmation_status == "cancelled"


def test_the_loose_reader_takes_an_id_with_commas_and_quotes(
    hooks: FlaskClient, sessions: sessionmaker[Session], sent: int, clinic: Clinic
) -> None:
    raw = '{ "id" : "' + str(sent) + '" ,\n "status" : "1" }'
    assert hooks.post(f"{URL}?token={SECRET}", data=raw, content_type="application/json").status_code == 200
    assert clinic.get(sent).confirmation_status == "confirmed"
    odd = hooks.post(
        f"{URL}?token={SECRET}", data='{"id": a, b "c", "status": 2}', content_type="application/json"
    )
    assert odd.status_code == 404 and odd.json["id"] == 'a, b "c'


def test_parsing_never_backtracks_on_a_64_kb_body() -> None:
    """The old loose-JSON regex took 12 s on `{"id":` + 3,000 spaces (and was run under the
    database write lock); at 64 KB it would not finish for hours. Run in a child process so a
    regression fails on the deadline instead of hanging the suite."""
    script = (
        "from clinic.robot.webhook import BadRequest, parse_body\n"
        "for raw in (b'{\"id\":' + b' ' * 65530, b'{\"id\":' + b' ' * 65500 + b', \"status\"',"
        " b'{\"id\":' + b', \"status\":' * 5000):\n"
        "    try:\n"
        "        parse_body('application/json', raw)\n"
        "    except BadRequest:\n"
        "        pass\n"
        "print('done')\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "done", done.stderr


def test_a_log_row_with_a_lone_surrogate_or_nul_is_stored_escaped(sessions: sessionmaker[Session]) -> None:
    store_row(
        sessions,
        exchange_row(
            owner="test",
            payload='{"id": "\ud800\x00"}',
            response="ответ \udfff",
            elapsed_ms=0,
            http_status=400,
        ),
    )

    (row,) = _log_rows(sessions)
    assert row.payload == '{"id": "\\ud800\\u0000"}'
    assert row.response == "ответ \\udfff"


def test_a_nul_in_the_query_string_is_logged_escaped(
    hooks: FlaskClient, sessions: sessionmaker[Session], sent: int
) -> None:
    reply = hooks.post(f"{URL}?token={SECRET}&note=a%00b", json={"id": str(sent), "status": 1})

    assert reply.status_code == 200
    (row,) = _log_rows(sessions)
    assert '"note": "a\\u0000b"' in row.payload


def test_refusals_are_logged_without_the_write_lock_held_for_parsing(
    hooks: FlaskClient, sessions: sessionmaker[Session], sent: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Parsing happens before the lock: a bad body never reaches the write step."""
    reached: list[object] = []
    monkeypatch.setattr("webhooks.hooks_mango.apply", lambda *a: reached.append(a))

    reply = hooks.post(f"{URL}?token={SECRET}", data=_SPACES, content_type="application/json")

    assert reply.status_code == 400 and reached == []
    assert [r.http_status for r in _log_rows(sessions)] == [400]
