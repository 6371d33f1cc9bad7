"""The events websocket's writes: what one loop iteration writes leaves in one send, in
order; closing sends what is held first; aborting drops it."""

from __future__ import annotations

import asyncio
from typing import Any

from ari_app.client import _CoalescingTransport


class RecordingTransport:
    def __init__(self) -> None:
        self.sent: list[bytes] = []
        self.log: list[str] = []
        self.closing = False

    def write(self, data: bytes) -> None:
        self.sent.append(data)
        self.log.append("write")

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.log.append("close")
        self.closing = True

    def abort(self) -> None:
        self.log.append("abort")
        self.closing = True

    def get_write_buffer_size(self) -> int:
        return 0

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 8088)}.get(name, default)


def test_writes_of_one_iteration_leave_together_and_in_order() -> None:
    async def go() -> tuple[list[bytes], int, Any]:
        raw = RecordingTransport()
        ws = _CoalescingTransport(raw, asyncio.get_running_loop())  # type: ignore[arg-type]
        ws.write(b"one,")
        ws.write(bytearray(b"two,"))
        ws.write(memoryview(b"three"))
        held = ws.get_write_buffer_size()
        assert raw.sent == []  # nothing before the iteration ends
        await asyncio.sleep(0)  # let the loop run one iteration: the flush
        ws.write(b"four")
        await asyncio.sleep(0)
        return raw.sent, held, ws.get_extra_info("peername")

    sent, held, peer = asyncio.run(go())
    assert sent == [b"one,two,three", b"four"]
    assert held == len(b"one,two,three")  # counted while held (websockets' flow control)
    assert peer == ("127.0.0.1", 8088)  # everything else is the real transport's


def test_close_sends_what_is_held_first_and_abort_drops_it() -> None:
    async def go() -> tuple[RecordingTransport, RecordingTransport]:
        loop = asyncio.get_running_loop()
        closed, aborted = RecordingTransport(), RecordingTransport()
        ws = _CoalescingTransport(closed, loop)  # type: ignore[arg-type]
        ws.write(b"close frame")
        ws.close()
        gone = _CoalescingTransport(aborted, loop)  # type: ignore[arg-type]
        gone.write(b"never")
        gone.abort()
        await asyncio.sleep(0)  # the flush scheduled by the writes finds nothing to send
        return closed, aborted

    closed, aborted = asyncio.run(go())
    assert closed.log == ["write", "close"] and closed.sent == [b"close frame"]
    assert aborted.log == ["abort"] and aborted.sent == []
