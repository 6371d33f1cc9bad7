"""`mis-telephony ari` (the ARI call-control app, its loopback control API and the browsers'
events listener) and
`mis-telephony agi` (the FastAGI lookup server). launcher/cli.py calls `register(subparsers)`."""

from __future__ import annotations

import argparse
import asyncio

from clinic.config import Config


def cmd_ari(_args: argparse.Namespace, config: Config) -> int:
    from ari_app.app import run

    run(config)
    return 0


def cmd_agi(_args: argparse.Namespace, config: Config) -> int:
    from agi.server import serve

    asyncio.run(serve(config))
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    subparsers.add_parser(
        "ari",
        help="call control: ARI events, the loopback control API (MIS_CONTROL_URL, default :8090) "
        "and the browsers' live events (MIS_EVENTS_HOST / MIS_EVENTS_PORT, default :8091)",
    ).set_defaults(handler=cmd_ari)
    subparsers.add_parser(
        "agi", help="FastAGI server for the dialplan's patient lookup (MIS_AGI_PORT, default 4573)"
    ).set_defaults(handler=cmd_agi)
