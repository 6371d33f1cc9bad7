"""The /_emulator/ controls: faults, releases, campaigns, clock, reset, latency."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
import requests

from clinic.mango import CampaignStateError, MangoClient, SystemClock, Task

from .support import CAMPAIGN, RunningEmulator, admin, post_raw, signed


def test_faults_are_listed_used_up_and_cleared(emu: RunningEmulator) -> None:
    admin(emu, "faults", {"path": "/task/add", "kind": "error", "result": 5003, "times": 2})
    admin(emu, "faults", {"kind": "error", "result": 4001, "times": -1})
    listed = admin(emu, "faults", method="GET").json()["faults"]
    assert [(f["path"], f["times"]) for f in listed] == [("task/add", 2), ("*", -1)]
    form = signed({"campaign_id": CAMPAIGN, "number": "79001234567"})
    results = [post_raw(emu, "task/add", form).json()["result"] for _ in range(3)]
    assert results == [5003, 5003, 4001]  # the path fault is used up, then the "*" one applies
    assert admin(emu, "faults", method="DELETE").json()["faults"] == []
    assert post_raw(emu, "task/add", form).json()["result"] == 1000


def test_bad_fault_is_refused(emu: RunningEmulator) -> None:
    assert admin(emu, "faults", {"kind": "explode"}).status_code == 400
    assert admin(emu, "faults", {"colour": "red"}).status_code == 400


def test_release_ends_a_delay_before_processing(emu: RunningEmulator) -> None:
    admin(emu, "faults", {"path": "custom-type/list", "kind": "delay_before", "seconds": 60})
    answers: list[int] = []
    worker = threading.Thread(
        target=lambda: answers.append(post_raw(emu, "custom-type/list", signed({})).status_code)
    )
    worker.start()
    assert emu.emulator.holds.wait_for_waiting(1, timeout=10)
    assert admin(emu, "requests", method="GET").json()["requests"] == []  # not processed yet
    assert admin(emu, "release").json()["released"] == 1
    worker.join(timeout=10)
    assert answers == [200]


def test_latency_delays_answers_until_released(start_emulator: Callable[..., RunningEmulator]) -> None:
    emu = start_emulator(latency=60)
    answers: list[int] = []
    worker = threading.Thread(
        target=lambda: answers.append(post_raw(emu, "custom-type/list", signed({})).status_code)
    )
    worker.start()
    assert emu.emulator.holds.wait_for_waiting(1, timeout=10)
    assert answers == []
    emu.emulator.holds.release_all()
    worker.join(timeout=10)
    assert answers == [200]


def test_campaigns_can_be_added_and_changed(emu: RunningEmulator, client: MangoClient) -> None:
    listing = admin(emu, "campaigns", {"campaign_id": 100, "endless": True}).json()["campaigns"]
    assert {c["campaign_id"] for c in listing} == {CAMPAIGN, 100}
    client.add_task(100, Task(number="79001234567"))
    admin(emu, "campaigns", {"campaign_id": 100, "endless": True, "status": 4})
    with pytest.raises(CampaignStateError) as caught:
        client.add_task(100, Task(number="79001234568"))
    assert caught.value.code == 5106
    assert admin(emu, "campaigns", {"endless": True}).status_code == 400


def test_clock_endpoint_moves_a_manual_clock(emu: RunningEmulator) -> None:
    before = emu.clock.monotonic()
    assert admin(emu, "clock", {"advance": 1.5}).json()["now"] == pytest.approx(before + 1.5)
    assert admin(emu, "clock", {"advance": -1}).status_code == 400


def test_clock_endpoint_refuses_the_system_clock(start_emulator: Callable[..., RunningEmulator]) -> None:
    emu = start_emulator(clock=SystemClock())
    assert admin(emu, "clock", {"advance": 1}).status_code == 409


def test_reset_forgets_tasks_requests_and_faults(emu: RunningEmulator, client: MangoClient) -> None:
    admin(emu, "campaigns", {"campaign_id": 100})
    client.add_task(CAMPAIGN, Task(number="79001234567"))
    admin(emu, "faults", {"kind": "error", "times": -1})
    admin(emu, "reset")
    assert admin(emu, "tasks", method="GET").json()["tasks"] == []
    assert admin(emu, "requests", method="GET").json()["requests"] == []
    assert admin(emu, "faults", method="GET").json()["faults"] == []
    assert [c["campaign_id"] for c in admin(emu, "campaigns", method="GET").json()["campaigns"]] == [CAMPAIGN]
    client.add_task(CAMPAIGN, Task(number="79001234567"))  # the number is free again


def test_tasks_filter_by_campaign_and_unknown_task(emu: RunningEmulator, client: MangoClient) -> None:
    admin(emu, "campaigns", {"campaign_id": 100})
    client.add_task(CAMPAIGN, Task(number="79000000001"))
    client.add_task(100, Task(number="79000000002"))
    only = admin(emu, "tasks?campaign_id=100", method="GET").json()["tasks"]
    assert [t["campaign_id"] for t in only] == [100]
    assert admin(emu, "tasks/1", method="GET").status_code == 404


def test_unknown_url_answers_like_mango(emu: RunningEmulator) -> None:
    r = requests.post(emu.url + "/nowhere", timeout=10)
    assert (r.status_code, r.json()["result"]) == (404, 4001)


def test_health(emu: RunningEmulator) -> None:
    assert admin(emu, "health", method="GET").json() == {"status": "ok"}
