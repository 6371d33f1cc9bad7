"""Helpers shared by the PBX fixtures and tests."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from asterisk_conf import runtime
from clinic import ami
from clinic.config import Config
from clinic.models import ROLE_ADMIN, ROLE_REGISTRAR, User
from clinic.security import hash_password, sip_md5_cred

PHONES = {
    # ext: (sip_id, password, sip port, ctrl port, rtp low)  -- ports per pbx-lab §5
    "101": ("reg101", "Pw101-secret", 5100, 4401, 21000),
    "102": ("reg102", "Pw102-secret", 5110, 4402, 21100),
}

# the trunk of the test clinic leads to this baresip "PSTN" phone (not registered)
PSTN_NUMBER = "+79161234567"
PSTN_SIP_PORT = 5120
CLINIC_NUMBER = "+74950000000"


@dataclass
class Pbx:
    config: Config
    sessions: sessionmaker[Session]
    start_seconds: float
    version: str


def add_phone_user(sessions: sessionmaker[Session], ext: str, sip_id: str, password: str) -> None:
    with sessions() as s:
        s.add(User(login=f"user{ext}", password_hash=hash_password("x" * 12), full_name=f"Регистратор {ext}",
                   extension=ext, sip_id=sip_id, sip_md5_cred=sip_md5_cred(sip_id, password)))
        s.commit()


def ensure_offline_user(pbx: Pbx, ext: str = "105") -> int:
    """A registrar with an extension in Asterisk's configuration whose phone never registers
    (no baresip behind it): the endpoint stays "offline". Created and applied once."""
    from sqlalchemy import select

    from asterisk_conf import apply

    sip_id = f"reg{ext}"
    with pbx.sessions() as s:
        user_id = s.scalar(select(User.id).where(User.sip_id == sip_id))
    if user_id is None:
        add_phone_user(pbx.sessions, ext, sip_id, f"Pw{ext}-secret")
        result = apply.apply_from_db(pbx.config, pbx.sessions, None)
        assert result.ok, result.message
        with pbx.sessions() as s:
            user_id = s.scalar(select(User.id).where(User.sip_id == sip_id))
    assert user_id is not None
    return user_id


def ensure_patient(pbx: Pbx) -> int:
    """Patient «Звонков Пётр Ильич» with the PSTN phone's number and an appointment tomorrow."""
    from datetime import datetime, timedelta

    from sqlalchemy import select

    from clinic.models import Appointment, Employee, Patient

    with pbx.sessions() as s:
        p = s.scalars(select(Patient).where(Patient.last_name == "Звонков")).first()
        if p is None:
            doc = Employee(last_name="Терапевтов", first_name="Олег", specialty="Терапевт")
            p = Patient(last_name="Звонков", first_name="Пётр", patronymic="Ильич", phone=PSTN_NUMBER)
            s.add_all([doc, p])
            s.flush()
            tomorrow = datetime.now() + timedelta(days=1)
            s.add(Appointment(patient_id=p.id, doctor_id=doc.id, starts_at=tomorrow))
            s.commit()
        return p.id


def ensure_call_users(pbx: Pbx) -> dict[str, int]:
    """Ids of user101/user102 (the phones' registrars), plus an admin and a registrar with no
    extension, created once."""
    with pbx.sessions() as s:
        for login, role in (("calladmin", ROLE_ADMIN), ("noext", ROLE_REGISTRAR)):
            if s.query(User).filter_by(login=login).first() is None:
                s.add(User(login=login, password_hash=hash_password("x" * 12), full_name=login, role=role))
        s.commit()
        ids = {u.login: u.id for u in s.query(User).all()}
    return {"101": ids["user101"], "102": ids["user102"], "admin": ids["calladmin"], "noext": ids["noext"]}


def wait_registered(config: Config, sip_ids: set[str], timeout: float = 10.0) -> dict[str, dict[str, str]]:
    """Poll PJSIPShowContacts (50 ms steps, with a deadline) until every id has a contact."""

    async def _poll(client: ami.AmiClient) -> dict[str, dict[str, str]]:
        deadline = time.monotonic() + timeout
        while True:
            contacts = {c.get("Endpoint") or c.get("AOR", ""): c for c in await client.contacts()}
            if sip_ids <= set(contacts) or time.monotonic() > deadline:
                return contacts
            await asyncio.sleep(runtime.POLL)

    contacts = ami.run(config.pbx, _poll)
    missing = sip_ids - set(contacts)
    assert not missing, f"not registered within {timeout} s: {sorted(missing)}; contacts: {list(contacts)}"
    return contacts


@contextlib.contextmanager
def serve_web(pbx: Pbx, ari_app: Any) -> Iterator[str]:
    """The web app on a free port, talking to the real ari_app (`ari_app.app.ThreadedApp`),
    its origin allowed to open the events stream; yields the origin."""
    import dataclasses
    import threading

    from werkzeug.serving import make_server

    from webhooks.app import create_app

    pbx_cfg = dataclasses.replace(pbx.config.pbx, control_url=ari_app.url)
    config = dataclasses.replace(pbx.config, pbx=pbx_cfg, events_port=ari_app.app.events_port)
    server = make_server("127.0.0.1", 0, create_app(config, session_factory=pbx.sessions), threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="web", daemon=True)
    thread.start()
    origin = f"http://127.0.0.1:{server.server_port}"
    ari_app.app.gateway.origins.add(origin)  # the pages' origin may open the events stream
    try:
        yield origin
    finally:
        ari_app.app.gateway.origins.discard(origin)
        server.shutdown()
        thread.join(timeout=10)
