"""Flask app factory for the Mango Office emulator."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException

from . import admin, api
from .emulator import MangoEmulator
from .options import EmulatorOptions


def create_app(options: EmulatorOptions | Mapping[str, Any] | None = None) -> Flask:
    """Build the emulator. `options` is EmulatorOptions or a dict of its fields.

    The MangoEmulator (state, faults, waits for tests) is `app.extensions["mango_emulator"]`;
    call its `shutdown()` when done to stop the auto-dial thread and end pending delays.
    """
    if options is None:
        options = EmulatorOptions()
    elif not isinstance(options, EmulatorOptions):
        options = EmulatorOptions.from_mapping(options)
    app = Flask(__name__)
    app.json.ensure_ascii = False  # type: ignore[attr-defined]  # Cyrillic stays readable
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.extensions["mango_emulator"] = MangoEmulator(options)
    app.register_blueprint(api.bp)
    app.register_blueprint(admin.bp)

    @app.errorhandler(HTTPException)
    def http_error(err: HTTPException):  # type: ignore[no-untyped-def]
        if err.code == 404:
            # An unknown URL: answered like Mango's "command not supported".
            return jsonify(result=4001, message="not found"), 404
        return jsonify(error=err.description), err.code

    return app


def emulator_of(app: Flask) -> MangoEmulator:
    return app.extensions["mango_emulator"]
