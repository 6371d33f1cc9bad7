"""Emulator behaviour not covered through the client tests: accounting, scheduling, TTL,
admin endpoints, concurrency, random faults and the command line."""

from __future__ import annotations

import subprocess
import sys
import threading
from decimal import Decimal

import httpx
import pytest

from clinic.smsru import SmsRuClient
from emulators.smsru import EmulatorOptions, FaultRule, create_app
from emulators.smsru.__main__ import build_parser, options_from_args

from .conftest import START
from .support import API_ID, WAIT, Sms


def test_balance_is_charged_per_part(sms: Sms, client: SmsRuClient) -> None:
    result = client.send(["79161234567", "79161234568"], "ж" * 71)  # 2 parts each
    assert result.balance == Decimal("94.00")  # 100 − 2 numbers × 2 parts × 1.50
    assert [m["parts"] for m in sms.messages()] == [2, 2]
    assert [m["cost"] for m in sms.messages()] == ["3.00", "3.00"]
    sms.configure(price_per_part="0.50")
    assert client.send("79161234567", "x").balance == Decimal("93.50")


def test_delayed_send_waits_for_its_time(sms: Sms, client: SmsRuClient) -> None:
    sms_id = client.send("79161234567", "x", at=int(START) + 600).recipients[0].sms_id
    assert sms_id
    sms.advance(599)
    assert client.status(sms_id).messages[sms_id].code == 100
    sms.advance(6)
    assert client.status(sms_id).messages[sms_id].code == 103
    past = client.send("79161234567", "y", at=int(START) - 3600).recipients[0].sms_id  # past: sends now
    sms.advance(5)
    assert past and client.status(past).messages[past].code == 103


def test_ttl_expiry_ends_in_104(make_sms) -> None:  # type: ignore[no-untyped-def]
    sms = make_sms(delivery_steps=(30, 30, 600))
    with sms.client() as client:
        sms_id = client.send("79161234567", "x", ttl=2).recipients[0].sms_id
        assert sms_id
        sms.advance(3600)
        history = [h["status_code"] for h in sms.messages(sms_id=sms_id)[0]["history"]]
        assert history == [100, 101, 102, 104]
        assert client.status(sms_id).messages[sms_id].failed
        assert client.balance() == Decimal("98.50")  # not refunded (§2.1)


def test_status_times_option(make_sms) -> None:  # type: ignore[no-untyped-def]
    sms = make_sms(status_times=True)
    with sms.client() as client:
        sms_id = client.send("79161234567", "x").recipients[0].sms_id
        assert sms_id
        sms.advance(10)
        entry = client.status(sms_id).messages[sms_id]
    assert (entry.send_time, entry.status_time) == (int(START), int(START) + 5)


def test_admin_messages_filters(sms: Sms, client: SmsRuClient) -> None:
    client.send(["79161234567", "79161234568"], "x")
    with sms.client(test_mode=True) as test_client:
        test_client.send("79161234569", "t")
    assert len(sms.messages()) == 3
    assert [m["phone"] for m in sms.messages(phone="+7 916 123-45-68")] == ["79161234568"]
    assert [m["phone"] for m in sms.messages(test="1")] == ["79161234569"]
    assert len(sms.messages(test="0")) == 2


def test_admin_config_round_trip_and_validation(sms: Sms) -> None:
    config = sms.http.get(f"{sms.url}/_emulator/config").json()
    assert "api_id" not in config
    assert config["current_balance"] == "100" and config["clock"] == "manual"
    changed = sms.configure(balance="7.25", senders=["A", "B"], daily_limit=5)
    assert changed["current_balance"] == "7.25" and changed["senders"] == ["A", "B"]
    for bad in (
        {"no_such_option": 1},
        {"too_many_mode": "999"},
        {"balance": "lots"},
        {"faults": [{"kind": "x"}]},
    ):
        reply = sms.http.post(f"{sms.url}/_emulator/config", json=bad)
        assert reply.status_code == 400 and reply.json()["error"]
    assert sms.http.get(f"{sms.url}/_emulator/config").json()["current_balance"] == "7.25"


def test_admin_reset(sms: Sms, client: SmsRuClient) -> None:
    client.send("79161234567", "x")
    client.stoplist_add("79161234568")
    client.callback_add("http://127.0.0.1:9/cb")
    sms.configure(price_per_part="9")
    assert sms.http.post(f"{sms.url}/_emulator/reset").json() == {"ok": True}
    assert sms.messages() == [] and client.stoplist_get() == {} and client.callback_get() == []
    assert client.balance() == Decimal("100")
    assert sms.advance(10)["attempts"] == []  # the queued test record went with the reset
    assert client.cost("79161234567", "x").total_cost == Decimal("1.5")


def test_admin_advance_validation(sms: Sms) -> None:
    assert sms.http.post(f"{sms.url}/_emulator/advance", json={"seconds": -1}).status_code == 400
    assert sms.http.post(f"{sms.url}/_emulator/advance", json={"seconds": "x"}).status_code == 400
    assert sms.advance(5)["now"] == START + 5


def test_admin_release_frees_held_requests(sms: Sms) -> None:
    sms.faults({"kind": "timeout", "path": "my/balance", "process": True})
    outcome: list[httpx.Response] = []
    worker = threading.Thread(
        target=lambda: outcome.append(sms.raw("my/balance", {"api_id": API_ID, "json": "1"}))
    )
    worker.start()
    assert sms.emulator.wait_for_holds(1, WAIT)
    assert sms.http.post(f"{sms.url}/_emulator/release").json() == {"released": 1}
    worker.join(WAIT)
    assert outcome and outcome[0].json()["balance"] == 100.0


def test_fault_rules_are_consumed_in_order(sms: Sms) -> None:
    sms.faults(
        {"kind": "api_error", "path": "my/balance", "code": 220, "count": 1},
        {"kind": "http_status", "path": "*", "status": 503, "count": 1},
    )
    assert sms.call("my/balance")["status_code"] == 220
    assert sms.raw("my/balance", {"api_id": API_ID, "json": "1"}).status_code == 503
    assert sms.call("my/balance")["status_code"] == 100
    assert [f["count"] for f in sms.http.get(f"{sms.url}/_emulator/config").json()["faults"]] == [0, 0]


def test_random_fault_rates(make_sms) -> None:  # type: ignore[no-untyped-def]
    sms = make_sms(fault_rates={"code220": 1.0}, seed=1)
    assert sms.call("my/balance")["status_code"] == 220
    sms.configure(fault_rates={"http500": 1.0})
    assert sms.raw("my/balance", {"api_id": API_ID, "json": "1"}).status_code == 500
    sms.configure(fault_rates={"code220": 0.5}, seed=7)
    codes = [sms.call("my/balance")["status_code"] for _ in range(40)]
    assert 220 in codes and 100 in codes


def test_concurrent_sends_keep_the_books_straight(make_sms) -> None:  # type: ignore[no-untyped-def]
    sms = make_sms(balance=Decimal(1000), per_number_daily_limit=None)
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            with sms.client() as client:
                for i in range(10):
                    client.send(f"7916{n:03d}{i:04d}", "x")
        except BaseException as exc:  # noqa: BLE001 - reported through the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT)
    assert errors == []
    sent = sms.messages()
    assert len(sent) == 80 and len({m["sms_id"] for m in sent}) == 80
    with sms.client() as client:
        assert client.balance() == Decimal(1000) - 80 * Decimal("1.50")
        assert client.limit().used_today == 80


def test_create_app_accepts_a_mapping() -> None:
    app = create_app(
        {"api_id": "k", "clock": "manual", "balance": "5", "faults": [{"kind": "raw", "body": "x"}]}
    )
    emulator = app.extensions["smsru_emulator"]
    assert emulator.options.balance == Decimal(5) and emulator.options.faults[0].kind == "raw"
    with app.test_client() as http:
        assert http.post("/my/balance", data={"api_id": "k", "json": "1"}).text == "x"
        assert http.post("/my/balance", data={"api_id": "k", "json": "1"}).json["balance"] == 5.0
    emulator.stop()


def test_options_validation() -> None:
    with pytest.raises(ValueError):
        EmulatorOptions(clock="sundial")
    with pytest.raises(ValueError):
        EmulatorOptions(delivery_steps=(1, 2))  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        EmulatorOptions(fault_rates={"meteor": 1.0})
    assert FaultRule.parse("timeout:sms/send:2") == FaultRule(kind="timeout", path="sms/send", count=2)
    assert FaultRule.parse("api_error") == FaultRule(kind="api_error", path="*", count=1)


def test_cli_arguments_become_options() -> None:
    args = build_parser().parse_args(
        [
            "--api-id", "K", "--balance", "12.5", "--price", "2", "--sender", "A", "--sender", "B",
            "--daily-limit", "7", "--outcome", "79160000000=106", "--steps", "1,1,1", "--clock", "manual",
            "--fault", "timeout:sms/send:1", "--code220-rate", "0.1", "--callback", "http://127.0.0.1:9/cb",
            "--callback-format", "urlencoded", "--too-many", "213", "--russia-only",
        ]
    )  # fmt: skip
    options = options_from_args(args)
    assert (options.api_id, options.balance, options.price_per_part) == ("K", Decimal("12.5"), Decimal(2))
    assert options.senders == ["A", "B"] and options.daily_limit == 7
    assert options.delivery_outcomes == {"79160000000": 106} and options.delivery_steps == (1.0, 1.0, 1.0)
    assert options.faults == [FaultRule(kind="timeout", path="sms/send", count=1)]
    assert options.fault_rates == {"code220": 0.1} and options.callback_urls == ["http://127.0.0.1:9/cb"]
    assert (options.callback_format, options.too_many_mode, options.russia_only) == (
        "urlencoded",
        "213",
        True,
    )
    assert options_from_args(build_parser().parse_args(["--no-senders"])).senders == []


def test_cli_serves_with_waitress() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "emulators.smsru", "--port", "0", "--api-id", "CLI-KEY", "--balance", "42"],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = None
        assert proc.stderr is not None
        for line in proc.stderr:  # waitress logs "Serving on http://127.0.0.1:PORT" once listening
            if "Serving on" in line:
                url = line.rsplit(" ", 1)[-1].strip()
                break
        assert url and url.startswith("http://127.0.0.1:")
        with SmsRuClient("CLI-KEY", base_url=url, read_timeout=WAIT) as client:
            assert client.balance() == Decimal("42")
            result = client.send("79161234567", "Привет")
            assert result.recipients[0].accepted
    finally:
        proc.terminate()
        proc.wait(WAIT)
