"""The robot's side: "call" a task, record the attempt, POST the answer to the clinic.

What the real robot sends is configured by the customer in Mango's UI and is not in any
public doc (mango.md §3a). The clinic manual shows the body template
`{"id": {{Дополнительная информация}}, "status": 1}` posted to
`<clinic>:55055/MangoOffice/UpdateStatus`, 1 = confirmed, 2 = cancelled; its exchange log
shows the id arriving as a string. That is what we send by default.
"""

from __future__ import annotations

import contextlib
import json
import queue
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import requests

from .state import ACTIVE_STATUSES, TASK_DONE, TASK_IN_PROGRESS, TASK_QUEUED

if TYPE_CHECKING:
    from .emulator import MangoEmulator

TALK_HAPPENED = 1  # attempt result: "разговор состоялся"
NO_ANSWER = 3  # "абонент не взял трубку"


class CallError(Exception):
    def __init__(self, http_status: int, message: str) -> None:
        self.http_status = http_status
        super().__init__(message)


@dataclass(frozen=True)
class WebhookBody:
    content_type: str
    data: bytes


def info_value(fields: dict[str, Any], info_field: str) -> Any:
    """The task's «Доп. информация» as the robot would read it."""
    if info_field.startswith("custom:"):
        return (fields.get("custom_fields") or {}).get(info_field.split(":", 1)[1])
    return fields.get(info_field)


def webhook_body(value: Any, status: int, fmt: str) -> WebhookBody:
    if fmt == "form":
        text = urlencode({"id": "" if value is None else str(value), "status": str(status)})
        return WebhookBody("application/x-www-form-urlencoded", text.encode())
    if fmt == "template":
        # The manual's template with the variable pasted in as is: no quotes around it.
        shown = "" if value is None else str(value)
        text = '{\n  "id": ' + shown + ',\n  "status": ' + str(status) + "\n}"
        return WebhookBody("application/json", text.encode("utf-8"))
    text = json.dumps({"id": value, "status": status}, ensure_ascii=False)
    return WebhookBody("application/json", text.encode("utf-8"))


def post_webhook(url: str, body: WebhookBody, timeout: float) -> dict[str, Any]:
    record: dict[str, Any] = {
        "url": url,
        "content_type": body.content_type,
        "request_body": body.data.decode("utf-8"),
        "http_status": None,
        "response_body": None,
        "error": None,
    }
    try:
        headers = {"Content-Type": body.content_type}
        resp = requests.post(url, data=body.data, headers=headers, timeout=timeout)
        record["http_status"] = resp.status_code
        record["response_body"] = resp.text[:2000]
    except requests.RequestException as exc:
        record["error"] = f"{type(exc).__name__}: {exc}"
    return record


def place_call(
    emu: MangoEmulator,
    task_id: int,
    digit: str | None,
    result: int | None = None,
    text: str | None = None,
) -> dict[str, Any]:
    """Make one attempt on `task_id`. A talk (result 1) finishes the task; anything else
    leaves it queued for another attempt, as a campaign's retry timers would."""
    opts = emu.options
    if result is None:
        result = TALK_HAPPENED if (digit is not None or text is not None) else NO_ANSWER
    store = emu.store
    with store.lock:
        task = store.tasks.get(task_id)
        if task is None:
            raise CallError(404, f"no task {task_id}")
        if task.status not in ACTIVE_STATUSES or task.status == TASK_IN_PROGRESS:
            raise CallError(409, f"task {task_id} has status {task.status}, nothing to call")
        task.status = TASK_IN_PROGRESS
        fields = dict(task.fields)
        attempt = {
            "attempt_id": store.new_attempt_id(),
            "name": fields.get("name"),
            "position": fields.get("position"),
            "organization": fields.get("organization"),
            "record_id": f"emu-record-{task_id}-{len(task.attempts) + 1}",
            "phone": fields["number"] if result == TALK_HAPPENED else None,
            "sms": None,
            "text": text,
            "number": digit,  # the doc's name for "the digit pressed"
            "result": result,
        }
        url = opts.webhook_url
        status = opts.digit_status.get(digit or "") if result == TALK_HAPPENED else None
        value = info_value(fields, opts.info_field)
        fmt, timeout = opts.webhook_format, opts.webhook_timeout

    webhook: dict[str, Any] | None = None
    if status is not None and url:
        webhook = post_webhook(url, webhook_body(value, status, fmt), timeout)
        webhook["status_sent"] = status

    with store.lock:
        task.attempts.append(attempt)
        task.status_reason = result
        task.status = TASK_DONE if result == TALK_HAPPENED else TASK_QUEUED
        if webhook is not None:
            task.webhooks.append(webhook)
    emu.note_call_done()
    return {"task_id": task_id, "attempt": attempt, "webhook": webhook}


class AutoDialer:
    """Calls each new task on a background thread after `auto_dial_delay` seconds."""

    def __init__(self, emu: MangoEmulator) -> None:
        self._emu = emu
        self._queue: queue.Queue[int | None] = queue.Queue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="mango-emulator-dialer", daemon=True)
        self._thread.start()

    def enqueue(self, task_id: int) -> None:
        self._queue.put(task_id)

    def stop(self) -> None:
        self._stop.set()
        self._queue.put(None)
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while True:
            task_id = self._queue.get()
            if task_id is None or self._stop.is_set():
                return
            opts = self._emu.options
            if self._stop.wait(opts.auto_dial_delay):
                return
            digit = opts.auto_dial
            if digit is None:
                continue  # switched off since the task was queued
            # CallError: deleted or already called by hand meanwhile; nothing to dial.
            with contextlib.suppress(CallError):
                place_call(self._emu, task_id, None if digit == "none" else digit)
