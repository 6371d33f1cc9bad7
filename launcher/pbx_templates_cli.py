"""`mis-telephony pbx templates list|show|edit|reset|diff|check|apply|history|rollback`: the
PBX console (asterisk_conf.console) for admins who live in a shell. The same checks as the
web console; exit code 0 = done, 1 = refused (the reason is printed), 2 = bad arguments.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from asterisk_conf.console import make_console
from asterisk_conf.render import TEMPLATES
from clinic.config import Config
from clinic.models import User
from clinic.pbx_port import ApplyResult, CheckResult, PbxConsole, Problem, SaveResult


def _problems(problems: tuple[Problem, ...]) -> None:
    for p in problems:
        print(f"  ✗ {p}")


def _print_check(result: CheckResult) -> None:
    if result.ok:
        print("Проверка пройдена: шаблоны отрисованы, проверка mis-telephony и Asterisk без ошибок")
    else:
        print("Проверка не пройдена:")
        _problems(result.problems)
    if result.note:
        print(result.note)


def _print_save(result: SaveResult) -> int:
    print(result.message)
    _problems(result.problems)
    return 0 if result.ok else 1


def _print_apply(result: ApplyResult) -> int:
    print(f"ревизия {result.revision_id}: {result.message}")
    if result.warning:
        print(f"внимание: {result.warning}")
    if result.output:
        print("--- ответ Asterisk ---")
        print(result.output)
    return 0 if result.ok else 1


def _read_text(path: str) -> str:
    if path == "-":
        return sys.stdin.read()
    return Path(path).read_text(encoding="utf-8")


def _pending(args: argparse.Namespace) -> dict[str, str] | None:
    if getattr(args, "file", None):
        if not args.name:
            raise SystemExit("укажите шаблон вместе с --file")
        return {args.name: _read_text(args.file)}
    return None


def _edit_in_editor(text: str, name: str) -> tuple[str, Path]:
    editor = os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi"
    fd, tmp = tempfile.mkstemp(prefix=f"mis-{name}-", suffix=".j2")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    subprocess.run([*shlex.split(editor), tmp], check=False)
    return Path(tmp).read_text(encoding="utf-8"), Path(tmp)


def _author(sessions: sessionmaker[Session], login: str | None) -> int | None:
    if not login:
        return None
    with sessions() as session:
        user = session.scalars(select(User).where(User.login == login)).first()
        if user is None:
            raise SystemExit(f"нет пользователя с логином «{login}»")
        return user.id


def run_templates(args: argparse.Namespace, config: Config, sessions: sessionmaker[Session]) -> int:
    console: PbxConsole = make_console(config, sessions)
    cmd = args.tpl_command
    author = _author(sessions, getattr(args, "author", None))
    if cmd == "list":
        for t in console.templates():
            kind = f"своя, версия {t.version}" if t.is_override else "исходная"
            print(f"{t.name:28} {kind:20} {t.title}")
        return 0
    if cmd in ("show", "edit", "reset") and args.name not in TEMPLATES:
        print(f"неизвестный шаблон «{args.name}»; есть: {', '.join(TEMPLATES)}", file=sys.stderr)
        return 2
    if cmd == "show":
        info = console.template(args.name)
        assert info is not None
        sys.stdout.write(info.shipped if args.shipped else info.text)
        return 0
    if cmd == "edit":
        info = console.template(args.name)
        assert info is not None
        kept: Path | None = None
        if args.file:
            text = _read_text(args.file)
        else:
            text, kept = _edit_in_editor(info.text, args.name)
            if text == info.text:
                kept.unlink(missing_ok=True)
                print("шаблон не изменён")
                return 0
        result = console.save(args.name, text, info.version, author, args.comment or "")
        code = _print_save(result)
        if kept is not None:
            if result.ok:
                kept.unlink(missing_ok=True)
            else:
                print(f"ваш текст сохранён в {kept}: исправьте и повторите с --file {kept}")
        return code
    if cmd == "reset":
        info = console.template(args.name)
        assert info is not None
        if not info.is_override:
            print("шаблон и так исходный")
            return 0
        return _print_save(console.reset(args.name, info.version, author, args.comment or ""))
    if cmd == "check":
        result = console.check(_pending(args))
        _print_check(result)
        if args.verbose and result.output:
            print(result.output)
        return 0 if result.ok else 1
    if cmd == "diff":
        result, diffs = console.diff(_pending(args))
        if not result.ok:
            _print_check(result)
            return 1
        changed = [d for d in diffs if d.diff]
        for d in changed:
            sys.stdout.write(d.diff)
        if not changed:
            print("отличий от работающей конфигурации нет")
        return 0
    if cmd == "apply":
        return _print_apply(console.apply(author, args.comment or ""))
    if cmd == "history":
        for r in console.history(args.limit):
            back = "" if r.can_rollback else " (без шаблонов)"
            print(f"{r.id:5} {r.at:%Y-%m-%d %H:%M} {r.status:9} {r.author:24} {r.comment}{back}")
            if args.verbose:
                print(f"      {r.message}")
        return 0
    if cmd == "rollback":
        return _print_apply(console.rollback(args.revision, author, args.comment or ""))
    raise AssertionError(cmd)


def register_templates(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("templates",
                            help="the PBX console: templates, check, diff, apply, history, rollback")
    tpl = parser.add_subparsers(dest="tpl_command", required=True)

    def add(name: str, help_text: str) -> argparse.ArgumentParser:
        p = tpl.add_parser(name, help=help_text)
        p.add_argument("--author", default=None, help="login of the admin recorded as the author")
        return p

    add("list", "templates: shipped or the clinic's own")
    p = add("show", "print a template (the one in use, or --shipped)")
    p.add_argument("name")
    p.add_argument("--shipped", action="store_true")
    p = add("edit", "edit the clinic's override in $EDITOR, or read it from --file (- = stdin)")
    p.add_argument("name")
    p.add_argument("--file", default=None)
    p.add_argument("--comment", default="")
    p = add("reset", "remove the override: the shipped template is used again")
    p.add_argument("name")
    p.add_argument("--comment", default="")
    for name, help_text in (("check", "render, validate and let a throw-away Asterisk parse the result"),
                            ("diff", "unified diff of the rendered files against what Asterisk runs now")):
        p = add(name, help_text)
        p.add_argument("name", nargs="?", default=None, help="with --file: try this text for the template")
        p.add_argument("--file", default=None)
        p.add_argument("-v", "--verbose", action="store_true")
    p = add("apply", "render, check, write, reload and check the running Asterisk (rolls back on failure)")
    p.add_argument("--comment", default="")
    p = add("history", "every configuration revision")
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("-v", "--verbose", action="store_true")
    p = add("rollback", "re-apply the templates of an earlier revision, through the same checks")
    p.add_argument("revision", type=int)
    p.add_argument("--comment", default="")
