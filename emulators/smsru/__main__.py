"""``python -m emulators.smsru``: serve the sms.ru emulator with waitress.

Example: ``python -m emulators.smsru --port 9101 --api-id TEST-KEY --balance 500 --sender Klinika``
then point the client at ``http://127.0.0.1:9101``. Run with ``--help`` for every option.
"""

from __future__ import annotations

import argparse
import logging
from decimal import Decimal

from emulators.smsru.app import create_app
from emulators.smsru.options import FAULT_RATE_KINDS, EmulatorOptions, FaultRule


def _outcome(spec: str) -> tuple[str, int]:
    phone, _, code = spec.partition("=")
    if not phone or not code.isdigit():
        raise argparse.ArgumentTypeError(f"expected PHONE=CODE, got {spec!r}")
    return phone, int(code)


def _steps(spec: str) -> tuple[float, float, float]:
    values = tuple(float(v) for v in spec.split(","))
    if len(values) != 3:
        raise argparse.ArgumentTypeError("expected three comma-separated seconds, e.g. 1,2,2")
    return values  # type: ignore[return-value]


def build_parser() -> argparse.ArgumentParser:
    d = EmulatorOptions()
    p = argparse.ArgumentParser(prog="python -m emulators.smsru", description="sms.ru API emulator")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=9101)
    p.add_argument("--threads", type=int, default=8, help="waitress worker threads")
    p.add_argument("--api-id", default=d.api_id)
    p.add_argument("--balance", type=Decimal, default=d.balance)
    p.add_argument("--price", type=Decimal, default=d.price_per_part, help="price of one SMS part")
    p.add_argument("--account-number", type=int, default=d.account_number, help="first half of sms_id")
    p.add_argument("--sender", action="append", help="approved sender (repeat); default: Klinika")
    p.add_argument("--no-senders", action="store_true", help="an account without senders (221)")
    p.add_argument("--daily-limit", type=int, default=d.daily_limit, help="206")
    p.add_argument("--per-number-limit", type=int, default=d.per_number_daily_limit, help="230")
    p.add_argument("--same-text-per-minute", type=int, help="231")
    p.add_argument("--same-text-per-day", type=int, help="232")
    p.add_argument("--total-free", type=int, default=d.total_free)
    p.add_argument("--russia-only", action="store_true", help="214 for non +7 numbers")
    p.add_argument("--global-stop", action="append", default=[], metavar="PHONE", help="215")
    p.add_argument("--no-route-prefix", action="append", default=[], metavar="PREFIX", help="207")
    p.add_argument("--forbidden-word", action="append", default=[], metavar="WORD", help="216")
    p.add_argument("--too-many", choices=("207", "213"), default=d.too_many_mode)
    p.add_argument("--steps", type=_steps, default=d.delivery_steps, help="seconds 100→101,101→102,102→final")
    p.add_argument("--outcome", type=_outcome, action="append", default=[], metavar="PHONE=CODE")
    p.add_argument("--default-outcome", type=int, default=d.default_outcome)
    p.add_argument("--status-times", action="store_true", help="send_time/status_time in sms/status")
    p.add_argument("--clock", choices=("real", "manual"), default="real")
    p.add_argument("--callback", action="append", default=[], metavar="URL", help="pre-registered handler")
    p.add_argument("--callback-format", choices=("multipart", "urlencoded"), default=d.callback_format)
    p.add_argument("--callback-timeout", type=float, default=d.callback_timeout)
    p.add_argument("--callback-retry-delay", type=float, default=d.callback_retry_delay)
    p.add_argument("--callback-backoff", type=float, default=d.callback_backoff)
    p.add_argument("--callback-max-delay", type=float, default=d.callback_max_delay)
    p.add_argument("--callback-max-age", type=float, default=d.callback_max_age)
    p.add_argument("--callback-max-attempts", type=int)
    p.add_argument("--heartbeat-interval", type=float)
    p.add_argument("--latency", type=float, default=0.0, help="seconds added to every reply")
    p.add_argument("--timeout-hold", type=float, default=d.timeout_hold)
    p.add_argument("--fault", action="append", default=[], metavar="KIND[:PATH[:COUNT]]",
                   help="kinds: timeout, http_status, api_error (code 220), raw")  # fmt: skip
    for kind in FAULT_RATE_KINDS:
        p.add_argument(f"--{kind}-rate", type=float, default=0.0, help=f"probability of a {kind} fault")
    p.add_argument("--seed", type=int)
    return p


def options_from_args(args: argparse.Namespace) -> EmulatorOptions:
    senders = [] if args.no_senders else (args.sender or ["Klinika"])
    return EmulatorOptions(
        api_id=args.api_id,
        balance=args.balance,
        price_per_part=args.price,
        account_number=args.account_number,
        senders=senders,
        daily_limit=args.daily_limit,
        per_number_daily_limit=args.per_number_limit,
        same_text_per_minute=args.same_text_per_minute,
        same_text_per_day=args.same_text_per_day,
        total_free=args.total_free,
        russia_only=args.russia_only,
        global_stoplist=args.global_stop,
        no_route_prefixes=args.no_route_prefix,
        forbidden_words=args.forbidden_word,
        too_many_mode=args.too_many,
        delivery_steps=args.steps,
        default_outcome=args.default_outcome,
        delivery_outcomes=dict(args.outcome),
        status_times=args.status_times,
        clock=args.clock,
        callback_urls=args.callback,
        callback_format=args.callback_format,
        callback_timeout=args.callback_timeout,
        callback_retry_delay=args.callback_retry_delay,
        callback_backoff=args.callback_backoff,
        callback_max_delay=args.callback_max_delay,
        callback_max_age=args.callback_max_age,
        callback_max_attempts=args.callback_max_attempts,
        heartbeat_interval=args.heartbeat_interval,
        latency=args.latency,
        timeout_hold=args.timeout_hold,
        faults=[FaultRule.parse(spec) for spec in args.fault],
        fault_rates={k: getattr(args, f"{k}_rate") for k in FAULT_RATE_KINDS if getattr(args, f"{k}_rate")},
        seed=args.seed,
    )


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    import waitress  # imported here so the package imports without the server installed

    app = create_app(options_from_args(args))
    emulator = app.extensions["smsru_emulator"]
    logging.getLogger("emulators.smsru").info("sms.ru emulator on http://%s:%d", args.host, args.port)
    try:
        waitress.serve(app, host=args.host, port=args.port, threads=args.threads, ident="sms.ru-emulator")
    finally:
        emulator.stop()


if __name__ == "__main__":
    main()
