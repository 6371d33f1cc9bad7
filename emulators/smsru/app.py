"""Flask app factory of the sms.ru emulator."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask

from emulators.smsru import admin, api
from emulators.smsru.emulator import Emulator
from emulators.smsru.options import EmulatorOptions


def create_app(
    state_options: EmulatorOptions | Mapping[str, Any] | None = None, *, start: bool | None = None
) -> Flask:
    """Build the emulator app. ``app.extensions["smsru_emulator"]`` is the :class:`Emulator`.

    With a real clock the background ticker (delivery progression and callbacks) starts
    unless `start` is False; with a manual clock it does not unless `start` is True.
    Call ``emulator.stop()`` when done with an app whose ticker runs.
    """
    if isinstance(state_options, EmulatorOptions):
        options = state_options
    else:
        options = EmulatorOptions().updated(dict(state_options or {}))
    emulator = Emulator(options)
    app = Flask(__name__)
    app.extensions["smsru_emulator"] = emulator
    app.register_blueprint(admin.bp)
    app.register_blueprint(api.bp)
    if start if start is not None else options.clock == "real":
        emulator.start()
    return app
