"""The demo's printout names only logins that still have the demo's passwords (issue 12,
point 6): a clinic that changed them does not see (or log) passwords that are not its own."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from clinic.db import transaction
from clinic.models import User
from clinic.security import hash_password, sip_md5_cred
from clinic.seed import demo_logins_in_use, seed_demo


def test_changed_passwords_leave_the_printout(sessions: sessionmaker[Session]) -> None:
    seed_demo(sessions, date(2026, 12, 7))
    in_use = {u.login: sip for u, sip in demo_logins_in_use(sessions)}
    assert in_use == {"admin": False, "reg1": True, "reg2": True}

    with transaction(sessions) as session:
        admin = session.scalars(select(User).where(User.login == "admin")).one()
        admin.password_hash = hash_password("Clinic-own-2027")
        reg2 = session.scalars(select(User).where(User.login == "reg2")).one()
        reg2.sip_md5_cred = sip_md5_cred("102", "Own-sip-pass-9")
    in_use = {u.login: sip for u, sip in demo_logins_in_use(sessions)}
    assert in_use == {"reg1": True, "reg2": False}
