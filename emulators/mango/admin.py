"""Test and demo controls under `/_emulator/`: inspect state, place calls, inject faults.

Not part of Mango's API; unauthenticated, so the emulator listens on 127.0.0.1 only.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, abort, current_app, jsonify, request

from .clock import AdjustableClock
from .dialer import CallError, place_call
from .emulator import MangoEmulator
from .options import CampaignSpec, EmulatorOptions

bp = Blueprint("mango_admin", __name__, url_prefix="/_emulator")


def _emu() -> MangoEmulator:
    return current_app.extensions["mango_emulator"]


def _body() -> dict[str, Any]:
    data = request.get_json(silent=True)
    if data is None:
        return {}
    if not isinstance(data, dict):
        abort(400, "expected a JSON object")
    return data


@bp.get("/health")
def health() -> Response:
    return jsonify(status="ok")


@bp.get("/tasks")
def tasks() -> Response:
    emu = _emu()
    campaign = request.args.get("campaign_id", type=int)
    with emu.store.lock:
        items = [
            t.as_json() for t in emu.store.tasks.values() if campaign is None or t.campaign_id == campaign
        ]
    return jsonify(tasks=items)


@bp.get("/tasks/<int:task_id>")
def task(task_id: int) -> tuple[Response, int]:
    emu = _emu()
    with emu.store.lock:
        found = emu.store.tasks.get(task_id)
        if found is None:
            return jsonify(error=f"no task {task_id}"), 404
        return jsonify(found.as_json()), 200


@bp.post("/call")
def call() -> tuple[Response, int]:
    """{"task_id": 3224, "digit": "1"|"2"|null, "result": 1, "text": "..."}"""
    data = _body()
    task_id = data.get("task_id")
    if not isinstance(task_id, int) or isinstance(task_id, bool):
        abort(400, "task_id (a number) is required")
    digit = data.get("digit")
    if digit is not None:
        digit = str(digit)
    result = data.get("result")
    if result is not None and (not isinstance(result, int) or isinstance(result, bool)):
        abort(400, "result must be a number")
    try:
        outcome = place_call(_emu(), task_id, digit, result, data.get("text"))
    except CallError as err:
        return jsonify(error=str(err)), err.http_status
    return jsonify(outcome), 200


@bp.post("/dial-pending")
def dial_pending() -> Response:
    """Call every queued task with the same answer: {"digit": "1"} (null = no answer)."""
    data = _body()
    digit = data.get("digit")
    emu = _emu()
    outcomes = []
    for task_id in emu.pending_task_ids():
        try:
            outcomes.append(place_call(emu, task_id, None if digit is None else str(digit)))
        except CallError as err:
            outcomes.append({"task_id": task_id, "error": str(err)})
    return jsonify(calls=outcomes)


@bp.get("/requests")
def requests_log() -> Response:
    emu = _emu()
    with emu.store.lock:
        return jsonify(requests=list(emu.store.requests))


@bp.route("/faults", methods=["GET", "POST", "DELETE"])
def faults() -> tuple[Response, int]:
    """POST {"path": "task/add", "kind": "error"|"rate_limit"|"delay_before"|"delay_after",
    "result": 5003, "http_status": 500, "seconds": 30, "times": 1}; DELETE clears all."""
    emu = _emu()
    if request.method == "POST":
        try:
            emu.add_fault(_body())
        except (TypeError, ValueError) as err:
            return jsonify(error=str(err)), 400
    elif request.method == "DELETE":
        emu.faults.clear()
    return jsonify(faults=emu.faults.listing()), 200


@bp.post("/release")
def release() -> Response:
    """End every delay now (latency, delay_before, delay_after)."""
    return jsonify(released=_emu().holds.release_all())


@bp.route("/campaigns", methods=["GET", "POST"])
def campaigns() -> tuple[Response, int]:
    """POST {"campaign_id": 1, "endless": true, "status": 1} adds or changes a campaign."""
    emu = _emu()
    if request.method == "POST":
        data = _body()
        try:
            spec = CampaignSpec(
                campaign_id=int(data["campaign_id"]),
                endless=bool(data.get("endless", True)),
                status=int(data.get("status", 1)),
            )
        except (KeyError, TypeError, ValueError):
            return jsonify(error="campaign_id (number), endless (bool), status (0..6) expected"), 400
        with emu.store.lock:
            emu.store.campaigns[spec.campaign_id] = spec
    with emu.store.lock:
        listing = [vars(c) for c in emu.store.campaigns.values()]
    return jsonify(campaigns=listing), 200


@bp.route("/config", methods=["GET", "POST"])
def config() -> tuple[Response, int]:
    """POST any of EmulatorOptions.RUNTIME_KEYS to change them while running."""
    emu = _emu()
    if request.method == "POST":
        data = _body()
        unknown = set(data) - set(EmulatorOptions.RUNTIME_KEYS)
        if unknown:
            return jsonify(error=f"not changeable at run time: {sorted(unknown)}"), 400
        current = {k: getattr(emu.options, k) for k in EmulatorOptions.RUNTIME_KEYS}
        try:
            # Validate on a copy first so a bad value changes nothing.
            EmulatorOptions(**{**current, **data})
        except (TypeError, ValueError) as err:
            return jsonify(error=str(err)), 400
        for key, value in data.items():
            setattr(emu.options, key, value)
    return jsonify(emu.options.public()), 200


@bp.post("/clock")
def clock() -> tuple[Response, int]:
    """{"advance": 1.5}: move a --manual-clock emulator's clock (rate-limit windows)."""
    emu = _emu()
    source = emu.options.clock
    if not isinstance(source, AdjustableClock):
        return jsonify(error="the emulator runs on the system clock (start it with --manual-clock)"), 409
    seconds = _body().get("advance", 0)
    if not isinstance(seconds, int | float) or seconds < 0:
        return jsonify(error="advance must be a non-negative number"), 400
    source.advance(float(seconds))
    return jsonify(now=source.monotonic()), 200


@bp.post("/reset")
def reset() -> Response:
    """Forget tasks, requests, faults and rate windows; campaigns return to the start-up set."""
    _emu().reset()
    return jsonify(status="ok")
