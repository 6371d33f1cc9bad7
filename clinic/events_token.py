"""The token a page shows ari_app's events listener: issued by the web app (which knows the
session), checked by ari_app (which shares the secret key). It lives in `clinic/` because
the web side and ari_app never import each other."""

from __future__ import annotations

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

SALT = "mis-events"
TOKEN_MAX_AGE = 60  # seconds from the token's issue to the connection


def serializer(secret_key: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret_key, salt=SALT)


def make_token(secret_key: str, user_id: int, epoch: int) -> str:
    return serializer(secret_key).dumps({"uid": user_id, "epoch": epoch})


def read_token(secret_key: str, token: str, max_age: float = TOKEN_MAX_AGE) -> tuple[int, int] | None:
    """(user id, epoch) of a good token; None for a forged, expired or malformed one."""
    try:
        data = serializer(secret_key).loads(token, max_age=max_age)
    except (SignatureExpired, BadSignature):
        return None
    if not isinstance(data, dict):
        return None
    uid, epoch = data.get("uid"), data.get("epoch")
    if type(uid) is not int or type(epoch) is not int:
        return None
    return uid, epoch
