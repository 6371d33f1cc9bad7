"""MangoClient against the running emulator: each method and each error mapping."""

from __future__ import annotations

import socket
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from clinic.mango import (
    AccessBlockedError,
    BadSignError,
    CampaignStateError,
    DuplicateNumberError,
    Exchange,
    InvalidKeyError,
    MangoClient,
    ManualClock,
    MissingCustomFieldError,
    MissingParameterError,
    NotFoundError,
    OutcomeUnknownError,
    ServerError,
    Subtask,
    Task,
    TaskLimitError,
    TransportError,
)
from clinic.mango.models import CLINIC_FIELD_NAMES

from .support import CAMPAIGN, KEY, SALT, RunningEmulator, admin


def tasks_in(emu: RunningEmulator) -> list[dict]:
    return admin(emu, "tasks", method="GET").json()["tasks"]


def requests_to(emu: RunningEmulator, path: str) -> list[dict]:
    return [r for r in admin(emu, "requests", method="GET").json()["requests"] if r["path"] == path]


# ---- methods -----------------------------------------------------------------------------


def test_custom_fields_list_the_products_fields(client: MangoClient) -> None:
    fields = client.custom_fields()
    assert [(f.name, f.id, f.field_type) for f in fields] == [
        ("Время", 5901, "text"),
        ("Дата", 5902, "text"),
        ("Услуга", 5903, "text"),
        ("Специалист", 5904, "text"),
        ("Пациент_ФИО", 5905, "text"),
    ]


def test_custom_field_ids_by_name_tolerate_case_and_spaces(
    start_emulator: Callable[..., RunningEmulator], make_client: Callable[..., MangoClient]
) -> None:
    emu = start_emulator(custom_fields={" время ": 11, "Дата": 12, "Город": 13})
    ids = make_client(emu).custom_field_ids(["Время", "Дата"])
    assert ids == {"Время": 11, "Дата": 12}


def test_custom_field_ids_name_every_missing_field(
    start_emulator: Callable[..., RunningEmulator], make_client: Callable[..., MangoClient]
) -> None:
    emu = start_emulator(custom_fields={"Время": 11, "Дата": 12})
    with pytest.raises(MissingCustomFieldError) as caught:
        make_client(emu).custom_field_ids(CLINIC_FIELD_NAMES)
    assert caught.value.missing == ("Услуга", "Специалист", "Пациент_ФИО")


def test_add_task_returns_the_id_and_mango_holds_the_fields(
    emu: RunningEmulator, client: MangoClient
) -> None:
    ids = client.custom_field_ids()
    task = Task(
        number="79001234567",
        name="Иванов Иван",
        comment="00000144-0070-47c0-0020-1ac100000000 1747001127050",
        due_date=datetime(2025, 6, 25, 18, 0, tzinfo=UTC),
        custom_fields={ids["Время"]: "10:30", ids["Дата"]: "26.06.2025", ids["Пациент_ФИО"]: "Иванов Иван"},
        subtasks=[Subtask(number="79007654321", order=0)],
    )
    task_id = client.add_task(CAMPAIGN, task)
    [stored] = tasks_in(emu)
    assert stored["task_id"] == task_id
    assert stored["campaign_id"] == CAMPAIGN
    assert stored["status"] == 1  # queued
    assert stored["fields"] == task.to_json()
    assert stored["fields"]["custom_fields"] == {"5901": "10:30", "5902": "26.06.2025", "5905": "Иванов Иван"}


def test_push_tasks_adds_them_all_without_ids(emu: RunningEmulator, client: MangoClient) -> None:
    client.push_tasks(
        CAMPAIGN, [Task(number="79000000001", comment="a"), Task(number="79000000002", comment="b")]
    )
    stored = tasks_in(emu)
    assert sorted((t["fields"]["number"], t["fields"]["comment"], t["via"]) for t in stored) == [
        ("79000000001", "a", "tasks/push"),
        ("79000000002", "b", "tasks/push"),
    ]


def test_push_tasks_refuses_an_empty_batch_locally(emu: RunningEmulator, client: MangoClient) -> None:
    with pytest.raises(ValueError):
        client.push_tasks(CAMPAIGN, [])
    assert requests_to(emu, "tasks/push") == []


def test_delete_task_removes_it_and_frees_the_number(emu: RunningEmulator, client: MangoClient) -> None:
    first = client.add_task(CAMPAIGN, Task(number="79001234567"))
    client.delete_task(CAMPAIGN, first)
    assert [t["status"] for t in tasks_in(emu)] == [6]  # deleted
    second = client.add_task(CAMPAIGN, Task(number="79001234567"))
    assert second != first


def test_delete_unknown_task_is_not_found(client: MangoClient) -> None:
    with pytest.raises(NotFoundError) as caught:
        client.delete_task(CAMPAIGN, 999)
    assert caught.value.code == 3300


def test_campaign_report_gives_the_pressed_digit(emu: RunningEmulator, client: MangoClient) -> None:
    confirmed = client.add_task(CAMPAIGN, Task(number="79000000001", comment="A1"))
    cancelled = client.add_task(CAMPAIGN, Task(number="79000000002", comment="A2"))
    unanswered = client.add_task(CAMPAIGN, Task(number="79000000003", comment="A3"))
    admin(emu, "call", {"task_id": confirmed, "digit": "1"})
    admin(emu, "call", {"task_id": cancelled, "digit": "2"})
    admin(emu, "call", {"task_id": unanswered, "digit": None})
    report = client.campaign_report(CAMPAIGN)
    assert report.campaign_id == CAMPAIGN
    assert report.digit(confirmed) == "1"
    assert report.digit(cancelled) == "2"
    last = report.last_attempt(unanswered)
    assert last is not None
    assert (last.digit, last.result) == (None, 3)  # no answer
    assert report.last_attempt(confirmed).result == 1  # type: ignore[union-attr]


# ---- error mapping -----------------------------------------------------------------------


def test_wrong_salt_is_bad_sign(emu: RunningEmulator, make_client: Callable[..., MangoClient]) -> None:
    client = make_client(emu, api_salt="not-the-salt")
    with pytest.raises(BadSignError) as caught:
        client.add_task(CAMPAIGN, Task(number="79001234567"))
    assert (caught.value.code, caught.value.http_status) == (3102, 400)
    assert tasks_in(emu) == []


def test_wrong_key_is_invalid_key(emu: RunningEmulator, make_client: Callable[..., MangoClient]) -> None:
    with pytest.raises(InvalidKeyError) as caught:
        make_client(emu, api_key="someone-else").custom_fields()
    assert caught.value.code == 3105


def test_missing_parameter_from_the_server(emu: RunningEmulator, client: MangoClient) -> None:
    # Task.to_json() would refuse this locally; the low-level call shows the server's answer.
    with pytest.raises(MissingParameterError) as caught:
        client.request("task/add", {"campaign_id": CAMPAIGN, "name": "без номера"}, repeatable=False)
    assert caught.value.code == 3103


def test_missing_campaign_id_from_the_server(client: MangoClient) -> None:
    with pytest.raises(MissingParameterError):
        client.request("campaign-report/create", {}, repeatable=True)


def test_duplicate_phone_in_campaign_is_5109(emu: RunningEmulator, client: MangoClient) -> None:
    client.add_task(CAMPAIGN, Task(number="79001234567", comment="first"))
    with pytest.raises(DuplicateNumberError) as caught:
        client.add_task(CAMPAIGN, Task(number="+7 900 123-45-67", comment="second"))
    assert caught.value.code == 5109
    assert [t["fields"]["comment"] for t in tasks_in(emu)] == ["first"]


def test_duplicate_inside_a_push_refuses_the_batch(emu: RunningEmulator, client: MangoClient) -> None:
    with pytest.raises(DuplicateNumberError):
        client.push_tasks(CAMPAIGN, [Task(number="79000000001"), Task(number="79000000001")])
    assert tasks_in(emu) == []


def test_same_phone_in_another_campaign_is_fine(emu: RunningEmulator, client: MangoClient) -> None:
    admin(emu, "campaigns", {"campaign_id": 777, "endless": True})
    client.add_task(CAMPAIGN, Task(number="79001234567"))
    client.add_task(777, Task(number="79001234567"))
    assert len(tasks_in(emu)) == 2


def test_same_phone_after_the_call_is_done_is_fine(emu: RunningEmulator, client: MangoClient) -> None:
    first = client.add_task(CAMPAIGN, Task(number="79001234567"))
    admin(emu, "call", {"task_id": first, "digit": "1"})
    assert client.add_task(CAMPAIGN, Task(number="79001234567")) != first


def test_task_add_into_a_finite_campaign_is_a_state_error(emu: RunningEmulator, client: MangoClient) -> None:
    admin(emu, "campaigns", {"campaign_id": 555, "endless": False})
    with pytest.raises(CampaignStateError) as caught:
        client.add_task(555, Task(number="79001234567"))
    assert caught.value.code == 5106
    client.push_tasks(555, [Task(number="79001234567")])  # push is allowed there (API §4.6.7)


def test_unknown_campaign_is_not_found(client: MangoClient) -> None:
    with pytest.raises(NotFoundError):
        client.add_task(1, Task(number="79001234567"))


def test_campaign_task_limit_is_5107(
    start_emulator: Callable[..., RunningEmulator], make_client: Callable[..., MangoClient]
) -> None:
    client = make_client(start_emulator(max_tasks_per_campaign=2))
    client.push_tasks(CAMPAIGN, [Task(number="79000000001"), Task(number="79000000002")])
    with pytest.raises(TaskLimitError) as caught:
        client.add_task(CAMPAIGN, Task(number="79000000003"))
    assert caught.value.code == 5107


def test_errors_sent_with_http_200_are_still_errors(
    start_emulator: Callable[..., RunningEmulator], make_client: Callable[..., MangoClient]
) -> None:
    client = make_client(start_emulator(errors_as_http_200=True))
    client.add_task(CAMPAIGN, Task(number="79001234567"))
    with pytest.raises(DuplicateNumberError) as caught:
        client.add_task(CAMPAIGN, Task(number="79001234567"))
    assert caught.value.http_status == 200


def test_injected_server_error_on_add_is_not_retried(
    emu: RunningEmulator, make_client: Callable[..., MangoClient]
) -> None:
    client = make_client(emu, max_retries=3)
    admin(emu, "faults", {"path": "task/add", "kind": "error", "result": 5003, "http_status": 500})
    with pytest.raises(ServerError) as caught:
        client.add_task(CAMPAIGN, Task(number="79001234567"))
    assert caught.value.code == 5003
    assert len(requests_to(emu, "task/add")) == 1


def test_injected_server_error_on_a_read_is_retried(
    emu: RunningEmulator, make_client: Callable[..., MangoClient]
) -> None:
    client = make_client(emu, max_retries=3)
    admin(emu, "faults", {"path": "custom-type/list", "kind": "error", "result": 5003, "times": 2})
    assert len(client.custom_fields()) == 5
    assert [r["result"] for r in requests_to(emu, "custom-type/list")] == [5003, 5003, 200]


def test_bad_request_lockout_maps_to_access_blocked(
    start_emulator: Callable[..., RunningEmulator], make_client: Callable[..., MangoClient]
) -> None:
    emu = start_emulator(bad_request_lockout=True)
    bad = make_client(emu, api_salt="wrong")
    with pytest.raises(BadSignError):
        bad.custom_fields()
    with pytest.raises(AccessBlockedError) as caught:
        bad.custom_fields()
    assert caught.value.http_status == 401
    with pytest.raises(AccessBlockedError):
        make_client(emu).custom_fields()  # even good requests, for two minutes
    emu.clock.advance(120)
    assert len(make_client(emu).custom_fields()) == 5


# ---- lost answers: add is never blindly repeated -------------------------------------------


def test_lost_answer_on_add_is_outcome_unknown_and_not_retried(
    emu: RunningEmulator, make_client: Callable[..., MangoClient]
) -> None:
    client = make_client(emu, read_timeout=0.5, max_retries=3)
    admin(emu, "faults", {"path": "task/add", "kind": "delay_after", "seconds": 60})
    with pytest.raises(OutcomeUnknownError) as caught:
        client.add_task(CAMPAIGN, Task(number="79001234567", comment="A1"))
    assert caught.value.sent is True
    # The emulator did create the task: a blind retry would have queued a second call.
    assert emu.emulator.holds.wait_for_waiting(1, timeout=10)
    assert [t["fields"]["comment"] for t in tasks_in(emu)] == ["A1"]
    assert len(requests_to(emu, "task/add")) == 1
    emu.emulator.holds.release_all()
    # The documented way to settle it: repeat by hand; 5109 means the first one went through.
    with pytest.raises(DuplicateNumberError):
        client.add_task(CAMPAIGN, Task(number="79001234567", comment="A1"))


def test_lost_answer_on_a_read_is_retried(
    emu: RunningEmulator, make_client: Callable[..., MangoClient]
) -> None:
    client = make_client(emu, read_timeout=0.5, max_retries=2)
    admin(emu, "faults", {"path": "campaign-report/create", "kind": "delay_after", "seconds": 60})
    report = client.campaign_report(CAMPAIGN)
    assert report.attempts == {}
    assert len(requests_to(emu, "campaign-report/create")) == 2


def test_refused_connection_is_not_sent_and_is_retried(
    emu: RunningEmulator, make_client: Callable[..., MangoClient], clock: ManualClock
) -> None:
    # A port that is bound but not listening refuses connections, and stays ours meanwhile.
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        port = blocker.getsockname()[1]
        client = make_client(emu, base_url=f"http://127.0.0.1:{port}/vpbx/", max_retries=2, backoff_base=1)
        with pytest.raises(TransportError) as caught:
            client.add_task(CAMPAIGN, Task(number="79001234567"))
    assert not isinstance(caught.value, OutcomeUnknownError)
    assert caught.value.sent is False
    assert clock.sleeps == [1, 2]  # connection failures are safe to repeat, even for task/add


# ---- exchange log ------------------------------------------------------------------------


def test_exchange_log_gets_masked_requests_and_raw_answers(
    emu: RunningEmulator, make_client: Callable[..., MangoClient]
) -> None:
    seen: list[Exchange] = []
    client = make_client(emu, on_exchange=seen.append)
    task_id = client.add_task(CAMPAIGN, Task(number="79001234567", comment="A1"))
    [ex] = seen
    assert ex.path == "task/add"
    assert ex.http_status == 200
    assert f'"task_id":{task_id}' in (ex.response or "").replace(" ", "")
    assert ex.request["vpbx_api_key"].endswith(KEY[-4:]) and KEY not in ex.request["vpbx_api_key"]
    assert '"comment":"A1"' in ex.request["json"]
    assert all(SALT not in v for v in ex.request.values())


def test_broken_exchange_log_does_not_fail_a_delivered_task(
    emu: RunningEmulator, make_client: Callable[..., MangoClient]
) -> None:
    def explode(_: Exchange) -> None:
        raise RuntimeError("disk full")

    client = make_client(emu, on_exchange=explode)
    assert client.add_task(CAMPAIGN, Task(number="79001234567")) > 0
