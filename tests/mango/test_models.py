"""Tasks are checked before sending: a bad request costs a two-minute API block (API §1.4.1)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from clinic.mango import CampaignReport, Subtask, Task, mango_utc

MSK = timezone(timedelta(hours=3))


def test_task_json_uses_documented_names_and_string_field_ids() -> None:
    task = Task(
        number="79001234567",
        name="Иванов Иван",
        comment="00000144-0070 1747001127050",
        priority=1,
        due_date=datetime(2025, 6, 25, 21, 0, tzinfo=MSK),
        custom_fields={5901: "10:30", "5902": "26.06.2025"},
        subtasks=[Subtask(number="79007654321", order=0)],
    )
    assert task.to_json() == {
        "number": "79001234567",
        "name": "Иванов Иван",
        "priority": 1,
        "comment": "00000144-0070 1747001127050",
        "due_date": "2025-06-25 18:00:00",  # 21:00 Moscow is 18:00 UTC
        "custom_fields": {"5901": "10:30", "5902": "26.06.2025"},
        "subtasks": [{"number": "79007654321", "order": 0, "type": 0}],
    }


def test_naive_due_date_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        mango_utc(datetime(2025, 6, 25, 18, 0))


def test_due_date_string_must_have_mango_format() -> None:
    assert mango_utc("2025-06-25 18:00:00") == "2025-06-25 18:00:00"
    with pytest.raises(ValueError):
        mango_utc("25.06.2025 18:00")


@pytest.mark.parametrize(
    "task",
    [
        Task(number=""),
        Task(number="7" * 65),
        Task(number="79001234567", name="я" * 256),
        Task(number="79001234567", comment="x" * 1025),
        Task(number="79001234567", priority=0),
        Task(number="79001234567", priority=1001),
        Task(number="79001234567", custom_fields={"Время": "10:30"}),  # a name, not an id
        Task(number="79001234567", subtasks=[Subtask(number="7900", order=-1)]),
    ],
)
def test_invalid_tasks_never_leave_the_process(task: Task) -> None:
    with pytest.raises(ValueError):
        task.to_json()


def test_report_orders_attempts_and_exposes_the_digit() -> None:
    report = CampaignReport.from_json(
        {
            "campaign_id": 56919,
            "tasks": [
                {
                    "task_id": 7,
                    "attempts": [
                        {"attempt_id": 20, "number": "2", "result": 1, "text": None},
                        {"attempt_id": 10, "number": None, "result": 3},
                    ],
                },
                {"task_id": 8, "attempts": []},
            ],
        }
    )
    assert [a.attempt_id for a in report.attempts[7]] == [10, 20]
    assert report.digit(7) == "2"
    assert report.last_attempt(8) is None
    assert report.digit(9) is None
