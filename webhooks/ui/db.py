"""One database session per request for the UI views, closed (and rolled back if not
committed) when the request ends, so a failed view never leaves half a change behind."""

from __future__ import annotations

from flask import Flask, current_app, g
from sqlalchemy.orm import Session, sessionmaker

# URL converter for row ids: larger numbers are a 404, not an integer overflow in the database.
ROW_ID = "int(max=2147483647)"


def db() -> Session:
    session: Session | None = g.get("mis_db")
    if session is None:
        factory: sessionmaker[Session] = current_app.extensions["mis_sessions"]
        session = factory()
        g.mis_db = session
    return session


def _close(_exc: BaseException | None) -> None:
    session: Session | None = g.pop("mis_db", None)
    if session is not None:
        session.rollback()
        session.close()


def init_db_session(app: Flask) -> None:
    app.teardown_appcontext(_close)
