"""The taken-over call's legs entering Stasis (`adopt,<uid>,<role>`)."""

from __future__ import annotations

from ari_app.core.routes import StasisRoutes
from ari_app.takeover.service import TakeoverService


def register(routes: StasisRoutes, service: TakeoverService) -> None:
    routes.on_answered("adopt", service.leg_in)
