"""Business dates: the day a run works on, its end instant, and ranges of days."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from crm.core.errors import OperatorError


def business_day_before(scheduled_start: datetime, timezone: str) -> date:
    """The business day a scheduled run works on: the day before its scheduled start, in `timezone`."""
    return scheduled_start.astimezone(ZoneInfo(timezone)).date() - timedelta(days=1)


def end_of(as_of: date) -> datetime:
    """The first instant after the business day, as the naive timestamps the tables hold."""
    return datetime.combine(as_of + timedelta(days=1), time.min)


def start_of(as_of: date) -> datetime:
    """Midnight at the start of the business day."""
    return datetime.combine(as_of, time.min)


def days_between(start: date, end: date) -> list[date]:
    """Every day from `start` to `end`, both included."""
    if end < start:
        raise OperatorError(f"the range ends ({end}) before it starts ({start}); check --start and --end")
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]
