"""clinic.ami's synchronous entry works even where the calling thread runs an event loop
(Playwright's sync API does that for a whole test session; so may an async caller)."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest

from clinic import ami
from clinic.config import PbxConfig


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_run_inside_a_running_loop_reaches_ami_instead_of_failing_on_asyncio() -> None:
    pbx = PbxConfig(mode="external", chroot=Path("/nonexistent"), conf_dir=Path("/nonexistent"),
                    ari_url="http://127.0.0.1:1/ari", ari_user="u", ari_password="p",
                    ami_port=_closed_port(), ami_secret="s3cret-value")

    async def caller() -> None:
        ami.run(pbx, lambda client: client.endpoints(), timeout=2)

    with pytest.raises(ami.AmiError, match="unreachable") as err:
        asyncio.run(caller())
    assert "s3cret-value" not in str(err.value)
