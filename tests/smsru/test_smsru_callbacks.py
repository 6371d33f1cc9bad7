"""Signed delivery callbacks: shape, hash, retries until the handler answers ``100``."""

from __future__ import annotations

import hashlib
from decimal import Decimal

from clinic.smsru import SmsRuClient
from clinic.smsru.webhook import parse_form, verify

from .conftest import START
from .support import API_ID, Receiver, ServerThread, Sms


def _expected_hash(records: list[str]) -> str:
    # Computed here from smsru.md §10 rather than with clinic.smsru.webhook.sign.
    return hashlib.sha256((API_ID + "".join(records)).encode()).hexdigest()


def _form_records(form: dict[str, str]) -> list[str]:
    return [form[f"data[{i}]"] for i in range(sum(1 for k in form if k.startswith("data[")))]


def test_registering_a_handler_sends_a_signed_test_record(
    sms: Sms, client: SmsRuClient, receiver: Receiver
) -> None:
    client.callback_add(receiver.url)
    assert receiver.received == []  # nothing moves until the clock is pumped
    sms.advance(0)
    (post,) = receiver.received
    assert post.content_type.startswith("multipart/form-data")
    assert _form_records(post.form) == [f"test\n{int(START)}"]
    assert post.form["hash"] == _expected_hash([f"test\n{int(START)}"])
    assert verify(API_ID, post.form)


def test_delivery_progression_is_pushed_step_by_step(
    sms: Sms, client: SmsRuClient, receiver: Receiver
) -> None:
    client.callback_add(receiver.url)
    sms.advance(0)
    sms_id = client.send("79161234567", "Приём завтра").recipients[0].sms_id
    sms.advance(1)
    sms.advance(2)
    sms.advance(2)
    records = receiver.records()[1:]
    t = int(START)
    assert records == [
        f"sms_status\n{sms_id}\n101\n{t + 1}",
        f"sms_status\n{sms_id}\n102\n{t + 3}",
        f"sms_status\n{sms_id}\n103\n{t + 5}",
    ]
    for post in receiver.received:
        assert post.form["hash"] == _expected_hash(_form_records(post.form))


def test_clock_jump_delivers_every_step_with_its_own_time(
    sms: Sms, client: SmsRuClient, receiver: Receiver
) -> None:
    client.callback_add(receiver.url)
    sms_id = client.send("79161234567", "x").recipients[0].sms_id
    result = sms.advance(3600)
    assert result["steps"] == 3 and len(result["attempts"]) == 1
    (post,) = receiver.received
    events = parse_form(post.form)
    assert [getattr(e, "code", None) for e in events] == [None, 101, 102, 103]
    assert [e.at for e in events][1:] == [int(START) + 1, int(START) + 3, int(START) + 5]
    assert all(getattr(e, "sms_id", sms_id) == sms_id for e in events)


def test_retried_until_the_handler_answers_exactly_100(
    sms: Sms, client: SmsRuClient, receiver: Receiver
) -> None:
    receiver.answer("OK", "1000", (500, "100"), "100 OK", "100\n")
    client.callback_add(receiver.url)
    first = sms.advance(0)["attempts"]
    assert [a["ok"] for a in first] == [False]
    assert first[0]["next_at"] == START + 60  # the real service's 60 s
    assert sms.advance(59)["attempts"] == []  # not yet due
    (second,) = sms.advance(1)["attempts"]  # "1000"
    (third,) = sms.advance(60)["attempts"]  # HTTP 500, even with the body "100"
    (fourth,) = sms.advance(60)["attempts"]  # "100 OK"
    assert [a["ok"] for a in (second, third, fourth)] == [False, False, False]
    assert third["http_status"] == 500
    (last,) = sms.advance(60)["attempts"]
    assert last["ok"] and last["attempt"] == 5  # "100\n": a trailing newline is forgiven
    assert sms.advance(600)["attempts"] == []  # done, never again
    bodies = [r.form for r in receiver.received]
    assert len(bodies) == 5 and all(b == bodies[0] for b in bodies)  # the same batch, resent as is


def test_retry_backoff_is_bounded_and_gives_up(make_sms, receiver: Receiver) -> None:  # type: ignore[no-untyped-def]
    receiver.default = "no"
    sms = make_sms(
        callback_urls=[receiver.url],
        callback_retry_delay=10,
        callback_backoff=2,
        callback_max_delay=30,
        callback_max_attempts=5,
    )
    with sms.client() as client:
        client.send("79161234567", "x")
    times = [a["at"] for a in sms.advance(10)["attempts"]]  # all three steps in one batch
    for _ in range(140):  # a second at a time, well past the last try
        times += [a["at"] for a in sms.advance(1)["attempts"]]
    # +10, then doubling (+20), capped at 30 (+30, +30); the fifth failure is the last
    assert [round(t - START) for t in times] == [10, 20, 40, 70, 100]
    assert [a["gave_up"] for a in sms.callbacks()["attempts"]] == [False] * 4 + [True]
    assert sms.callbacks()["queued"] == []
    assert len(receiver.received) == 5


def test_gives_up_after_max_age(make_sms, receiver: Receiver) -> None:  # type: ignore[no-untyped-def]
    receiver.default = "error"
    sms = make_sms(callback_urls=[receiver.url], callback_max_age=300)
    sms.advance(0)  # nothing queued yet: no attempt
    with sms.client() as client:
        client.callback_add(receiver.url)  # already there: no second test record
        client.send("79161234567", "x")
    attempts = [a for _ in range(12) for a in sms.advance(60)["attempts"]]
    assert len(attempts) == 6  # at 60, 120, …, 360 s; the one at 360 is 300 s after the first
    assert [a["gave_up"] for a in attempts] == [False] * 5 + [True]


def test_urlencoded_format(make_sms, receiver: Receiver) -> None:  # type: ignore[no-untyped-def]
    sms = make_sms(callback_format="urlencoded")
    with sms.client() as client:
        client.callback_add(receiver.url)
    sms.advance(0)
    (post,) = receiver.received
    assert post.content_type == "application/x-www-form-urlencoded"
    assert verify(API_ID, post.form)


def test_more_than_100_records_are_split(make_sms, receiver: Receiver) -> None:  # type: ignore[no-untyped-def]
    sms = make_sms(balance=Decimal(1000))
    with sms.client() as client:
        client.callback_add(receiver.url)
        client.send([f"7916{n:07d}" for n in range(60)], "x")
    sms.advance(10)  # 1 test record + 60 × 3 status records = 181
    assert [len(_form_records(p.form)) for p in receiver.received] == [100, 81]
    assert all(p.form["hash"] == _expected_hash(_form_records(p.form)) for p in receiver.received)
    assert len(receiver.records()) == 181


def test_heartbeats_interleave_when_configured(make_sms, receiver: Receiver) -> None:  # type: ignore[no-untyped-def]
    sms = make_sms(callback_urls=[receiver.url], heartbeat_interval=2)
    with sms.client() as client:
        client.send("79161234567", "x")
    sms.advance(1)
    sms.advance(2)
    sms.advance(2)
    kinds = [[r.split("\n")[0] for r in _form_records(p.form)] for p in receiver.received]
    assert kinds == [["test", "sms_status"], ["test", "sms_status"], ["test", "sms_status"]]


def test_every_handler_gets_every_record(sms: Sms, client: SmsRuClient, receiver: Receiver) -> None:
    other = Receiver()
    other.server = ServerThread(other.app()).start()
    try:
        client.callback_add(receiver.url)
        client.callback_add(other.url)
        client.send("79161234567", "x")
        sms.advance(10)
        assert receiver.records() == other.records()
        assert len(receiver.records()) == 4
    finally:
        other.server.stop()


def test_deleted_handler_gets_nothing_more(sms: Sms, client: SmsRuClient, receiver: Receiver) -> None:
    receiver.default = "down"
    client.callback_add(receiver.url)
    client.send("79161234567", "x")
    assert len(sms.advance(10)["attempts"]) == 1
    client.callback_del(receiver.url)
    assert sms.advance(3600)["attempts"] == []
    assert len(receiver.received) == 1


def test_unreachable_handler_is_retried(sms: Sms, client: SmsRuClient, receiver: Receiver) -> None:
    dead = "http://127.0.0.1:9/cb"  # discard port: nothing listens
    client.callback_add(dead)
    (attempt,) = sms.advance(0)["attempts"]
    assert not attempt["ok"] and attempt["error"] and attempt["next_at"] == START + 60


def test_failed_delivery_reports_its_code(make_sms, receiver: Receiver) -> None:  # type: ignore[no-untyped-def]
    sms = make_sms(callback_urls=[receiver.url], delivery_outcomes={"79161234567": 106})
    with sms.client() as client:
        sms_id = client.send("79161234567", "x").recipients[0].sms_id
        sms.advance(10)
        assert receiver.records()[-1] == f"sms_status\n{sms_id}\n106\n{int(START) + 5}"
        status = client.status(sms_id).messages[sms_id]
        assert status.failed and status.final and status.code == 106


def test_real_clock_pushes_in_the_background(make_sms, receiver: Receiver) -> None:  # type: ignore[no-untyped-def]
    sms = make_sms(
        clock="real", start_time=None, tick_interval=0.02, delivery_steps=(0.05, 0.05, 0.05),
        callback_urls=[receiver.url],
    )  # fmt: skip
    with sms.client() as client:
        sms_id = client.send("79161234567", "x").recipients[0].sms_id
        assert receiver.wait_for(
            lambda got: any(f"\n{sms_id}\n103\n" in r for p in got for r in p.form.values())
        )
        assert client.status(sms_id).messages[sms_id].delivered
