"""The incoming call's ARI events: the call enters Stasis (`inbound,<DID>`), a registrar's
phone answers (`agent,<uid>`) or stops ringing."""

from __future__ import annotations

from ari_app.core import call as c
from ari_app.core.routes import StasisRoutes
from ari_app.incoming.service import IncomingService


def register(routes: StasisRoutes, service: IncomingService) -> None:
    routes.starts["inbound"] = service.on_inbound
    routes.on_answered(c.AGENT, service.agent_answered)
    routes.on_gone(c.AGENT, service.agent_gone)
