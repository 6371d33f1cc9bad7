"""`python -m emulators.mango`: options parsing and a real run under waitress."""

from __future__ import annotations

import queue
import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest
import requests

from clinic.mango import MangoClient, MangoSettings, ManualClock, Task
from emulators.mango import clock as emulator_clock
from emulators.mango.__main__ import build_parser, main, options_from_args


def test_options_from_the_command_line() -> None:
    args = build_parser().parse_args(
        [
            "--key", "k", "--salt", "s",
            "--webhook-url", "http://127.0.0.1:55055/MangoOffice/UpdateStatus",
            "--campaign", "1", "--finite-campaign", "2",
            "--custom-field", "Время=11", "--custom-field", "Дата=12",
            "--digit-status", "9=2",
            "--auto-dial", "1", "--auto-dial-delay", "2.5",
            "--rate-limit", "0", "--task-add-rate", "3",
            "--bad-request-lockout", "--errors-as-http-200", "--manual-clock",
            "--info-field", "custom:11", "--webhook-format", "template",
        ]
    )  # fmt: skip
    opts = options_from_args(args)
    assert (opts.api_key, opts.api_salt) == ("k", "s")
    assert opts.webhook_url == "http://127.0.0.1:55055/MangoOffice/UpdateStatus"
    assert [(c.campaign_id, c.endless) for c in opts.campaigns] == [(1, True), (2, False)]
    assert opts.custom_fields == {"Время": 11, "Дата": 12}
    assert opts.digit_status == {"9": 2}
    assert (opts.auto_dial, opts.auto_dial_delay) == ("1", 2.5)
    assert (opts.rate_limit, opts.task_add_rate) == (None, 3)
    assert opts.bad_request_lockout and opts.errors_as_http_200
    assert isinstance(opts.clock, emulator_clock.ManualClock)
    assert (opts.info_field, opts.webhook_format) == ("custom:11", "template")


def test_defaults() -> None:
    opts = options_from_args(build_parser().parse_args([]))
    assert [c.campaign_id for c in opts.campaigns] == [56919]
    assert list(opts.custom_fields) == ["Время", "Дата", "Услуга", "Специалист", "Пациент_ФИО"]
    assert (opts.rate_limit, opts.task_add_rate, opts.webhook_url) == (10, 5, None)
    assert isinstance(opts.clock, emulator_clock.SystemClock)


def test_non_loopback_host_needs_allow_remote(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["--host", "0.0.0.0"])
    assert caught.value.code == 2
    assert "loopback" in capsys.readouterr().err


def test_bad_info_field_is_a_usage_error() -> None:
    with pytest.raises(SystemExit):
        main(["--info-field", "phone"])


@pytest.fixture()
def running_cli() -> Iterator[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "emulators.mango", "--port", "0", "--key", "cli-key", "--salt", "cli-salt",
         "--manual-clock"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )  # fmt: skip
    lines: queue.Queue[str] = queue.Queue()
    assert proc.stdout is not None
    threading.Thread(target=lambda: lines.put(proc.stdout.readline()), daemon=True).start()  # type: ignore[union-attr]
    try:
        first = lines.get(timeout=30)  # printed once the socket is bound
        assert first.startswith("mango emulator listening on http://127.0.0.1:"), first
        yield first.split(" on ", 1)[1].strip()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        proc.stdout.close()


def test_cli_serves_the_api_and_the_admin_endpoints(running_cli: str) -> None:
    client = MangoClient(
        MangoSettings(api_key="cli-key", api_salt="cli-salt", base_url=running_cli + "/vpbx/"),
        clock=ManualClock(),
    )
    with client:
        task_id = client.add_task(56919, Task(number="79001234567", comment="A1"))
    tasks = requests.get(running_cli + "/_emulator/tasks", timeout=10).json()["tasks"]
    assert [(t["task_id"], t["fields"]["comment"]) for t in tasks] == [(task_id, "A1")]
    assert (
        requests.post(running_cli + "/_emulator/clock", json={"advance": 2}, timeout=10).json()["now"] == 2.0
    )
