"""Every job the worker runs. Features add their jobs here (one line each)."""

from __future__ import annotations

from clinic.reminders.jobs import JOBS as REMINDER_JOBS
from clinic.robot.server_task import jobs as robot_jobs
from clinic.sms.jobs import JOBS as SMS_JOBS
from clinic.worker import housekeeping
from clinic.worker.jobs import Job


def all_jobs() -> list[Job]:
    jobs: list[Job] = []
    jobs += robot_jobs()  # «Отправка сведений в Mango Office», robot results
    jobs += SMS_JOBS  # SMS: send due messages and mailings, re-check delivery statuses
    jobs += REMINDER_JOBS  # reminder rules: stop the confirmed, plan, send by SMS / robot
    jobs += housekeeping.JOBS  # exchange-log retention, old login-throttle rows
    return jobs
