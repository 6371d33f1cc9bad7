"""The Asterisk chroot has an /etc/hosts naming loopback and the machine itself: without it
(a debootstrapped tree has none) Asterisk's lookups of its own host name for WebRTC calls went
to an unreachable DNS and stalled ~5 s each. Written by `runtime.start` (`_prepare_tree`)."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pytest

from asterisk_conf import runtime

from .pbxkit import Pbx

pytestmark = [pytest.mark.pbx]


def test_the_started_chroot_resolves_the_machines_name_and_localhost(pbx: Pbx) -> None:
    chroot = pbx.config.pbx.chroot
    hosts = (chroot / "etc/hosts").read_text()
    name = socket.gethostname()
    assert f"127.0.0.1 localhost {name}\n" in hosts, hosts
    for what in (name, "localhost"):
        # the chroot's own resolver (nsswitch `hosts: files dns`), as Asterisk's getaddrinfo sees it
        out = subprocess.run(["chroot", str(chroot), "getent", "hosts", what],
                             capture_output=True, text=True, timeout=10, check=False)  # fmt: skip
        assert out.returncode == 0, (what, out)
        assert out.stdout.split()[0] in ("127.0.0.1", "::1"), out.stdout


def test_a_stale_hosts_file_is_replaced_and_a_strange_name_left_out(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/hosts").write_text("10.9.9.9 elsewhere\n")
    runtime.write_hosts(tmp_path)
    text = (tmp_path / "etc/hosts").read_text()
    assert text == runtime.hosts_file(socket.gethostname()) and "elsewhere" not in text
    assert runtime.hosts_file("bad name\n10.0.0.1 x").startswith("127.0.0.1 localhost\n")
    assert runtime.hosts_file("localhost").startswith("127.0.0.1 localhost\n::1 ")
