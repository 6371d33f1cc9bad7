"""`mis-telephony token create NAME | list | revoke ID`: REST API tokens for the МИС.

Registered into the main CLI by launcher/cli.py; handlers follow its convention
(`handler(args, config) -> exit code`).
"""

from __future__ import annotations

import argparse
import sys
from typing import TextIO

from sqlalchemy.orm import Session, sessionmaker

from clinic.config import Config
from clinic.db import make_engine, make_session_factory, transaction
from clinic.services import ValidationError
from clinic.services.api_tokens import create_token, list_tokens, revoke_token


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser("token", help="REST API tokens for the МИС")
    sub = parser.add_subparsers(dest="token_command", required=True)
    create = sub.add_parser("create", help="create a token and print it (shown only once)")
    create.add_argument("name", help="who uses it, e.g. «МИС КСАМУ»")
    create.set_defaults(handler=_create)
    sub.add_parser("list", help="list tokens (never the tokens themselves)").set_defaults(handler=_list)
    revoke = sub.add_parser("revoke", help="revoke a token by its id")
    revoke.add_argument("id", type=int)
    revoke.set_defaults(handler=_revoke)


def _sessions(config: Config) -> sessionmaker[Session]:
    return make_session_factory(make_engine(config.database_url))


def _create(
    args: argparse.Namespace,
    config: Config,
    *,
    out: TextIO = sys.stdout,
    sessions: sessionmaker[Session] | None = None,
) -> int:
    try:
        with transaction(sessions or _sessions(config)) as s:
            row, token = create_token(s, args.name)
    except ValidationError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    print(f"Токен №{row.id} «{row.name}» создан. Сохраните его: больше он показан не будет.", file=out)
    print(token, file=out)
    return 0


def _list(
    args: argparse.Namespace,
    config: Config,
    *,
    out: TextIO = sys.stdout,
    sessions: sessionmaker[Session] | None = None,
) -> int:
    with transaction(sessions or _sessions(config)) as s:
        rows = list_tokens(s)
    if not rows:
        print("Токенов нет", file=out)
    for row in rows:
        state = "активен" if row.is_active else "отозван"
        used = row.last_used_at.isoformat(timespec="seconds") if row.last_used_at else "не использовался"
        print(f"{row.id}\t{state}\t{row.name}\tпоследнее использование: {used}", file=out)
    return 0


def _revoke(
    args: argparse.Namespace,
    config: Config,
    *,
    out: TextIO = sys.stdout,
    sessions: sessionmaker[Session] | None = None,
) -> int:
    try:
        with transaction(sessions or _sessions(config)) as s:
            row = revoke_token(s, args.id)
    except LookupError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    print(f"Токен №{row.id} «{row.name}» отозван", file=out)
    return 0
