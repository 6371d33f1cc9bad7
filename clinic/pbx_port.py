"""The port through which the web side asks for the Asterisk config to be re-applied.

`webhooks/` must not import `asterisk_conf/`; the composition root (`launcher/`) passes an
applier that satisfies this protocol into the Flask app factory.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class ApplyResult:
    ok: bool
    message: str  # Russian, shown to the admin as is
    revision_id: int | None = None
    warning: str = ""  # applied, but something only takes effect later (Russian)


class PbxApplier(Protocol):
    """Render the configuration from the database and make Asterisk load it.

    `pending`: clinic settings (ClinicSettings field names: sip_domain, sip_port, rtp_start,
    rtp_end) to use instead of the stored ones. The settings page passes the values the admin
    entered and saves them only when the result is ok, so a change Asterisk rejects is never
    stored while Asterisk keeps the old one.
    """

    def __call__(
        self, author_id: int | None, *, pending: Mapping[str, object] | None = None
    ) -> ApplyResult: ...
