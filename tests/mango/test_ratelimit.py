"""The client keeps to Mango's rates, measured on a ManualClock shared with the emulator."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from clinic.mango import MangoClient, ManualClock, RateLimiter, RateLimitError, Task, TokenBucket
from clinic.mango.ratelimit import SlidingWindowGuard

from .support import CAMPAIGN, RunningEmulator, admin


def max_in_any_second(times: list[float]) -> int:
    """The most events inside any half-open one-second window (t - 1, t], in whole
    nanoseconds (as the ManualClock keeps time) so float rounding cannot add one."""
    ns = [round(t * 1e9) for t in times]
    return max(sum(1 for u in ns if t - 1_000_000_000 < u <= t) for t in ns)


def test_bucket_spaces_grants_at_one_over_rate() -> None:
    clock = ManualClock()
    bucket = TokenBucket(rate=5, clock=clock)
    granted = []
    for _ in range(11):
        bucket.acquire()
        granted.append(clock.monotonic())
    assert granted == pytest.approx([k * 0.2 for k in range(11)])
    assert max_in_any_second(granted) == 5


def test_try_acquire_does_not_wait() -> None:
    clock = ManualClock()
    bucket = TokenBucket(rate=4, clock=clock)
    assert bucket.try_acquire()
    assert not bucket.try_acquire()
    clock.advance(0.25)
    assert bucket.try_acquire()
    assert clock.sleeps == []


def test_capacity_allows_a_burst_then_paces() -> None:
    clock = ManualClock()
    bucket = TokenBucket(rate=2, capacity=3, clock=clock)
    waits = [bucket.acquire() for _ in range(4)]
    assert waits == [0.0, 0.0, 0.0, pytest.approx(0.5)]


def test_concurrent_reservations_get_distinct_evenly_spaced_slots() -> None:
    # The clock never moves, so each reservation's wait is its slot; a race in the bucket
    # would hand two threads the same slot.
    bucket = TokenBucket(rate=4, clock=ManualClock())
    waits: list[float] = []
    lock = threading.Lock()
    start = threading.Barrier(8)

    def worker() -> None:
        start.wait()
        for _ in range(25):
            w = bucket.reserve()
            with lock:
                waits.append(w)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(waits) == [k * 0.25 for k in range(200)]


def test_limiter_applies_global_and_per_path_limits() -> None:
    clock = ManualClock()
    limiter = RateLimiter({"*": 10, "task/add": 5}, clock)
    t0 = clock.monotonic()
    for _ in range(5):
        limiter.acquire("task/add")
    after_adds = clock.monotonic() - t0
    for _ in range(5):
        limiter.acquire("custom-type/list")
    after_lists = clock.monotonic() - t0 - after_adds
    assert after_adds == pytest.approx(0.8)  # 5 adds: slots 0, .2, .4, .6, .8
    assert after_lists == pytest.approx(0.4)  # list slots 0.8 .. 1.2, the global 0.1 s spacing


def test_window_guard_counts_admissions_in_a_sliding_window() -> None:
    guard = SlidingWindowGuard(limit=3, window=1.0, clock=ManualClock())
    for t in (0, 100, 150):  # ms
        assert guard.wait_needed(t * 1_000_000) == 0
        guard.admit(t * 1_000_000)
    # a late thread catching up at 160 ms must wait until the first admission is a window
    # old (plus one nanosecond: the window is half-open, as Mango's is taken to be)
    assert guard.wait_needed(160_000_000) == 840_000_001
    assert guard.wait_needed(1_000_000_001) == 0


def test_a_late_send_moves_its_stamp_and_the_next_admission_waits_for_it() -> None:
    clock = ManualClock()
    limiter = RateLimiter({"task/add": 1}, clock)
    limiter.acquire("task/add")  # granted at 0 ...
    clock.advance(0.3)  # ... but the process stalled: it leaves at 0.3
    limiter.mark_sent()
    limiter.acquire("task/add")
    # the bucket alone would grant at 1.0; one per second counted from when it left
    assert clock.monotonic() == pytest.approx(1.3 + 1e-9)
    limiter.mark_sent()
    limiter.mark_sent()  # a second mark without a new admission changes nothing
    limiter.acquire("task/add")
    assert clock.monotonic() == pytest.approx(2.3 + 2e-9)


def test_limiter_guard_holds_back_past_the_bucket_pace() -> None:
    clock = ManualClock()
    limiter = RateLimiter({"task/add": 5}, clock, guard=0.5)
    times = []
    for _ in range(7):
        limiter.acquire("task/add")
        times.append(clock.monotonic())
    # the bucket alone would give 1.0 and 1.2; five per 1.5 s window pushes them out
    assert times == pytest.approx([0, 0.2, 0.4, 0.6, 0.8, 1.5, 1.7])


def test_limiter_margin_paces_under_the_documented_rate() -> None:
    clock = ManualClock()
    limiter = RateLimiter({"task/add": 5}, clock, margin=0.8)
    for _ in range(3):
        limiter.acquire("task/add")
    assert clock.monotonic() == pytest.approx(2 * 0.25)


def _task(i: int) -> Task:
    return Task(number=f"7900{i:07d}", comment=f"appt-{i}")


def test_client_keeps_to_the_task_add_rate_against_the_emulator(
    emu: RunningEmulator, client: MangoClient, clock: ManualClock
) -> None:
    for i in range(12):
        client.add_task(CAMPAIGN, _task(i))
    log = admin(emu, "requests", method="GET").json()["requests"]
    adds = [r for r in log if r["path"] == "task/add"]
    assert [r["result"] for r in adds] == [1000] * 12  # the emulator refused nothing
    assert max_in_any_second([r["at"] for r in adds]) == 5
    assert clock.monotonic() == pytest.approx(11 * 0.2)  # paced, on the fake clock only


def test_without_client_throttling_the_emulator_refuses_the_sixth_add(
    emu: RunningEmulator, make_client: Callable[..., MangoClient]
) -> None:
    # The negative control for the test above: same burst, no pacing, no retries.
    client = make_client(emu, rate_limits=None, max_retries=0)
    for i in range(5):
        client.add_task(CAMPAIGN, _task(i))
    with pytest.raises(RateLimitError) as caught:
        client.add_task(CAMPAIGN, _task(5))
    assert caught.value.code == 5008


def test_vpbx_limit_answers_429(emu: RunningEmulator, make_client: Callable[..., MangoClient]) -> None:
    client = make_client(emu, rate_limits=None, max_retries=0)
    for _ in range(10):
        client.custom_fields()
    with pytest.raises(RateLimitError) as caught:
        client.custom_fields()
    assert (caught.value.code, caught.value.http_status) == (429, 429)


def test_rate_limited_add_is_retried_with_backoff(
    emu: RunningEmulator, make_client: Callable[..., MangoClient], clock: ManualClock
) -> None:
    client = make_client(emu, rate_limits=None, max_retries=3, backoff_base=1.0)
    admin(emu, "faults", {"path": "task/add", "kind": "rate_limit", "times": 2})
    task_id = client.add_task(CAMPAIGN, _task(1))
    log = admin(emu, "requests", method="GET").json()["requests"]
    assert [r["result"] for r in log if r["path"] == "task/add"] == [5008, 5008, 1000]
    assert clock.sleeps == [1.0, 2.0]  # exponential back-off, slept on the fake clock
    tasks = admin(emu, "tasks", method="GET").json()["tasks"]
    assert [t["task_id"] for t in tasks] == [task_id]


def test_rate_limit_gives_up_after_max_retries(
    emu: RunningEmulator, make_client: Callable[..., MangoClient], clock: ManualClock
) -> None:
    client = make_client(emu, rate_limits=None, max_retries=2, backoff_base=0.5, backoff_max=0.75)
    admin(emu, "faults", {"path": "task/add", "kind": "rate_limit", "times": 5})
    with pytest.raises(RateLimitError):
        client.add_task(CAMPAIGN, _task(1))
    assert clock.sleeps == [0.5, 0.75]  # capped by backoff_max
    assert admin(emu, "tasks", method="GET").json()["tasks"] == []


def test_vpbx_429_on_a_read_is_retried(emu: RunningEmulator, make_client: Callable[..., MangoClient]) -> None:
    client = make_client(emu, rate_limits=None, max_retries=1)
    admin(emu, "faults", {"path": "custom-type/list", "kind": "rate_limit", "times": 1})
    assert len(client.custom_fields()) == 5
    log = admin(emu, "requests", method="GET").json()["requests"]
    assert [r["http_status"] for r in log] == [429, 200]
