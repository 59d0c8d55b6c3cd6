"""The day guard: which business day an ingestion may load, judged from the data's own dates. Pure.

Ingesting a day in the future of the source stamps every row with a day that has not come
(and that day's real night then finds nothing new and closes its gate); a day far beyond the
last ingested one skips days nobody checked.
"""

from __future__ import annotations

from datetime import date, timedelta


def day_guard_refusal(
    as_of: date,
    newest_source_day: date | None,
    last_ingested_day: date | None,
    *,
    max_gap_days: int,
    option: str = "--as-of",
) -> str | None:
    """Why `as_of` may not be ingested without `--force`, or None when it may (`option`: where the day came from)."""
    if newest_source_day is None:
        return f"the source database holds no rows yet, so there is nothing to ingest for {as_of}"
    if as_of > newest_source_day + timedelta(days=1):
        return (
            f"{as_of} is in the future of the source's data (its newest change is on {newest_source_day}); "
            f"check {option}"
        )
    if last_ingested_day is not None and as_of > last_ingested_day + timedelta(days=max_gap_days):
        gap = (as_of - last_ingested_day).days
        return (
            f"{as_of} is {gap} days after the last ingested day {last_ingested_day} (max_gap_days {max_gap_days} "
            f"in config/ingest.yaml); ingest the days between with `crm backfill nightly "
            f"--start {last_ingested_day + timedelta(days=1)} --end {as_of}`"
        )
    return None
