"""Run a coroutine to completion on a fresh event loop in its own thread.

The browser tests keep one Playwright (sync API) for the whole session, and it leaves an
event loop registered as running in the main thread, so `asyncio.run()` there fails with
"cannot be called from a running event loop". Tests that drive asyncio code use this."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")


def run(factory: Callable[[], Awaitable[T]], timeout: float = 120.0) -> T:
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(_await(factory))
        except BaseException as exc:  # re-raised in the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=target, name="aiorun", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise TimeoutError(f"coroutine still running after {timeout} s")
    if "error" in box:
        raise box["error"]
    return box["value"]  # type: ignore[no-any-return]


async def _await(factory: Callable[[], Awaitable[T]]) -> T:
    return await factory()
