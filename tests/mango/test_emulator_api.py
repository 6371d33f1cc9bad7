"""The emulator's /vpbx API spoken to directly, with hand-built forms (no client code)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import pytest
import requests

from .support import CAMPAIGN, KEY, SALT, RunningEmulator, admin, post_raw, signed


def test_good_request_is_accepted(emu: RunningEmulator) -> None:
    r = post_raw(emu, "task/add", signed({"campaign_id": CAMPAIGN, "number": "79001234567"}))
    assert r.status_code == 200
    body = r.json()
    assert body["result"] == 1000 and isinstance(body["task_id"], int)


def test_custom_type_list_has_the_documented_odd_shape(emu: RunningEmulator) -> None:
    body = post_raw(emu, "custom-type/list", signed({})).json()
    assert body["status"] == 200
    assert body["result"][0] == {
        "id": 5901,
        "order": 1,
        "name": "Время",
        "field_type": "text",
        "props": {"show_master_io": True, "show_member": True},
    }


def test_get_is_3101(emu: RunningEmulator) -> None:
    r = requests.get(emu.api_base + "task/add", timeout=10)
    assert (r.status_code, r.json()["result"]) == (405, 3101)


def test_unknown_method_is_4001(emu: RunningEmulator) -> None:
    r = post_raw(emu, "commands/teleport", signed({}))
    assert (r.status_code, r.json()["result"]) == (404, 4001)


@pytest.mark.parametrize("dropped", ["vpbx_api_key", "sign", "json"])
def test_each_missing_form_field_is_3103(emu: RunningEmulator, dropped: str) -> None:
    form = signed({"campaign_id": CAMPAIGN, "number": "79001234567"})
    del form[dropped]
    r = post_raw(emu, "task/add", form)
    assert (r.status_code, r.json()["result"]) == (400, 3103)


def test_json_body_instead_of_form_is_3103(emu: RunningEmulator) -> None:
    r = requests.post(emu.api_base + "task/add", json=signed({"campaign_id": CAMPAIGN}), timeout=10)
    assert r.json()["result"] == 3103


def test_unknown_key_is_3105(emu: RunningEmulator) -> None:
    r = post_raw(emu, "custom-type/list", signed({}, key="other-key"))
    assert r.json()["result"] == 3105


def test_sign_with_wrong_salt_is_3102(emu: RunningEmulator) -> None:
    r = post_raw(emu, "custom-type/list", signed({}, salt="wrong"))
    assert (r.status_code, r.json()["result"]) == (400, 3102)


def test_sign_must_cover_the_exact_json_text(emu: RunningEmulator) -> None:
    form = signed({"campaign_id": CAMPAIGN, "number": "79001234567"})
    form["json"] = form["json"].replace(",", ", ")  # same data, other bytes
    assert post_raw(emu, "task/add", form).json()["result"] == 3102


def test_uppercase_sign_is_refused(emu: RunningEmulator) -> None:
    form = signed({})
    form["sign"] = form["sign"].upper()
    assert post_raw(emu, "custom-type/list", form).json()["result"] == 3102


def test_invalid_json_is_3400(emu: RunningEmulator) -> None:
    text = '{"campaign_id":'
    form = {
        "vpbx_api_key": KEY,
        "json": text,
        "sign": hashlib.sha256((KEY + text + SALT).encode()).hexdigest(),
    }
    assert post_raw(emu, "task/add", form).json()["result"] == 3400


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ({"number": "79001234567"}, 3103),  # no campaign_id
        ({"campaign_id": str(CAMPAIGN), "number": "79001234567"}, 3104),  # id as a string
        ({"campaign_id": CAMPAIGN}, 3103),  # no number
        ({"campaign_id": CAMPAIGN, "number": 79001234567}, 3104),
        ({"campaign_id": CAMPAIGN, "number": "7" * 65}, 3104),
        ({"campaign_id": CAMPAIGN, "number": "79001234567", "priority": 0}, 3104),
        ({"campaign_id": CAMPAIGN, "number": "79001234567", "due_date": "25.06.2025"}, 3104),
        ({"campaign_id": CAMPAIGN, "number": "79001234567", "custom_fields": {"Время": "10:30"}}, 3100),
        ({"campaign_id": CAMPAIGN, "number": "79001234567", "custom_fields": {"1": "x"}}, 3100),
        (
            {
                "campaign_id": CAMPAIGN,
                "number": "7900",
                "subtasks": [{"number": "7901", "order": 0, "type": 1}],
            },
            3104,
        ),
        ({"campaign_id": CAMPAIGN, "number": "7900", "subtasks": [{"number": "7901", "type": 0}]}, 3103),
        ({"campaign_id": 1, "number": "79001234567"}, 3300),  # no such campaign
    ],
)
def test_task_add_parameter_checks(emu: RunningEmulator, payload: dict, code: int) -> None:
    assert post_raw(emu, "task/add", signed(payload)).json()["result"] == code
    assert admin(emu, "tasks", method="GET").json()["tasks"] == []


def test_push_needs_tasks(emu: RunningEmulator) -> None:
    assert post_raw(emu, "tasks/push", signed({"campaign_id": CAMPAIGN})).json()["result"] == 3103
    assert (
        post_raw(emu, "tasks/push", signed({"campaign_id": CAMPAIGN, "tasks": {}})).json()["result"] == 3103
    )


def test_push_into_a_finished_campaign_is_5106(emu: RunningEmulator) -> None:
    admin(emu, "campaigns", {"campaign_id": 42, "endless": False, "status": 4})
    form = signed({"campaign_id": 42, "tasks": [{"number": "79001234567"}]})
    assert post_raw(emu, "tasks/push", form).json()["result"] == 5106


def test_duplicate_against_an_existing_task_is_5109(emu: RunningEmulator) -> None:
    assert post_raw(emu, "task/add", signed({"campaign_id": CAMPAIGN, "number": "+79001234567"})).ok
    r = post_raw(emu, "tasks/push", signed({"campaign_id": CAMPAIGN, "tasks": [{"number": "79001234567"}]}))
    assert r.json()["result"] == 5109


def test_sip_numbers_are_compared_as_written(emu: RunningEmulator) -> None:
    for number in ("sip:admin@test.mangosip.ru", "sip:other@test.mangosip.ru"):
        assert post_raw(emu, "task/add", signed({"campaign_id": CAMPAIGN, "number": number})).ok


def test_delete_while_being_called_is_5111(emu: RunningEmulator) -> None:
    task_id = post_raw(emu, "task/add", signed({"campaign_id": CAMPAIGN, "number": "79001234567"})).json()[
        "task_id"
    ]
    emu.emulator.store.tasks[task_id].status = 2  # in progress, as during a call
    r = post_raw(emu, "task/delete", signed({"campaign_id": CAMPAIGN, "task_id": task_id}))
    assert r.json()["result"] == 5111


def test_delete_in_another_campaign_is_not_found(emu: RunningEmulator) -> None:
    task_id = post_raw(emu, "task/add", signed({"campaign_id": CAMPAIGN, "number": "79001234567"})).json()[
        "task_id"
    ]
    admin(emu, "campaigns", {"campaign_id": 9})
    assert (
        post_raw(emu, "task/delete", signed({"campaign_id": 9, "task_id": task_id})).json()["result"] == 3300
    )


def test_rate_window_slides_on_the_emulator_clock(emu: RunningEmulator) -> None:
    form = signed({})
    assert [post_raw(emu, "custom-type/list", form).status_code for _ in range(10)] == [200] * 10
    over = post_raw(emu, "custom-type/list", form)
    assert over.status_code == 429
    assert over.json() == {
        "name": "Service Unavailable",
        "message": "Rate limit exceeded.",
        "code": 0,
        "status": 429,
    }
    emu.clock.advance(0.999)
    assert post_raw(emu, "custom-type/list", form).status_code == 429
    emu.clock.advance(0.001)  # exactly one second after the first ten
    assert post_raw(emu, "custom-type/list", form).status_code == 200


def test_task_add_limit_is_5008_with_http_503(emu: RunningEmulator) -> None:
    for i in range(5):
        assert post_raw(emu, "task/add", signed({"campaign_id": CAMPAIGN, "number": f"7900000000{i}"})).ok
    r = post_raw(emu, "task/add", signed({"campaign_id": CAMPAIGN, "number": "79000000009"}))
    assert (r.status_code, r.json()["result"]) == (503, 5008)
    assert len(admin(emu, "tasks", method="GET").json()["tasks"]) == 5


def test_limits_can_be_switched_off(start_emulator: Callable[..., RunningEmulator]) -> None:
    emu = start_emulator(rate_limit=None, task_add_rate=None)
    codes = [
        post_raw(
            emu, "task/add", signed({"campaign_id": CAMPAIGN, "number": f"790000000{i:02d}"})
        ).status_code
        for i in range(20)
    ]
    assert codes == [200] * 20


def test_lockout_after_second_bad_request_lasts_two_minutes_from_the_first(
    start_emulator: Callable[..., RunningEmulator],
) -> None:
    emu = start_emulator(bad_request_lockout=True)
    bad = signed({}, salt="wrong")
    assert post_raw(emu, "custom-type/list", bad).json()["result"] == 3102
    emu.clock.advance(60)
    assert post_raw(emu, "custom-type/list", bad).status_code == 401
    emu.clock.advance(59.9)
    assert post_raw(emu, "custom-type/list", signed({})).status_code == 401
    emu.clock.advance(0.1)
    assert post_raw(emu, "custom-type/list", signed({})).status_code == 200


def test_one_bad_request_per_two_minutes_is_tolerated(start_emulator: Callable[..., RunningEmulator]) -> None:
    emu = start_emulator(bad_request_lockout=True)
    bad = signed({}, salt="wrong")
    assert post_raw(emu, "custom-type/list", bad).json()["result"] == 3102
    emu.clock.advance(120)
    assert post_raw(emu, "custom-type/list", bad).json()["result"] == 3102
    assert post_raw(emu, "custom-type/list", signed({})).status_code == 200


def test_request_log_records_path_result_and_json(emu: RunningEmulator) -> None:
    post_raw(emu, "task/add", signed({"campaign_id": CAMPAIGN, "number": "79001234567", "name": "Пётр"}))
    [entry] = admin(emu, "requests", method="GET").json()["requests"]
    assert entry["path"] == "task/add"
    assert entry["result"] == 1000
    assert entry["json"] == {"campaign_id": CAMPAIGN, "number": "79001234567", "name": "Пётр"}
    assert entry["seq"] == 1
