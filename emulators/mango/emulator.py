"""The Mango VPBX API as the emulator answers it, independent of Flask.

Checks run in the order a request meets them at Mango: a lockout from earlier bad requests
(401), the HTTP method (3101), the method path (4001), rate limits (429 / 5008), the three
form fields (3103), the key (3105), the signature (3102), the JSON (3400), then the method's
own parameters and campaign rules.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from typing import Any

from .dialer import AutoDialer
from .faults import Fault, Faults, Holds
from .options import EmulatorOptions
from .ratelimit import SlidingWindow
from .signing import sign_ok
from .state import ACTIVE_STATUSES, CAMPAIGN_FINISHED, TASK_DELETED, TASK_IN_PROGRESS, Store, TaskRecord
from .validation import MISSING_PARAM, ApiError, number_key, require_int, validate_task

OK = 1000
NOT_POST = 3101
BAD_SIGN = 3102
BAD_KEY = 3105
NOT_FOUND = 3300
BAD_JSON = 3400
UNSUPPORTED = 4001
RATE_LIMIT_CC = 5008
CAMPAIGN_STATE = 5106
TOO_MANY_TASKS = 5107
DUPLICATE_NUMBER = 5109
TASK_STATE = 5111

LOCKOUT_SECONDS = 120.0  # "1 неверный запрос в 2 минуты" (API §1.4.1)

# The VPBX API's over-limit answer, verbatim from API §1.4.2.
VPBX_RATE_LIMIT_BODY = {
    "name": "Service Unavailable",
    "message": "Rate limit exceeded.",
    "code": 0,
    "status": 429,
}

Response = tuple[int, dict[str, Any]]


def http_status_for(code: int) -> int:
    """HTTP status for an error code. The doc only says errors come as some 2xx/4xx/5xx
    with a JSON code; this split is ours (errors_as_http_200 sends them all as 200)."""
    if code == RATE_LIMIT_CC:
        return 503  # API §1.4.4 pairs "503 и/или 5008"
    if code == UNSUPPORTED or code // 100 == 33:
        return 404
    if code == NOT_POST:
        return 405
    if code // 1000 in (3, 4) or code // 100 == 51:
        return 400
    return 500


class MangoEmulator:
    def __init__(self, options: EmulatorOptions) -> None:
        self.options = options
        self.store = Store(options.campaigns)
        self.limits = SlidingWindow(options.clock)
        self.faults = Faults()
        self.holds = Holds()
        self._calls = threading.Condition()
        self._calls_done = 0
        self.dialer = AutoDialer(self)
        self._methods: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            "custom-type/list": self._custom_type_list,
            "task/add": self._task_add,
            "tasks/push": self._tasks_push,
            "task/delete": self._task_delete,
            "campaign-report/create": self._campaign_report,
        }

    # ---- lifecycle and test hooks -------------------------------------------------------

    def reset(self) -> None:
        self.faults.clear()
        self.holds.release_all()
        self.limits.reset()
        self.store.reset()

    def shutdown(self) -> None:
        self.holds.release_all()
        self.dialer.stop()

    def note_call_done(self) -> None:
        with self._calls:
            self._calls_done += 1
            self._calls.notify_all()

    @property
    def calls_done(self) -> int:
        with self._calls:
            return self._calls_done

    def wait_for_calls(self, count: int, timeout: float) -> bool:
        """Block until `count` calls (by hand or auto-dial) have finished, webhook included."""
        with self._calls:
            return self._calls.wait_for(lambda: self._calls_done >= count, timeout=timeout)

    # ---- the API --------------------------------------------------------------------------

    def handle(self, path: str, http_method: str, form: Mapping[str, str]) -> Response:
        path = path.strip("/")
        entry: dict[str, Any] = {"at": self.options.clock.monotonic(), "path": path, "method": http_method}
        raw = form.get("json")
        try:
            entry["json"] = json.loads(raw) if raw is not None else None
        except ValueError:
            entry["json"] = raw
        status, body, fault = self._handle(path, http_method, form)
        entry["http_status"] = status
        entry["result"] = body.get("result") if isinstance(body.get("result"), int) else body.get("status")
        self.store.log_request(entry)
        if fault is not None and fault.kind == "delay_after" and status == 200:
            self.holds.wait(fault.seconds)  # done and logged, but the answer is late: a lost reply
        return status, body

    def _handle(
        self, path: str, http_method: str, form: Mapping[str, str]
    ) -> tuple[int, dict[str, Any], Fault | None]:
        """The answer and the fault (if any) this request used."""
        opts = self.options
        with self.store.lock:
            blocked = self.store.blocked_until
        if opts.bad_request_lockout and blocked is not None and opts.clock.monotonic() < blocked:
            return 401, {"status": 401, "message": "Unauthorized: too many bad requests"}, None
        if http_method != "POST":
            return (*self._error(NOT_POST, "only POST is accepted"), None)
        if path not in self._methods:
            return (*self._error(UNSUPPORTED, f"unknown method {path}"), None)
        fault = self.faults.take(path)
        return (*self._process(path, form, fault), fault)

    def _process(self, path: str, form: Mapping[str, str], fault: Fault | None) -> Response:
        opts = self.options
        if fault is not None:
            if fault.kind == "error":
                return self._error(fault.result, "injected fault", http_status=fault.http_status)
            if fault.kind == "rate_limit":
                return self._rate_limited(path)
            if fault.kind == "delay_before":
                self.holds.wait(fault.seconds)
        if opts.latency > 0:
            self.holds.wait(opts.latency)

        key = form.get("vpbx_api_key") or "-"
        limits: list[tuple[str, int | None]] = [(f"vpbx:{key}", opts.rate_limit)]
        if path == "task/add":
            limits.append((f"task-add:{key}", opts.task_add_rate))
        if self.limits.admit(limits) is not None:
            return self._rate_limited(path)

        missing = [f for f in ("vpbx_api_key", "sign", "json") if not form.get(f)]
        if missing:
            return self._error(MISSING_PARAM, "missing " + ", ".join(missing))
        if form["vpbx_api_key"] != opts.api_key:
            return self._error(BAD_KEY, "unknown vpbx_api_key")
        if not sign_ok(form["vpbx_api_key"], form["json"], opts.api_salt, form["sign"]):
            return self._error(BAD_SIGN, "sign does not match")
        try:
            payload = json.loads(form["json"])
        except ValueError:
            return self._error(BAD_JSON, "json is not valid JSON")
        if not isinstance(payload, dict):
            return self._error(BAD_JSON, "json must be an object")
        try:
            return 200, self._methods[path](payload)
        except ApiError as err:
            return self._error(err.code, err.message)

    def _rate_limited(self, path: str) -> Response:
        if path == "task/add":
            # Task creation is limited by the Contact-Center rule, which answers 5008.
            return self._error(RATE_LIMIT_CC, "Rate limit exceeded.")
        return (200 if self.options.errors_as_http_200 else 429), dict(VPBX_RATE_LIMIT_BODY)

    def _error(self, code: int, message: str, *, http_status: int | None = None) -> Response:
        if code // 1000 == 3 and self.options.bad_request_lockout:
            now = self.options.clock.monotonic()
            with self.store.lock:
                first = self.store.first_bad_request_at
                if first is not None and now - first < LOCKOUT_SECONDS:
                    self.store.blocked_until = first + LOCKOUT_SECONDS
                    return 401, {"status": 401, "message": "Unauthorized: too many bad requests"}
                self.store.first_bad_request_at = now
        if http_status is None:
            http_status = 200 if self.options.errors_as_http_200 else http_status_for(code)
        return http_status, {"result": code, "message": message}

    # ---- methods --------------------------------------------------------------------------

    def _custom_type_list(self, payload: dict[str, Any]) -> dict[str, Any]:
        items = [
            {
                "id": field_id,
                "order": order,
                "name": name,
                "field_type": "text",
                "props": {"show_master_io": True, "show_member": True},
            }
            for order, (name, field_id) in enumerate(self.options.custom_fields.items(), start=1)
        ]
        # The odd shape is the documented one: the list in "result", the code in "status".
        return {"result": items, "status": 200}

    def _campaign(self, payload: dict[str, Any]) -> tuple[int, Any]:
        campaign_id = require_int(payload, "campaign_id")
        campaign = self.store.campaigns.get(campaign_id)
        if campaign is None:
            raise ApiError(NOT_FOUND, f"campaign {campaign_id} not found")
        return campaign_id, campaign

    def _live_count(self, campaign_id: int) -> int:
        return sum(1 for t in self.store.campaign_tasks(campaign_id) if t.status != TASK_DELETED)

    def _task_add(self, payload: dict[str, Any]) -> dict[str, Any]:
        fields = {k: v for k, v in payload.items() if k != "campaign_id"}
        known = set(self.options.custom_fields.values())
        with self.store.lock:
            campaign_id, campaign = self._campaign(payload)
            validate_task(fields, known)
            if campaign.status == CAMPAIGN_FINISHED or not campaign.endless:
                raise ApiError(CAMPAIGN_STATE, "task/add needs an unfinished endless campaign")
            if number_key(fields["number"]) in self.store.active_numbers(campaign_id):
                raise ApiError(DUPLICATE_NUMBER, f"number {fields['number']} already has a task")
            if self._live_count(campaign_id) + 1 > self.options.max_tasks_per_campaign:
                raise ApiError(TOO_MANY_TASKS, "too many tasks in the campaign")
            task = self._create(campaign_id, fields, "task/add")
        return {"result": OK, "task_id": task.task_id}

    def _tasks_push(self, payload: dict[str, Any]) -> dict[str, Any]:
        known = set(self.options.custom_fields.values())
        with self.store.lock:
            campaign_id, campaign = self._campaign(payload)
            tasks = payload.get("tasks")
            if not tasks:
                raise ApiError(MISSING_PARAM, "tasks is required")
            if not isinstance(tasks, list):
                raise ApiError(3104, "tasks must be an array")
            for item in tasks:
                validate_task(item, known)
            if campaign.status == CAMPAIGN_FINISHED:
                raise ApiError(CAMPAIGN_STATE, "the campaign is finished")
            # The whole batch is refused on a repeated number, within it or against the
            # campaign; the doc does not say whether Mango drops only the repeats.
            seen = self.store.active_numbers(campaign_id)
            for item in tasks:
                key = number_key(item["number"])
                if key in seen:
                    raise ApiError(DUPLICATE_NUMBER, f"number {item['number']} is repeated")
                seen.add(key)
            if self._live_count(campaign_id) + len(tasks) > self.options.max_tasks_per_campaign:
                raise ApiError(TOO_MANY_TASKS, "too many tasks in the campaign")
            for item in tasks:
                self._create(campaign_id, dict(item), "tasks/push")
        return {"result": OK}

    def _create(self, campaign_id: int, fields: dict[str, Any], via: str) -> TaskRecord:
        task = TaskRecord(
            task_id=self.store.new_task_id(),
            campaign_id=campaign_id,
            fields=fields,
            via=via,
            created_at=self.options.clock.monotonic(),
        )
        self.store.tasks[task.task_id] = task
        if self.options.auto_dial is not None:
            self.dialer.enqueue(task.task_id)
        return task

    def _task_delete(self, payload: dict[str, Any]) -> dict[str, Any]:
        with self.store.lock:
            campaign_id, _ = self._campaign(payload)
            task_id = require_int(payload, "task_id")
            task = self.store.tasks.get(task_id)
            if task is None or task.campaign_id != campaign_id or task.status == TASK_DELETED:
                raise ApiError(NOT_FOUND, f"task {task_id} not found in campaign {campaign_id}")
            if task.status == TASK_IN_PROGRESS:
                raise ApiError(TASK_STATE, "the task is being called")
            task.status = TASK_DELETED
        return {"result": OK}

    def _campaign_report(self, payload: dict[str, Any]) -> dict[str, Any]:
        with self.store.lock:
            campaign_id, _ = self._campaign(payload)
            tasks = [
                {"task_id": t.task_id, "attempts": [dict(a) for a in t.attempts]}
                for t in self.store.campaign_tasks(campaign_id)
                if t.attempts
            ]
        return {"result": OK, "data": {"campaign_id": campaign_id, "tasks": tasks}}

    # ---- admin helpers ----------------------------------------------------------------------

    def add_fault(self, spec: Mapping[str, Any]) -> Fault:
        fault = Fault(**spec)
        self.faults.add(fault)
        return fault

    def pending_task_ids(self) -> list[int]:
        with self.store.lock:
            return [t.task_id for t in self.store.tasks.values() if t.status in ACTIVE_STATUSES]
