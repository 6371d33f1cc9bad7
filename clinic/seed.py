"""Demo clinic data for `make run`: staff, rooms, services, 200 patients, two days of bookings.

Deterministic (a seeded RNG) and idempotent: the clinic itself is created once; the
appointments for today and tomorrow are topped up on every start, so a demo started on a
later day still has a full schedule.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from clinic.clock import clinic_now
from clinic.db import transaction
from clinic.models import (
    EMPLOYEE_CHIEF,
    EMPLOYEE_DOCTOR,
    ROLE_ADMIN,
    ROLE_REGISTRAR,
    Appointment,
    Cabinet,
    ClinicSettings,
    Employee,
    Patient,
    Service,
    User,
)
from clinic.robot.demo import seed_mango
from clinic.security import hash_password, sip_md5_cred, verify_password
from clinic.sms.demo import seed_sms

DEMO_PASSWORD = "Klinika-2026"


@dataclass(frozen=True)
class DemoUser:
    login: str
    full_name: str
    role: str
    extension: str | None = None
    sip_password: str | None = field(default=None, repr=False)


DEMO_USERS = (
    DemoUser("admin", "Администратор Системы", ROLE_ADMIN),
    DemoUser("reg1", "Иванова Мария Петровна", ROLE_REGISTRAR, "101", "Zvonok-A1b2"),
    DemoUser("reg2", "Смирнова Ольга Игоревна", ROLE_REGISTRAR, "102", "Zvonok-C3d4"),
)

_MALE_LAST = ["Иванов", "Петров", "Сидоров", "Кузнецов", "Смирнов", "Попов", "Васильев", "Соколов",
              "Михайлов", "Новиков", "Фёдоров", "Морозов", "Волков", "Алексеев", "Лебедев", "Семёнов",
              "Егоров", "Павлов", "Козлов", "Степанов", "Николаев", "Орлов", "Андреев", "Макаров"]
_MALE_FIRST = ["Александр", "Дмитрий", "Максим", "Сергей", "Андрей", "Алексей", "Артём", "Илья",
               "Кирилл", "Михаил", "Никита", "Матвей", "Роман", "Егор", "Иван", "Павел"]
_FEMALE_FIRST = ["Анна", "Мария", "Елена", "Ольга", "Татьяна", "Наталья", "Ирина", "Светлана",
                 "Екатерина", "Юлия", "Дарья", "Алина", "Ксения", "Полина", "Виктория", "Галина"]
# (male form, female form) of common patronymics
_PATRONYMICS = [("Александрович", "Александровна"), ("Дмитриевич", "Дмитриевна"), ("Сергеевич", "Сергеевна"),
                ("Андреевич", "Андреевна"), ("Алексеевич", "Алексеевна"), ("Михайлович", "Михайловна"),
                ("Иванович", "Ивановна"), ("Павлович", "Павловна"), ("Николаевич", "Николаевна"),
                ("Викторович", "Викторовна"), ("Владимирович", "Владимировна"), ("Юрьевич", "Юрьевна"),
                ("Петрович", "Петровна"), ("Олегович", "Олеговна")]

_DOCTORS = [
    ("Орлова", "Наталья", "Викторовна", "Терапевт", "101", "Терапевтический"),
    ("Захаров", "Игорь", "Семёнович", "Хирург", "102", "Хирургический"),
    ("Белова", "Светлана", "Андреевна", "Невролог", "103", "Неврологический"),
    ("Крылов", "Артём", "Олегович", "Офтальмолог", "104", "Офтальмологический"),
    ("Титова", "Ирина", "Павловна", "Оториноларинголог", "105", "ЛОР"),
]
_SERVICES = [
    ("B01.047.001", "Приём (осмотр, консультация) врача-терапевта первичный", 20, 1500),
    ("B01.047.002", "Приём (осмотр, консультация) врача-терапевта повторный", 20, 1200),
    ("B01.057.001", "Приём (осмотр, консультация) врача-хирурга первичный", 20, 1700),
    ("B01.023.001", "Приём (осмотр, консультация) врача-невролога первичный", 30, 1900),
    ("B01.029.001", "Приём (осмотр, консультация) врача-офтальмолога первичный", 20, 1600),
    ("B01.028.001", "Приём (осмотр, консультация) врача-оториноларинголога первичный", 20, 1600),
    ("A05.10.006", "Регистрация электрокардиограммы", 15, 800),
    ("A11.05.001", "Взятие крови из пальца", 10, 300),
]
_EXTRA = ["", "", "", "", "Первичный приём", "Принести результаты анализов", "Повторный приём",
          "Запись по телефону", "Нужна справка"]


def _patient(rng: random.Random, n: int) -> Patient:
    female = rng.random() < 0.55
    last = rng.choice(_MALE_LAST)
    if female:
        last = last + "а"
    first = rng.choice(_FEMALE_FIRST if female else _MALE_FIRST)
    birth = date(1940, 1, 1) + timedelta(days=rng.randrange(0, 365 * 65))
    operator = rng.choice(["900", "903", "905", "909", "915", "916", "917", "925", "926", "960", "985"])
    return Patient(
        external_id=f"DEMO-P{n:04d}",
        last_name=last,
        first_name=first,
        patronymic=rng.choice(_PATRONYMICS)[1 if female else 0],
        birth_date=birth,
        phone=f"+7{operator}{rng.randrange(0, 10**7):07d}" if rng.random() < 0.95 else None,
        consent_sms=rng.random() < 0.92,
        consent_calls=True,
    )


def _ensure_clinic(s: Session, rng: random.Random) -> None:
    s.add(ClinicSettings(
        id=1,
        name="Клиника «Здоровье»",
        full_name="ООО «Клиника Здоровье»",
        address="г. Москва, ул. Лесная, д. 7",
        phone="+74951234567",
        sms_sender="Zdorovie",
    ))
    for u in DEMO_USERS:
        s.add(User(
            login=u.login,
            full_name=u.full_name,
            role=u.role,
            password_hash=hash_password(DEMO_PASSWORD),
            extension=u.extension,
            sip_id=u.extension,
            sip_md5_cred=(
                sip_md5_cred(u.extension, u.sip_password) if u.extension and u.sip_password else None
            ),
        ))
    s.add(Employee(last_name="Воронцова", first_name="Елена", patronymic="Михайловна",
                   role=EMPLOYEE_CHIEF, specialty="Главный врач", phone="+79161110000",
                   external_id="DEMO-CHIEF"))
    for i, (last, first, patr, spec, cab, cab_name) in enumerate(_DOCTORS, start=1):
        s.add(Employee(last_name=last, first_name=first, patronymic=patr, role=EMPLOYEE_DOCTOR,
                       specialty=spec, phone=f"+7916111{i:04d}", external_id=f"DEMO-D{i}"))
        s.add(Cabinet(number=cab, name=cab_name))
    s.add(Cabinet(number="110", name="Процедурный"))
    for code, name, minutes, price in _SERVICES:
        s.add(Service(code=code, name=name, duration_min=minutes, price=price))
    s.add_all(_patient(rng, n) for n in range(1, 201))
    s.flush()


def _fill_day(s: Session, rng: random.Random, day: date) -> int:
    """Book ~70% of each doctor's 20-minute slots from 08:00 to 14:00 on `day`."""
    doctors = s.scalars(select(Employee).where(Employee.role == EMPLOYEE_DOCTOR).order_by(Employee.id)).all()
    cabinets = s.scalars(select(Cabinet).order_by(Cabinet.id)).all()
    services = s.scalars(select(Service).order_by(Service.id)).all()
    patient_ids = s.scalars(select(Patient.id).order_by(Patient.id)).all()
    added = 0
    for idx, doctor in enumerate(doctors):
        start = datetime.combine(day, time(8, 0))
        for slot in range(18):
            if rng.random() > 0.7:
                continue
            s.add(Appointment(
                patient_id=rng.choice(patient_ids),
                doctor_id=doctor.id,
                cabinet_id=cabinets[idx % len(cabinets)].id,
                service_id=services[min(idx + (slot % 2), len(services) - 1)].id,
                starts_at=start + timedelta(minutes=20 * slot),
                duration_min=20,
                extra_info=rng.choice(_EXTRA),
            ))
            added += 1
    return added


def seed_demo(factory: sessionmaker[Session], today: date) -> dict[str, int]:
    """Create the demo clinic if absent; make sure today and tomorrow have bookings."""
    rng = random.Random(20261125)
    counts = {"created_clinic": 0, "appointments_added": 0}
    with transaction(factory) as s:
        if s.get(ClinicSettings, 1) is None:
            _ensure_clinic(s, rng)
            counts["created_clinic"] = 1
        seed_mango(s)  # «Внешние информационные системы» → the Mango emulator (once)
        seed_sms(s)  # demo api_id for the local sms.ru emulator, default SMS templates (once)
        for day in (today, today + timedelta(days=1)):
            day_start = datetime.combine(day, time(0, 0))
            booked = s.scalar(
                select(func.count(Appointment.id)).where(
                    Appointment.starts_at >= day_start, Appointment.starts_at < day_start + timedelta(days=1)
                )
            )
            if not booked:
                counts["appointments_added"] += _fill_day(s, random.Random(day.toordinal()), day)
    return counts


def demo_logins_in_use(factory: sessionmaker[Session]) -> list[tuple[DemoUser, bool]]:
    """The demo users whose login still has the demo password, each with whether its SIP
    password is still the demo one: only those belong in the demo's printout."""
    out: list[tuple[DemoUser, bool]] = []
    with factory() as s:
        for u in DEMO_USERS:
            row = s.scalars(select(User).where(User.login == u.login)).first()
            if row is None or not row.is_active or not verify_password(row.password_hash, DEMO_PASSWORD):
                continue
            sip = bool(u.extension and u.sip_password and row.sip_id == u.extension
                       and row.sip_md5_cred == sip_md5_cred(u.extension, u.sip_password))
            out.append((u, sip))
    return out


def clinic_today(factory: sessionmaker[Session]) -> date:
    """The demo's «today» is the clinic's, not the server's: a server in another zone would
    otherwise seed yesterday's and today's visits for a clinic already living tomorrow."""
    with factory() as s:
        return clinic_now(s).date()
