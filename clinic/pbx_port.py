"""The port through which the web side asks for the Asterisk config to be re-applied.

`webhooks/` must not import `asterisk_conf/`; the composition root (`launcher/`) passes an
applier that satisfies this protocol into the Flask app factory.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class ApplyResult:
    ok: bool
    message: str  # Russian, shown to the admin as is
    revision_id: int | None = None
    warning: str = ""  # applied, but something only takes effect later (Russian)


class PbxApplier(Protocol):
    def __call__(self, author_id: int | None) -> ApplyResult: ...
