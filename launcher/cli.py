"""`mis-telephony <command>`: every process and admin task behind one console script."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable

from clinic import datadir
from clinic.config import Config

Handler = Callable[[argparse.Namespace, Config], int]


def _cmd_migrate(_args: argparse.Namespace, config: Config) -> int:
    from clinic.db import migrate

    migrate(config.database_url)
    print("База данных обновлена до последней миграции")
    return 0


def _cmd_seed(_args: argparse.Namespace, config: Config) -> int:
    from clinic.db import make_engine, make_session_factory, migrate
    from clinic.seed import clinic_today, seed_demo

    migrate(config.database_url)
    factory = make_session_factory(make_engine(config.database_url))
    counts = seed_demo(factory, clinic_today(factory))
    print(f"Демо-данные: клиника создана={counts['created_clinic']}, "
          f"добавлено записей на приём={counts['appointments_added']}")
    return 0


def _cmd_web(args: argparse.Namespace, config: Config) -> int:
    from launcher.serve import serve_web

    serve_web(config, public_only=False, port=args.port or config.web_port)
    return 0


def _cmd_hooks(args: argparse.Namespace, config: Config) -> int:
    from launcher.serve import serve_web

    serve_web(config, public_only=True, port=args.port or config.hooks_port)
    return 0


def _cmd_worker(args: argparse.Namespace, config: Config) -> int:
    import signal
    import threading

    from clinic.db import make_engine, make_session_factory
    from clinic.worker.jobs import JobContext
    from clinic.worker.registry import all_jobs
    from clinic.worker.runner import run_jobs, run_once

    ctx = JobContext(config, make_session_factory(make_engine(config.database_url)))
    if args.once:
        outcome = run_once(ctx, all_jobs())
        for name, result in outcome.items():
            print(f"{name}: {result}")
        return 0 if all(r == "ok" for r in outcome.values()) else 1
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    logging.getLogger("mis-telephony").info("worker: %d задач", len(all_jobs()))
    run_jobs(ctx, all_jobs(), stop)
    return 0


def _cmd_run(_args: argparse.Namespace, config: Config) -> int:
    from launcher.run import run_all

    return run_all(config)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mis-telephony", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("migrate", help="apply database migrations").set_defaults(handler=_cmd_migrate)
    sub.add_parser("seed", help="create the demo clinic (idempotent)").set_defaults(handler=_cmd_seed)
    for name, handler, help_text in (
        ("web", _cmd_web, "serve the UI and REST API (default :8000)"),
        ("hooks", _cmd_hooks, "serve the public webhooks listener (default :55055)"),
    ):
        p = sub.add_parser(name, help=help_text)
        p.add_argument("--port", type=int, default=0)
        p.set_defaults(handler=handler)
    worker = sub.add_parser("worker", help="run scheduled jobs (SMS, server tasks)")
    worker.add_argument("--once", action="store_true", help="run every job one time and exit")
    worker.set_defaults(handler=_cmd_worker)
    sub.add_parser("run", help="start the whole demo system (make run)").set_defaults(handler=_cmd_run)
    _register_optional(sub)
    return parser


def _register_optional(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Sub-commands owned by other modules register themselves here."""
    from launcher import ari_cli, pbx_cli, token_cli

    pbx_cli.register(sub)
    token_cli.register(sub)
    ari_cli.register(sub)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    config = Config.from_env()
    datadir.secure(config.data_dir, config.database_url)
    handler: Handler = args.handler
    return handler(args, config)


if __name__ == "__main__":
    sys.exit(main())
