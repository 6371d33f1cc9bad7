"""Pushing signed callback batches to the registered handler URLs (smsru.md §10).

Records queue per URL; a pump turns them into batches of at most 100 ``data[N]`` fields
plus ``hash = sha256(api_id + records…)`` and POSTs each due batch. A batch is done only
when the handler answers HTTP 2xx with the body ``100``; otherwise it is retried after
``retry_delay · backoff^(attempt-1)`` seconds (capped at ``max_delay``) until it is
``max_age`` old or has had ``max_attempts`` tries. The real service retries every 60 s for
up to 5 days, which is the default.

Time comes from the emulator clock, so a test advances the clock and pumps instead of
sleeping. HTTP happens outside every lock: a slow receiver must not stall the API.
"""

from __future__ import annotations

import itertools
import secrets
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urlencode

import httpx

from emulators.smsru.clock import Clock
from emulators.smsru.codes import CALLBACK_REPLY, MAX_RECIPIENTS
from emulators.smsru.options import EmulatorOptions
from emulators.smsru.signing import callback_hash


@dataclass
class Batch:
    id: int
    url: str
    records: list[str]
    next_at: float
    first_at: float | None = None
    attempts: int = 0


@dataclass
class Attempt:
    batch: int
    url: str
    attempt: int
    at: float
    records: list[str]
    hash: str
    format: str
    ok: bool
    http_status: int | None = None
    body: str | None = None
    error: str | None = None
    gave_up: bool = False
    next_at: float | None = None


def encode(fields: list[tuple[str, str]], fmt: str) -> tuple[bytes, str]:
    """The POST body and its Content-Type; multipart is built by hand (httpx only does
    multipart when files are attached)."""
    if fmt == "urlencoded":
        return urlencode(fields).encode("utf-8"), "application/x-www-form-urlencoded"
    boundary = "----smsru-emulator-" + secrets.token_hex(12)
    chunks = []
    for name, value in fields:
        chunks.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        )
    chunks.append(f"--{boundary}--\r\n".encode())
    return b"".join(chunks), f"multipart/form-data; boundary={boundary}"


class CallbackDispatcher:
    def __init__(self, clock: Clock, options: Callable[[], EmulatorOptions]) -> None:
        self._clock = clock
        self._options = options
        self._lock = threading.Lock()
        self._pump_lock = threading.Lock()  # one pump at a time: the ticker and /advance may race
        self._pending: dict[str, list[str]] = {}
        self._batches: list[Batch] = []
        self._last_heartbeat: dict[str, float] = {}
        self._ids = itertools.count(1)
        self.attempts: deque[Attempt] = deque(maxlen=2000)
        self._http: httpx.Client | None = None  # made on first use: building one costs ~50 ms

    def _client(self) -> httpx.Client:
        with self._lock:
            if self._http is None:
                # No proxies from the environment: the receivers are local servers.
                self._http = httpx.Client(trust_env=False)
            return self._http

    def close(self) -> None:
        with self._lock:
            if self._http is not None:
                self._http.close()
                self._http = None

    def enqueue(self, url: str, record: str) -> None:
        with self._lock:
            self._pending.setdefault(url, []).append(record)

    def forget(self, url: str) -> None:
        """A deleted handler gets nothing more, queued or retrying."""
        with self._lock:
            self._pending.pop(url, None)
            self._batches = [b for b in self._batches if b.url != url]

    def reset(self) -> None:
        with self._lock:
            self._pending.clear()
            self._batches.clear()
            self._last_heartbeat.clear()
            self.attempts.clear()

    def queued(self) -> list[dict[str, Any]]:
        with self._lock:
            queued: list[dict[str, Any]] = [
                {"url": url, "records": list(records), "batch": None}
                for url, records in self._pending.items()
            ]
            for b in self._batches:
                queued.append(
                    {"url": b.url, "records": list(b.records), "batch": b.id, "attempts": b.attempts,
                     "next_at": b.next_at}
                )  # fmt: skip
            return queued

    def pump(self) -> list[Attempt]:
        """Attempt every batch that is due now; returns what was attempted."""
        with self._pump_lock:
            options = self._options()
            due = self._due(options)
            done = []
            for batch in due:
                done.append(self._attempt(batch, options))
            return done

    def _due(self, options: EmulatorOptions) -> list[Batch]:
        now = self._clock.now()
        with self._lock:
            for url, records in self._pending.items():
                if options.heartbeat_interval is not None and records:
                    last = self._last_heartbeat.get(url)
                    if last is None or now - last >= options.heartbeat_interval:
                        records.insert(0, f"test\n{int(now)}")
                        self._last_heartbeat[url] = now
                for start in range(0, len(records), MAX_RECIPIENTS):
                    chunk = records[start : start + MAX_RECIPIENTS]
                    self._batches.append(Batch(next(self._ids), url, chunk, next_at=now))
            self._pending.clear()
            return [b for b in self._batches if b.next_at <= now]

    def _attempt(self, batch: Batch, options: EmulatorOptions) -> Attempt:
        now = self._clock.now()
        fields = [(f"data[{i}]", record) for i, record in enumerate(batch.records)]
        digest = callback_hash(options.api_id, batch.records)
        fields.append(("hash", digest))
        body, content_type = encode(fields, options.callback_format)
        attempt = Attempt(
            batch=batch.id,
            url=batch.url,
            attempt=batch.attempts + 1,
            at=now,
            records=list(batch.records),
            hash=digest,
            format=options.callback_format,
            ok=False,
        )
        try:
            headers = {"Content-Type": content_type}
            response = self._client().post(
                batch.url, content=body, headers=headers, timeout=options.callback_timeout
            )
            attempt.http_status = response.status_code
            attempt.body = response.text[:200]
            # "Exactly 100"; surrounding whitespace (PHP's trailing newline) is forgiven.
            attempt.ok = response.is_success and response.text.strip() == CALLBACK_REPLY
        except httpx.HTTPError as exc:
            attempt.error = f"{type(exc).__name__}: {exc}"
        self._settle(batch, attempt, options)
        self.attempts.append(attempt)
        return attempt

    def _settle(self, batch: Batch, attempt: Attempt, options: EmulatorOptions) -> None:
        with self._lock:
            batch.attempts += 1
            if batch.first_at is None:
                batch.first_at = attempt.at
            if attempt.ok:
                self._drop(batch)
                return
            now = self._clock.now()
            too_old = now - batch.first_at >= options.callback_max_age
            max_attempts = options.callback_max_attempts
            too_many = max_attempts is not None and batch.attempts >= max_attempts
            if too_old or too_many:
                attempt.gave_up = True
                self._drop(batch)
                return
            delay = options.callback_retry_delay * options.callback_backoff ** (batch.attempts - 1)
            batch.next_at = now + min(delay, options.callback_max_delay)
            attempt.next_at = batch.next_at

    def _drop(self, batch: Batch) -> None:
        self._batches = [b for b in self._batches if b is not batch]

    def history(self) -> list[dict[str, Any]]:
        return [asdict(a) for a in list(self.attempts)]
