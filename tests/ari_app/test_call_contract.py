"""The control contract (clinic/call_control.py) is the one list of commands (issue 13): the
control API has a route for each and only those, a command without a handler stops the app
from being built, and the web side forwards exactly these commands with their own fields."""

from __future__ import annotations

from typing import Any

import pytest

from ari_app import control as control_api
from ari_app.calls.notifier import Notifier
from ari_app.features import CallControl
from clinic.call_control import BODIES, CALLS_PATH, Command, body_fields, command_path, parse_command


def _control() -> CallControl:
    return CallControl(ari=None, store=None, bus=Notifier())  # type: ignore[arg-type]


def test_the_control_api_routes_every_command_and_no_other() -> None:
    app = control_api.make_app(_control(), Notifier(), ari=None, token="t")  # type: ignore[arg-type]
    prefix = CALLS_PATH + "/{uid}/"
    routed = {
        r.resource.canonical[len(prefix) :]
        for r in app.router.routes()
        if r.method == "POST" and r.resource is not None and r.resource.canonical.startswith(prefix)
    }
    assert routed == {c.value for c in Command}


def test_a_command_without_a_handler_stops_the_build(monkeypatch: pytest.MonkeyPatch) -> None:
    original = control_api.hold_http.commands

    def without_unhold(service: Any) -> Any:
        return {k: v for k, v in original(service).items() if k is not Command.UNHOLD}

    monkeypatch.setattr(control_api.hold_http, "commands", without_unhold)
    with pytest.raises(RuntimeError, match="unhold"):
        control_api.command_handlers(_control())


def test_the_web_side_knows_the_same_commands_and_their_fields() -> None:
    for command in Command:
        assert parse_command(command.value) is command
        assert command_path("abc", command) == f"/calls/abc/{command.value}"
    assert parse_command("record") is None and parse_command("../hangup") is None
    assert body_fields(Command.TRANSFER) == ("target", "mode")
    assert body_fields(Command.DTMF) == ("digits",)
    assert body_fields(Command.HOLD) == ()
    assert set(BODIES) == set(Command)
