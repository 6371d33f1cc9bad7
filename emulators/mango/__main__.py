"""`python -m emulators.mango`: run the Mango Office emulator under waitress.

Prints one line, `mango emulator listening on http://HOST:PORT`, once the socket is bound
(with --port 0 it shows the port picked), so a supervisor or a test can read it instead of
polling.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import sys
from collections.abc import Sequence

from waitress.server import create_server

from .app import create_app, emulator_of
from .clock import ManualClock, SystemClock
from .options import (
    DEFAULT_CUSTOM_FIELDS,
    DEMO_KEY,
    DEMO_SALT,
    INFO_FIELDS,
    WEBHOOK_FORMATS,
    CampaignSpec,
    EmulatorOptions,
)


def _pair(text: str, value_type: type = int) -> tuple[str, int]:
    name, sep, value = text.rpartition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    try:
        return name, value_type(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number") from None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m emulators.mango", description="Mango Office VPBX emulator")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=9102, help="0 picks a free port")
    p.add_argument(
        "--allow-remote",
        action="store_true",
        help="allow a non-loopback --host (admin endpoints have no authentication)",
    )
    p.add_argument(
        "--key",
        default=os.environ.get("MANGO_EMULATOR_KEY", DEMO_KEY),
        help="vpbx_api_key to accept (env MANGO_EMULATOR_KEY)",
    )
    p.add_argument(
        "--salt",
        default=os.environ.get("MANGO_EMULATOR_SALT", DEMO_SALT),
        help="vpbx_api_salt to verify signatures with (env MANGO_EMULATOR_SALT)",
    )
    p.add_argument(
        "--webhook-url",
        help="where calls POST {id, status}, e.g. http://127.0.0.1:55055/MangoOffice/UpdateStatus",
    )
    p.add_argument(
        "--campaign",
        type=int,
        action="append",
        default=[],
        help="an endless campaign id (repeatable; default 56919)",
    )
    p.add_argument(
        "--finite-campaign",
        type=int,
        action="append",
        default=[],
        help="a non-endless campaign id: task/add answers 5106 (repeatable)",
    )
    p.add_argument(
        "--custom-field",
        type=_pair,
        action="append",
        default=[],
        metavar="NAME=ID",
        help="custom field (repeatable; replaces the default Время/Дата/Услуга/Специалист/Пациент_ФИО)",
    )
    p.add_argument(
        "--info-field",
        default="comment",
        help=f"task field sent back as id: {', '.join(INFO_FIELDS)} or custom:<id>",
    )
    p.add_argument("--webhook-format", choices=WEBHOOK_FORMATS, default="json")
    p.add_argument("--webhook-timeout", type=float, default=5.0)
    p.add_argument(
        "--digit-status",
        type=_pair,
        action="append",
        default=[],
        metavar="DIGIT=STATUS",
        help="digit -> status sent (repeatable; default 1=1 2=2)",
    )
    p.add_argument("--auto-dial", metavar="DIGIT|none", help="call every new task and press DIGIT")
    p.add_argument("--auto-dial-delay", type=float, default=0.0, help="seconds before an auto-dial call")
    p.add_argument("--latency", type=float, default=0.0, help="seconds added before each /vpbx answer")
    p.add_argument("--rate-limit", type=int, default=10, help="VPBX requests per second per key; 0 = off")
    p.add_argument("--task-add-rate", type=int, default=5, help="task/add per second (5008 above); 0 = off")
    p.add_argument(
        "--bad-request-lockout",
        action="store_true",
        help="answer 401 for 2 minutes after a second 3xxx error within 2 minutes",
    )
    p.add_argument("--errors-as-http-200", action="store_true", help="send error codes with HTTP 200")
    p.add_argument("--max-tasks", type=int, default=10_000, help="tasks per campaign before 5107")
    p.add_argument(
        "--manual-clock", action="store_true", help="rate-limit clock moves only via POST /_emulator/clock"
    )
    p.add_argument("--threads", type=int, default=8, help="waitress worker threads")
    return p


def options_from_args(args: argparse.Namespace) -> EmulatorOptions:
    campaigns = [CampaignSpec(c) for c in args.campaign] + [
        CampaignSpec(c, endless=False) for c in args.finite_campaign
    ]
    return EmulatorOptions(
        api_key=args.key,
        api_salt=args.salt,
        webhook_url=args.webhook_url,
        campaigns=campaigns or [CampaignSpec(56919)],
        custom_fields=dict(args.custom_field) or dict(DEFAULT_CUSTOM_FIELDS),
        info_field=args.info_field,
        webhook_format=args.webhook_format,
        webhook_timeout=args.webhook_timeout,
        digit_status=dict(args.digit_status) or {"1": 1, "2": 2},
        auto_dial=args.auto_dial,
        auto_dial_delay=args.auto_dial_delay,
        latency=args.latency,
        rate_limit=args.rate_limit or None,
        task_add_rate=args.task_add_rate or None,
        bad_request_lockout=args.bad_request_lockout,
        errors_as_http_200=args.errors_as_http_200,
        max_tasks_per_campaign=args.max_tasks,
        clock=ManualClock() if args.manual_clock else SystemClock(),
    )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.allow_remote and not _is_loopback(args.host):
        parser.error("--host must be a loopback address unless --allow-remote is given")
    try:
        options = options_from_args(args)
    except ValueError as err:
        parser.error(str(err))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    app = create_app(options)
    server = create_server(app, host=args.host, port=args.port, threads=args.threads)
    print(f"mango emulator listening on http://{args.host}:{server.effective_port}", flush=True)  # type: ignore[union-attr]
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        emulator_of(app).shutdown()
        server.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
