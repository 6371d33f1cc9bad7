"""The transfer target's ARI events: it answered, or it went."""

from __future__ import annotations

from ari_app.core import call as c
from ari_app.core.routes import StasisRoutes
from ari_app.transfers.service import TransfersService


def register(routes: StasisRoutes, service: TransfersService) -> None:
    routes.on_answered(c.TRANSFER, service.target_answered)
    routes.on_gone(c.TRANSFER, service.target_gone)
