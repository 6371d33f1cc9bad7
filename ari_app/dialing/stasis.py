"""The click-to-call legs' ARI events: leg A (the registrar) and leg B (the patient) answered."""

from __future__ import annotations

from ari_app.core import call as c
from ari_app.core.routes import StasisRoutes
from ari_app.dialing.service import DialingService


def register(routes: StasisRoutes, service: DialingService) -> None:
    routes.on_answered(c.REGISTRAR, service.registrar_answered)
    routes.on_answered(c.REMOTE, service.remote_answered)
