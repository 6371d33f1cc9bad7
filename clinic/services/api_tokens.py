"""Bearer tokens for the МИС's REST API calls.

The token itself is shown once at creation; only its SHA-256 is stored, so a leaked database
does not leak working tokens. Revoking keeps the row (who had access, when it was last used).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from clinic.models import ApiToken
from clinic.security import new_api_token, token_digest
from clinic.services import ValidationError

NAME_MAX = 100
TOKEN_MAX = 200  # ours are ~47 characters; longer input is garbage, not worth hashing
# Writing last_used_at on every call would turn each read into a write; a minute is precise enough.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def create_token(session: Session, name: str, *, created_by_id: int | None = None) -> tuple[ApiToken, str]:
    """A new active token; returns (row, the token to hand over once)."""
    clean = (name or "").strip()
    if not clean or len(clean) > NAME_MAX or not clean.isprintable():
        raise ValidationError({"name": f"Название токена: от 1 до {NAME_MAX} печатных символов"})
    token, digest = new_api_token()
    row = ApiToken(name=clean, token_sha256=digest, is_active=True, created_by_id=created_by_id)
    session.add(row)
    session.flush()
    return row, token


def list_tokens(session: Session) -> list[ApiToken]:
    return list(session.scalars(select(ApiToken).order_by(ApiToken.id)))


def revoke_token(session: Session, token_id: int) -> ApiToken:
    """Deactivate a token (idempotent); LookupError if there is no such token."""
    row = session.get(ApiToken, token_id) if 1 <= token_id <= 2_147_483_647 else None
    if row is None:
        raise LookupError(f"Токен №{token_id} не найден")
    row.is_active = False
    session.flush()
    return row


def authenticate(session: Session, token: str, *, now: datetime | None = None) -> ApiToken | None:
    """The active token matching `token`, its last_used_at refreshed; None if unknown or revoked.

    The lookup is by digest, so nothing about the secret leaks through comparison timing.
    """
    if not token or len(token) > TOKEN_MAX or not token.isascii():
        return None
    row = session.scalars(select(ApiToken).where(ApiToken.token_sha256 == token_digest(token))).first()
    if row is None or not row.is_active:
        return None
    now = now or datetime.now(UTC)
    last = row.last_used_at
    if last is not None and last.tzinfo is None:
        last = last.replace(tzinfo=UTC)  # SQLite returns stored UTC times without the zone
    if last is None or now - last >= LAST_USED_RESOLUTION:
        row.last_used_at = now
        session.flush()
    return row
