"""The conference leg's ARI events, and the end of a recording."""

from __future__ import annotations

from ari_app.conference.service import ConferenceService
from ari_app.core import call as c
from ari_app.core.routes import StasisRoutes


def register(routes: StasisRoutes, service: ConferenceService) -> None:
    routes.on_answered(c.THIRD, service.third_answered)
    routes.on_gone(c.THIRD, service.third_gone)
    routes.recording_done.append(service.recording_done)
