"""The `pbx` sub-command as launcher/cli.py mounts it: `pbx_cli.register(sub)`."""

from __future__ import annotations

import argparse
from dataclasses import replace

import pytest

from clinic.config import Config
from launcher import pbx_cli


def _parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="mis-telephony")
    pbx_cli.register(top.add_subparsers(dest="command", required=True))
    return top


@pytest.mark.parametrize("name", ["provision", "start", "stop", "status", "apply"])
def test_register_adds_every_pbx_command(name: str) -> None:
    args = _parser().parse_args(["pbx", name])
    assert args.command == "pbx" and args.pbx_command == name
    assert args.handler is pbx_cli.run


def test_apply_takes_an_author_and_pbx_needs_a_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert _parser().parse_args(["pbx", "apply", "--author-id", "3"]).author_id == 3
    with pytest.raises(SystemExit):
        _parser().parse_args(["pbx"])
    with pytest.raises(SystemExit):
        _parser().parse_args(["pbx", "reboot"])


def test_external_mode_commands_print_and_succeed(config: Config, capsys: pytest.CaptureFixture[str]) -> None:
    ext = replace(config, pbx=replace(config.pbx, mode="external"))
    for name in ("provision", "start", "stop"):
        args = _parser().parse_args(["pbx", name])
        assert args.handler(args, ext) == 0
        assert "managed externally" in capsys.readouterr().out
