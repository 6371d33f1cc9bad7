"""The scheduler's day board: which doctors get a column, where each appointment sits.

The page is one CSS grid: a time column, then one or more lanes per doctor (two appointments
of one doctor that share a slot, a cancelled one and its replacement say, sit side by side).
Rows are the day grid's slots; an appointment spans the slots it covers.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from clinic.models import Appointment, Employee
from clinic.models.schedule import CONFIRMATION_STATUSES
from clinic.services.schedule.appointments import FREE_STATUSES
from clinic.services.schedule.grid import DayGrid

HEADER_ROWS = 1  # grid row 1 is the doctors' header
LANE_MIN_REM = 11.5  # a doctor's column: six of them and the time fit 1366 px
SPLIT_LANE_MIN_REM = 9  # half of a doctor's column still shows a time and a name
TIME_COLUMNS = 1  # grid column 1 is the time column


@dataclass
class Block:
    """One appointment on the board; rows and columns are 1-based CSS grid lines."""

    appt: Appointment
    row: int
    span: int
    column: int
    width: int = 1  # lanes: a block with no neighbour in its rows takes the free lanes beside it
    narrow: bool = False  # shares its rows with another block of the doctor

    @property
    def ends_at(self) -> datetime:
        return self.appt.starts_at + timedelta(minutes=self.appt.duration_min)

    @property
    def confirmation(self) -> str:
        return CONFIRMATION_STATUSES.get(self.appt.confirmation_status, "")

    @property
    def extra_lines(self) -> list[str]:
        """«Доп. информация» without the phrase the confirmation badge already shows."""
        lines = [line for line in (self.appt.extra_info or "").splitlines() if line.strip()]
        if self.confirmation:
            lines = [line for line in lines if line.strip() not in CONFIRMATION_STATUSES.values()]
        return lines


@dataclass
class Column:
    doctor: Employee
    column: int  # the first grid column of the doctor's lanes
    lanes: int = 1
    blocks: list[Block] = field(default_factory=list)


@dataclass
class Board:
    grid: DayGrid
    columns: list[Column]
    now: datetime

    @property
    def lane_count(self) -> int:
        return sum(column.lanes for column in self.columns)

    @property
    def template_columns(self) -> str:
        """CSS grid columns: the time, then each doctor's lanes sharing one doctor's width
        (fractions of 1fr), so a doctor with two overlapping appointments is not twice as wide."""
        tracks = ["var(--time-col)"]
        for column in self.columns:
            share = 1 / column.lanes
            floor = max(LANE_MIN_REM * share, SPLIT_LANE_MIN_REM) if column.lanes > 1 else LANE_MIN_REM
            tracks += [f"minmax({floor:.2f}rem, {share:.4f}fr)"] * column.lanes
        return " ".join(tracks)

    @property
    def blocks(self) -> list[Block]:
        return [block for column in self.columns for block in column.blocks]

    @property
    def free_slots(self) -> int:
        """«Осталось талонов»: slots of working doctors not over yet and not taken by a live
        appointment (a cancelled or missed one frees its slot)."""
        slots = self.grid.slots
        free = 0
        for column in self.columns:
            if not column.doctor.is_active:
                continue
            taken = {
                row
                for block in column.blocks
                if block.appt.status not in FREE_STATUSES
                for row in range(block.row, block.row + block.span)
            }
            free += sum(
                1 for i, slot in enumerate(slots) if self.is_open(slot) and i + HEADER_ROWS + 1 not in taken
            )
        return free

    def is_open(self, slot: datetime) -> bool:
        """A slot a new appointment may still take (it has not ended yet)."""
        return slot + timedelta(minutes=self.grid.slot_min) > self.now

    def is_now(self, slot: datetime) -> bool:
        return slot <= self.now < slot + timedelta(minutes=self.grid.slot_min)


def board_doctors(
    session: Session, appointments: Iterable[Appointment], doctor_id: int | None
) -> list[Employee]:
    """Working doctors (and anyone booked that day), by name; one doctor when filtered."""
    booked = {appt.doctor_id: appt.doctor for appt in appointments}
    if doctor_id is not None:
        doctor = booked.get(doctor_id) or session.get(Employee, doctor_id)
        return [doctor] if doctor is not None else []
    active = session.scalars(select(Employee).where(Employee.is_active.is_(True))).all()
    doctors = {doctor.id: doctor for doctor in active} | booked
    return sorted(doctors.values(), key=lambda d: (d.last_name, d.first_name, d.patronymic, d.id))


def _lanes(grid: DayGrid, appointments: Sequence[Appointment]) -> list[tuple[Appointment, int, int, int]]:
    """(appointment, first row, rows, lane) with overlapping appointments in separate lanes."""
    lane_ends: list[int] = []  # the row after the last block of each lane
    placed = []
    for appt in sorted(appointments, key=lambda a: (a.starts_at, a.id)):
        first, span = grid.rows_of(appt.starts_at, appt.duration_min)
        lane = next((i for i, end in enumerate(lane_ends) if end <= first), len(lane_ends))
        if lane == len(lane_ends):
            lane_ends.append(0)
        lane_ends[lane] = first + span
        placed.append((appt, first, span, lane))
    return placed


def _free_width(
    placed: Sequence[tuple[Appointment, int, int, int]], first: int, span: int, lane: int, lanes: int
) -> int:
    """How many lanes, from `lane` rightwards, are free over rows first..first+span."""
    width = 1
    for other_lane in range(lane + 1, lanes):
        if any(o_lane == other_lane and o_first < first + span and first < o_first + o_span
               for _, o_first, o_span, o_lane in placed):  # fmt: skip
            break
        width += 1
    return width


def build_board(
    grid: DayGrid, doctors: Sequence[Employee], appointments: Sequence[Appointment], now: datetime
) -> Board:
    columns: list[Column] = []
    next_column = TIME_COLUMNS + 1
    for doctor in doctors:
        placed = _lanes(grid, [a for a in appointments if a.doctor_id == doctor.id])
        column = Column(doctor, next_column, lanes=max([lane + 1 for *_, lane in placed], default=1))
        for appt, first, span, lane in placed:
            width = _free_width(placed, first, span, lane, column.lanes)
            row = first + HEADER_ROWS + 1
            column.blocks.append(Block(appt, row, span, next_column + lane, width, width < column.lanes))
        columns.append(column)
        next_column += column.lanes
    return Board(grid, columns, now)
