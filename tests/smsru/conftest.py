"""Fixtures: an sms.ru emulator per test (manual clock) and a callback receiver."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest

from clinic.smsru import SmsRuClient
from emulators.smsru import EmulatorOptions, create_app

from .support import API_ID, Receiver, ServerThread, Sms

START = 1_779_958_800.0  # manual-clock start: 2026-05-28 09:00 UTC, noon in Moscow


@pytest.fixture(scope="session")
def admin_http() -> Iterator[httpx.Client]:
    with httpx.Client(trust_env=False) as http:
        yield http


@pytest.fixture()
def make_sms(admin_http: httpx.Client) -> Iterator[Callable[..., Sms]]:
    started: list[Sms] = []

    def make(**options: Any) -> Sms:
        options.setdefault("api_id", API_ID)
        options.setdefault("clock", "manual")
        options.setdefault("start_time", START)
        options.setdefault("balance", Decimal("100"))
        options.setdefault("price_per_part", Decimal("1.50"))
        app = create_app(EmulatorOptions(**options))
        sms = Sms(ServerThread(app).start(), app.extensions["smsru_emulator"], admin_http)
        started.append(sms)
        return sms

    yield make
    for sms in started:
        sms.emulator.release_holds()  # held "timeout" requests must not outlive the test
        sms.server.stop()
        sms.emulator.stop()


@pytest.fixture()
def sms(make_sms: Callable[..., Sms]) -> Sms:
    return make_sms()


@pytest.fixture()
def client(sms: Sms) -> Iterator[SmsRuClient]:
    with sms.client() as c:
        yield c


@pytest.fixture()
def receiver() -> Iterator[Receiver]:
    rec = Receiver()
    rec.server = ServerThread(rec.app()).start()
    yield rec
    rec.server.stop()
