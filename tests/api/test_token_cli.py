"""`mis-telephony token create|list|revoke` through the real argument parser."""

from __future__ import annotations

import argparse
import io

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from clinic.config import Config
from clinic.models import ApiToken
from clinic.security import token_digest
from launcher import token_cli

pytestmark = pytest.mark.db


def _run(argv: list[str], config: Config, sessions: sessionmaker[Session]) -> tuple[int, str]:
    parser = argparse.ArgumentParser()
    token_cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    out = io.StringIO()
    code = args.handler(args, config, out=out, sessions=sessions)
    return code, out.getvalue()


def test_create_list_revoke(
    config: Config, sessions: sessionmaker[Session], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = _run(["token", "create", "МИС КСАМУ"], config, sessions)
    assert code == 0
    token = out.strip().splitlines()[-1]
    assert token.startswith("mis_")
    with sessions() as s:
        row = s.scalars(select(ApiToken)).one()
        assert row.token_sha256 == token_digest(token) and row.name == "МИС КСАМУ"

    code, out = _run(["token", "list"], config, sessions)
    assert code == 0 and "МИС КСАМУ" in out and "активен" in out and token not in out

    code, out = _run(["token", "revoke", str(row.id)], config, sessions)
    assert code == 0
    with sessions() as s:
        assert s.get(ApiToken, row.id).is_active is False
    assert "отозван" in _run(["token", "list"], config, sessions)[1]

    assert _run(["token", "revoke", "999999"], config, sessions)[0] == 1
    assert _run(["token", "create", "  "], config, sessions)[0] == 2
    assert "не найден" in capsys.readouterr().err
