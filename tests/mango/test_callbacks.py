"""The emulated robot calls a task and POSTs {"id", "status"} to the clinic's webhook.

/_emulator/call is synchronous (it answers after the webhook has answered), so a test can
check what the receiver got, or that it got nothing, right after the call returns. Auto-dial
runs on a thread; those tests wait on the receiver's queue and on wait_for_calls.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from urllib.parse import parse_qs

from clinic.mango import MangoClient, Task

from .support import CAMPAIGN, RunningEmulator, WebhookReceiver, admin

# An id as the clinic's exchange log shows it arriving from Mango.
APPOINTMENT_ID = "00000144-0070-47c0-0020-1ac100000000 1747001127050"


def _emu_with_hook(
    start: Callable[..., RunningEmulator], receiver: WebhookReceiver, **kw: object
) -> RunningEmulator:
    return start(webhook_url=receiver.url, **kw)


def test_confirm_posts_status_1_with_the_tasks_extra_info(
    start_emulator: Callable[..., RunningEmulator],
    make_client: Callable[..., MangoClient],
    receiver: WebhookReceiver,
) -> None:
    emu = _emu_with_hook(start_emulator, receiver)
    task_id = make_client(emu).add_task(CAMPAIGN, Task(number="79001234567", comment=APPOINTMENT_ID))
    outcome = admin(emu, "call", {"task_id": task_id, "digit": "1"}).json()
    got = receiver.requests.get_nowait()
    assert got.path == "/MangoOffice/UpdateStatus"
    assert got.content_type == "application/json"
    assert json.loads(got.body) == {"id": APPOINTMENT_ID, "status": 1}
    # The webhook's answer is recorded on the call and on the task.
    assert outcome["webhook"]["http_status"] == 204
    assert outcome["webhook"]["status_sent"] == 1
    task = admin(emu, f"tasks/{task_id}", method="GET").json()
    assert task["status"] == 4 and task["status_reason"] == 1
    assert [w["http_status"] for w in task["webhooks"]] == [204]
    assert task["attempts"][0]["number"] == "1"


def test_cancel_posts_status_2(
    start_emulator: Callable[..., RunningEmulator],
    make_client: Callable[..., MangoClient],
    receiver: WebhookReceiver,
) -> None:
    emu = _emu_with_hook(start_emulator, receiver)
    task_id = make_client(emu).add_task(CAMPAIGN, Task(number="79001234567", comment="A-2"))
    admin(emu, "call", {"task_id": task_id, "digit": "2"})
    assert json.loads(receiver.requests.get_nowait().body) == {"id": "A-2", "status": 2}


def test_other_digit_or_no_answer_posts_nothing(
    start_emulator: Callable[..., RunningEmulator],
    make_client: Callable[..., MangoClient],
    receiver: WebhookReceiver,
) -> None:
    emu = _emu_with_hook(start_emulator, receiver)
    client = make_client(emu)
    pressed_3 = client.add_task(CAMPAIGN, Task(number="79000000001", comment="A"))
    silent = client.add_task(CAMPAIGN, Task(number="79000000002", comment="B"))
    assert admin(emu, "call", {"task_id": pressed_3, "digit": "3"}).json()["webhook"] is None
    assert admin(emu, "call", {"task_id": silent, "digit": None}).json()["webhook"] is None
    assert receiver.requests.empty()
    statuses = {t["task_id"]: t["status"] for t in admin(emu, "tasks", method="GET").json()["tasks"]}
    assert statuses == {pressed_3: 4, silent: 1}  # an unanswered task stays queued


def test_webhook_error_answer_is_recorded(
    start_emulator: Callable[..., RunningEmulator],
    make_client: Callable[..., MangoClient],
    receiver: WebhookReceiver,
) -> None:
    emu = _emu_with_hook(start_emulator, receiver)
    receiver.status = 500
    task_id = make_client(emu).add_task(CAMPAIGN, Task(number="79001234567", comment="A"))
    hook = admin(emu, "call", {"task_id": task_id, "digit": "1"}).json()["webhook"]
    assert (hook["http_status"], hook["response_body"], hook["error"]) == (500, "nope", None)


def test_unreachable_webhook_is_recorded_as_an_error(
    start_emulator: Callable[..., RunningEmulator], make_client: Callable[..., MangoClient]
) -> None:
    with socket.socket() as blocker:  # bound, not listening: connections are refused
        blocker.bind(("127.0.0.1", 0))
        emu = start_emulator(
            webhook_url=f"http://127.0.0.1:{blocker.getsockname()[1]}/MangoOffice/UpdateStatus"
        )
        task_id = make_client(emu).add_task(CAMPAIGN, Task(number="79001234567", comment="A"))
        hook = admin(emu, "call", {"task_id": task_id, "digit": "1"}).json()["webhook"]
    assert hook["http_status"] is None
    assert hook["error"].startswith("ConnectionError")


def test_extra_info_can_come_from_a_custom_field(
    start_emulator: Callable[..., RunningEmulator],
    make_client: Callable[..., MangoClient],
    receiver: WebhookReceiver,
) -> None:
    emu = _emu_with_hook(start_emulator, receiver, info_field="custom:5905")
    task = Task(number="79001234567", comment="ignored", custom_fields={5905: "Иванов Иван"})
    task_id = make_client(emu).add_task(CAMPAIGN, task)
    admin(emu, "call", {"task_id": task_id, "digit": "1"})
    assert json.loads(receiver.requests.get_nowait().body) == {"id": "Иванов Иван", "status": 1}


def test_template_format_pastes_the_id_without_quotes(
    start_emulator: Callable[..., RunningEmulator],
    make_client: Callable[..., MangoClient],
    receiver: WebhookReceiver,
) -> None:
    emu = _emu_with_hook(start_emulator, receiver, webhook_format="template")
    task_id = make_client(emu).add_task(CAMPAIGN, Task(number="79001234567", comment="12345"))
    admin(emu, "call", {"task_id": task_id, "digit": "2"})
    body = receiver.requests.get_nowait().body.decode()
    assert body == '{\n  "id": 12345,\n  "status": 2\n}'
    assert json.loads(body) == {"id": 12345, "status": 2}  # numeric ids survive; text ids would not


def test_form_format(
    start_emulator: Callable[..., RunningEmulator],
    make_client: Callable[..., MangoClient],
    receiver: WebhookReceiver,
) -> None:
    emu = _emu_with_hook(start_emulator, receiver, webhook_format="form")
    task_id = make_client(emu).add_task(CAMPAIGN, Task(number="79001234567", comment=APPOINTMENT_ID))
    admin(emu, "call", {"task_id": task_id, "digit": "1"})
    got = receiver.requests.get_nowait()
    assert got.content_type == "application/x-www-form-urlencoded"
    assert parse_qs(got.body.decode()) == {"id": [APPOINTMENT_ID], "status": ["1"]}


def test_auto_dial_calls_new_tasks_by_itself(
    start_emulator: Callable[..., RunningEmulator],
    make_client: Callable[..., MangoClient],
    receiver: WebhookReceiver,
) -> None:
    emu = _emu_with_hook(start_emulator, receiver, auto_dial="2")
    client = make_client(emu)
    first = client.add_task(CAMPAIGN, Task(number="79000000001", comment="A1"))
    client.push_tasks(CAMPAIGN, [Task(number="79000000002", comment="A2")])
    bodies = sorted((json.loads(receiver.next().body) for _ in range(2)), key=lambda b: b["id"])
    assert bodies == [{"id": "A1", "status": 2}, {"id": "A2", "status": 2}]
    assert emu.emulator.wait_for_calls(2, timeout=10)
    report = client.campaign_report(CAMPAIGN)
    assert report.digit(first) == "2"
    assert {t["status"] for t in admin(emu, "tasks", method="GET").json()["tasks"]} == {4}


def test_dial_pending_calls_every_queued_task(
    start_emulator: Callable[..., RunningEmulator],
    make_client: Callable[..., MangoClient],
    receiver: WebhookReceiver,
) -> None:
    emu = _emu_with_hook(start_emulator, receiver)
    client = make_client(emu)
    client.push_tasks(CAMPAIGN, [Task(number=f"7900000000{i}", comment=f"A{i}") for i in range(3)])
    calls = admin(emu, "dial-pending", {"digit": "1"}).json()["calls"]
    assert len(calls) == 3
    got = sorted(json.loads(receiver.requests.get_nowait().body)["id"] for _ in range(3))
    assert got == ["A0", "A1", "A2"]
    assert admin(emu, "dial-pending", {"digit": "1"}).json()["calls"] == []  # nothing left


def test_call_on_unknown_or_deleted_task_is_refused(emu: RunningEmulator, client: MangoClient) -> None:
    assert admin(emu, "call", {"task_id": 1, "digit": "1"}).status_code == 404
    task_id = client.add_task(CAMPAIGN, Task(number="79001234567"))
    client.delete_task(CAMPAIGN, task_id)
    assert admin(emu, "call", {"task_id": task_id, "digit": "1"}).status_code == 409
    assert admin(emu, "call", {"digit": "1"}).status_code == 400


def test_webhook_url_can_be_set_at_run_time(
    emu: RunningEmulator, client: MangoClient, receiver: WebhookReceiver
) -> None:
    task_id = client.add_task(CAMPAIGN, Task(number="79001234567", comment="late"))
    assert admin(emu, "config", {"webhook_url": receiver.url}).json()["webhook_url"] == receiver.url
    admin(emu, "call", {"task_id": task_id, "digit": "1"})
    assert json.loads(receiver.requests.get_nowait().body) == {"id": "late", "status": 1}


def test_config_refuses_bad_or_start_up_only_values(emu: RunningEmulator) -> None:
    assert admin(emu, "config", {"webhook_format": "xml"}).status_code == 400
    assert admin(emu, "config", {"api_salt": "x"}).status_code == 400
    current = admin(emu, "config", method="GET").json()
    assert current["webhook_format"] == "json"
    assert "api_salt" not in current
