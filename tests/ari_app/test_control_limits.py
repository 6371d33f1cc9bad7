"""The control API bounds what it reads (issue 12, point 3): a large body is a 413 before
any command runs; a bad JSON body is a 400 with a Russian reason."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from ari_app.calls.notifier import Notifier
from ari_app.control import MAX_BODY, make_app


class NoService:
    """Any call into a service would be a failure of the test: nothing may reach it (the
    routes are built from its features, which are NoService too)."""

    def __getattr__(self, name: str) -> Any:
        return NoService()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the service was reached")


async def _post(body: bytes) -> tuple[int, Any]:
    app = make_app(NoService(), Notifier(), ari=None, token="t0ken")  # type: ignore[arg-type]
    async with TestClient(TestServer(app)) as client:
        resp = await client.post(
            "/calls", data=body, headers={"X-Control-Token": "t0ken", "X-Actor-Id": "1",
                                          "Content-Type": "application/json"},
        )  # fmt: skip
        return resp.status, await resp.json() if resp.content_type == "application/json" else None


def test_a_body_over_the_limit_is_413() -> None:
    status, _ = asyncio.run(_post(b'{"target": "' + b"1" * (MAX_BODY + 1) + b'"}'))
    assert status == 413


def test_deep_json_is_400_in_russian() -> None:
    status, answer = asyncio.run(_post(b"[" * 10_000))
    assert status == 400 and "вложенность" in answer["error"]
