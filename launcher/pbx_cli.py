"""`mis-telephony pbx provision|start|stop|status|apply|templates ...`.

launcher/cli.py calls `register(subparsers)`; each sub-command sets `func(args) -> int`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from sqlalchemy.orm import Session, sessionmaker

from asterisk_conf import apply, runtime
from asterisk_conf.render import RenderError
from clinic.config import Config


def _sessions(config: Config) -> sessionmaker[Session]:
    from clinic.db import make_engine, make_session_factory, migrate

    migrate(config.database_url)  # idempotent; start/apply read users from the DB
    return make_session_factory(make_engine(config.database_url))


def cmd_provision(_args: argparse.Namespace, config: Config) -> int:
    res = runtime.provision(config.pbx)
    print(res.message)
    if res.seconds:
        print(f"provision: {res.seconds:.1f} s")
    return 0 if res.ok else 1


def cmd_start(_args: argparse.Namespace, config: Config) -> int:
    if config.pbx.mode == "local":
        runtime.provision(config.pbx)  # no-op when the chroot is there
        if runtime.running_pid(config.pbx, config.data_dir) is None:
            # boot with the clinic's config so ARI/AMI and the phones are there from the start
            written = apply.apply_from_db(config, _sessions(config), None, reload=False)
            print(f"revision {written.revision_id}: {written.message}")
            if not written.ok:
                return 1
    res = runtime.start(config.pbx, config.data_dir)
    print(res.message)
    if res.seconds:
        print(f"start: {res.seconds:.2f} s")
    return 0 if res.ok else 1


def cmd_stop(_args: argparse.Namespace, config: Config) -> int:
    res = runtime.stop(config.pbx, config.data_dir)
    print(res.message)
    return 0 if res.ok else 1


def cmd_status(_args: argparse.Namespace, config: Config) -> int:
    res = runtime.status(config.pbx, config.data_dir)
    print(res.message)
    return 0 if res.ok else 3


def cmd_apply(args: argparse.Namespace, config: Config) -> int:
    res = apply.apply_from_db(config, _sessions(config), args.author_id)
    print(f"revision {res.revision_id}: {res.message}")
    if res.warning:
        print(f"warning: {res.warning}")
    return 0 if res.ok else 1


COMMANDS: dict[str, tuple[Callable[[argparse.Namespace, Config], int], str]] = {
    "provision": (cmd_provision, "build the local Asterisk 22 chroot (cached; needs root)"),
    "start": (cmd_start, "write the clinic's config and start the local Asterisk"),
    "stop": (cmd_stop, "stop the local Asterisk and unmount the chroot"),
    "status": (cmd_status, "is Asterisk running and answering ARI?"),
    "apply": (cmd_apply, "render, validate, write, reload and check the config (rolls back on failure)"),
}


def cmd_templates(args: argparse.Namespace, config: Config) -> int:
    from launcher.pbx_templates_cli import run_templates

    return run_templates(args, config, _sessions(config))


def run(args: argparse.Namespace, config: Config) -> int:
    """The `handler(args, config)` that launcher/cli.py calls."""
    if args.pbx_command == "templates":
        return cmd_templates(args, config)
    func, _ = COMMANDS[args.pbx_command]
    try:
        return func(args, config)
    except (runtime.PbxRuntimeError, RenderError) as exc:
        print(f"pbx {args.pbx_command}: {exc}", file=sys.stderr)
        return 2


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("pbx", help="the Asterisk PBX: provision, start, stop, status, apply")
    names = [*COMMANDS, "templates"]
    sub = parser.add_subparsers(dest="pbx_command", required=True, metavar="{" + ",".join(names) + "}")
    for name, (_, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text)
        if name == "apply":
            p.add_argument("--author-id", type=int, default=None, help="users.id recorded in the revision")
    from launcher.pbx_templates_cli import register_templates

    register_templates(sub)
    parser.set_defaults(handler=run)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Standalone entry (`python -m launcher.pbx_cli status`)."""
    top = argparse.ArgumentParser(prog="mis-telephony")
    register(top.add_subparsers(dest="command", required=True))
    args = top.parse_args(["pbx", *(sys.argv[1:] if argv is None else argv)])
    return int(args.handler(args, Config.from_env()))


if __name__ == "__main__":
    raise SystemExit(main())
