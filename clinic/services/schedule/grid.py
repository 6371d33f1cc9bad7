"""The scheduler's day grid: its hours, its slot length, and the rules a registrar's booking
keeps to it (inside the grid, the cabinet not double-booked).

The clinic keeps no working-hours table, so a day's grid runs over the usual working day
(08:00–20:00) widened to the earliest start and the latest end of that day's appointments;
its slots are as long as the services' common duration (15 minutes when they share none
that is useful).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from math import gcd

from sqlalchemy import select
from sqlalchemy.orm import Session

from clinic.models import Appointment, Service
from clinic.services import ValidationError
from clinic.services.schedule.appointments import FREE_STATUSES
from clinic.services.schedule.fields import MAX_DURATION_MIN

WORKDAY_START = time(8, 0)
WORKDAY_END = time(20, 0)
DEFAULT_SLOT_MIN = 15
# Shorter slots make a day of a hundred rows; longer ones leave no room to pick a time.
MIN_SLOT_MIN = 10
MAX_SLOT_MIN = 60


@dataclass(frozen=True)
class DayGrid:
    """A day from `start` to `end` (clinic wall clock) in rows of `slot_min` minutes."""

    day: date
    start: datetime
    end: datetime
    slot_min: int

    @property
    def slots(self) -> list[datetime]:
        step = timedelta(minutes=self.slot_min)
        count = int((self.end - self.start) / step)
        return [self.start + i * step for i in range(count)]

    def row_of(self, moment: datetime) -> int:
        """The index of the slot `moment` falls in (clamped into the grid)."""
        minutes = (moment - self.start).total_seconds() / 60
        return max(0, min(len(self.slots) - 1, int(minutes // self.slot_min)))

    def rows_of(self, starts_at: datetime, duration_min: int) -> tuple[int, int]:
        """(first row, number of rows) an appointment covers; at least one row."""
        first = self.row_of(starts_at)
        end_minutes = (starts_at + timedelta(minutes=duration_min) - self.start).total_seconds() / 60
        last = min(len(self.slots), -(-int(end_minutes) // self.slot_min))  # ceiling
        return first, max(1, last - first)

    @property
    def end_label(self) -> str:
        """A grid to midnight ends at «24:00», not at «00:00»."""
        return "24:00" if self.end.date() > self.day else f"{self.end:%H:%M}"

    @property
    def hours(self) -> str:
        return f"{self.start:%H:%M}–{self.end_label}"

    def contains(self, starts_at: datetime, duration_min: int) -> bool:
        return self.start <= starts_at and starts_at + timedelta(minutes=duration_min) <= self.end


def slot_minutes(durations: Iterable[int]) -> int:
    """The services' common duration (their greatest common divisor) if it is a usable slot."""
    common = 0
    for minutes in durations:
        if minutes and minutes > 0:
            common = gcd(common, minutes)
    return common if MIN_SLOT_MIN <= common <= MAX_SLOT_MIN else DEFAULT_SLOT_MIN


def service_slot_minutes(session: Session) -> int:
    durations = session.scalars(select(Service.duration_min).where(Service.is_active.is_(True)).distinct())
    return slot_minutes(durations)


def _floor(moment: datetime, slot_min: int) -> datetime:
    midnight = datetime.combine(moment.date(), time())
    minutes = int((moment - midnight).total_seconds() // 60)
    return midnight + timedelta(minutes=minutes - minutes % slot_min)


def _ceil(moment: datetime, slot_min: int) -> datetime:
    floored = _floor(moment, slot_min)
    return floored if floored == moment else floored + timedelta(minutes=slot_min)


def day_grid(day: date, appointments: Iterable[Appointment], slot_min: int) -> DayGrid:
    """The grid of `day` that holds the working day and every one of `appointments`."""
    midnight = datetime.combine(day, time())
    start = datetime.combine(day, WORKDAY_START)
    end = datetime.combine(day, WORKDAY_END)
    for appt in appointments:
        start = min(start, _floor(appt.starts_at, slot_min))
        end = max(end, _ceil(appt.starts_at + timedelta(minutes=appt.duration_min), slot_min))
    # An appointment past midnight is cut at the day's end; the next day shows the rest.
    return DayGrid(day, max(start, midnight), min(end, midnight + timedelta(days=1)), slot_min)


def grid_for(session: Session, day: date, *, exclude_id: int | None = None) -> DayGrid:
    """The grid the scheduler shows for `day` (every doctor's appointments included but
    `exclude_id`, the one being booked or moved, which must fit the grid, not widen it)."""
    midnight = datetime.combine(day, time())
    query = select(Appointment).where(
        Appointment.starts_at >= midnight, Appointment.starts_at < midnight + timedelta(days=1)
    )
    if exclude_id is not None:
        query = query.where(Appointment.id != exclude_id)
    return day_grid(day, session.scalars(query), service_slot_minutes(session))


def check_in_grid(session: Session, appt: Appointment) -> None:
    """ValidationError unless the appointment lies inside its day's grid."""
    starts_at, duration_min = appt.starts_at, appt.duration_min
    if not 2000 <= starts_at.year <= 2099:
        return  # the booking rules give the message for an impossible year
    grid = grid_for(session, starts_at.date(), exclude_id=appt.id)
    if not grid.contains(starts_at, duration_min):
        raise ValidationError(
            {
                "starts_at": f"Время вне сетки расписания: приём {starts_at:%d.%m.%Y} возможен "
                f"с {grid.start:%H:%M} до {grid.end_label} (приём длится {duration_min} мин)"
            }
        )


def cabinet_overlaps(session: Session, appt: Appointment) -> list[Appointment]:
    """Other live appointments in `appt`'s cabinet at the same time (a warning, not a refusal:
    the booking rules allow two doctors to share a room)."""
    if appt.cabinet_id is None or appt.status in FREE_STATUSES:
        return []
    start = appt.starts_at
    end = start + timedelta(minutes=appt.duration_min)
    query = select(Appointment).where(
        Appointment.cabinet_id == appt.cabinet_id,
        Appointment.id != appt.id,
        Appointment.status.not_in(FREE_STATUSES),
        Appointment.starts_at < end,
        Appointment.starts_at > start - timedelta(minutes=MAX_DURATION_MIN),
    )
    return [
        other
        for other in session.scalars(query.order_by(Appointment.starts_at))
        if other.starts_at + timedelta(minutes=other.duration_min) > start
    ]
