"""The business date a run works on: given explicitly, or derived from the run's schedule."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta


def resolve_as_of(as_of: date | None) -> date:
    """`as_of`, or for a scheduled run the day before its scheduled start (never the wall clock)."""
    if as_of is not None:
        return as_of
    from prefect.runtime import flow_run

    if flow_run.id is None:  # outside a flow run Prefect would answer with the wall clock
        raise ValueError("as_of is required outside a scheduled flow run")
    from zoneinfo import ZoneInfo

    from crm.settings import get_settings

    scheduled = flow_run.scheduled_start_time.astimezone(ZoneInfo(get_settings().business_timezone))
    return scheduled.date() - timedelta(days=1)


def end_of(as_of: date) -> datetime:
    """The first instant after the business day, as the naive timestamps the tables hold."""
    return datetime.combine(as_of + timedelta(days=1), time.min)


def days_between(start: date, end: date) -> list[date]:
    """Every day from `start` to `end`, both included."""
    if end < start:
        raise ValueError(f"end {end} is before start {start}")
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]
