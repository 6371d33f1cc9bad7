"""What a local attacker finds on the PBX side (issue 12, point 11): Asterisk runs as a host
account of its own, and its AMI account can do only what our code does: no Originate (so no
System()), no UpdateConfig. (GetConfig stays: Asterisk grants it with the `system` class that
PJSIPShowEndpoint(s)/Contacts need.)"""

from __future__ import annotations

import pwd
from pathlib import Path

import pytest

from asterisk_conf import runtime
from clinic import ami

from .pbxkit import Pbx

pytestmark = pytest.mark.pbx


def _uids(pid: int) -> list[int]:
    line = next(x for x in Path(f"/proc/{pid}/status").read_text().splitlines() if x.startswith("Uid:"))
    return [int(v) for v in line.split()[1:]]


def test_asterisk_runs_as_its_own_host_account(pbx: Pbx) -> None:
    pid = runtime.running_pid(pbx.config.pbx, pbx.config.data_dir)
    assert pid is not None
    account = pwd.getpwnam(runtime.HOST_USER)
    assert set(_uids(pid)) == {account.pw_uid}  # real, effective, saved, fs: all ours, none root
    assert account.pw_shell == "/usr/sbin/nologin"
    assert runtime.chroot_ids(pbx.config.pbx.chroot) == (account.pw_uid, account.pw_gid)
    owners = {p.stat().st_uid for p in (pbx.config.pbx.chroot / "var/spool/asterisk").iterdir()}
    assert owners == {account.pw_uid}


@pytest.mark.parametrize(
    "action",
    [
        {"Action": "Originate", "Channel": "Local/s@clinic-internal", "Application": "System",
         "Data": "touch /tmp/mis-ami-pwned"},
        {"Action": "UpdateConfig", "SrcFilename": "manager.conf", "DstFilename": "manager.conf",
         "Action-000000": "Append", "Cat-000000": "mis", "Var-000000": "write", "Value-000000": "all"},
    ],
)
def test_ami_refuses_what_our_code_does_not_use(pbx: Pbx, action: dict[str, str]) -> None:
    with pytest.raises(ami.AmiError, match="Permission denied"):
        ami.run(pbx.config.pbx, lambda c: c.action(dict(action)))
    assert not Path("/tmp/mis-ami-pwned").exists()


def test_ami_still_does_what_our_code_uses(pbx: Pbx) -> None:
    async def work(client: ami.AmiClient) -> tuple[list[str], list[str]]:
        return await client.endpoints(), await client.command("core show version")

    endpoints, version = ami.run(pbx.config.pbx, work)
    assert endpoints and any("Asterisk 22" in line for line in version)


def test_asterisks_log_holds_no_secret_after_a_reload(pbx: Pbx) -> None:
    """Asterisk prints every dialplan global it sets, at start and at each reload: the
    FastAGI key lives in its environment instead (${ENV(MIS_AGI_KEY)}), and the AGI server
    still gets it from there."""
    secrets = [pbx.config.pbx.agi_secret, pbx.config.pbx.ari_password, pbx.config.pbx.ami_secret]
    assert all(len(s) >= 16 for s in secrets)  # real generated secrets: the check means something

    async def work(client: ami.AmiClient) -> list[str]:
        await client.command("dialplan reload")
        return await client.command("dialplan show globals")

    shown = "\n".join(ami.run(pbx.config.pbx, work))
    assert "ARI_APP" in shown and "MIS_AGI_KEY" not in shown  # the globals were read; no key among them
    text = runtime.log_path(pbx.config.data_dir).read_text(errors="replace")
    assert "Setting global variable 'ARI_APP'" in text  # the reload was logged, as the key would be
    assert not [s for s in secrets if s in text]
    pid = runtime.running_pid(pbx.config.pbx, pbx.config.data_dir)
    environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    assert f"MIS_AGI_KEY={pbx.config.pbx.agi_secret}".encode() in environ
