"""Business dates of loaded rows: what each source brought for each day the data belongs to.

A landing file's rows belong to the file's date; a source row belongs to the day of its change
(its updated column). Quality judges a day's freshness, volume and quarantine share on these
dates, never on the run that loaded them, so the order in which days are run does not matter.
"""

from __future__ import annotations

from datetime import date

import pandas as pd

from crm.core.contracts import Entity

COVERAGE_COLUMNS = [
    "business_date",
    "source",
    "entity",
    "rows_read",
    "rows_loaded",
    "rows_quarantined",
    "rows_duplicate",
]


def row_business_dates(values: pd.Series, fallback: date) -> pd.Series:
    """The calendar day of each timestamp (`fallback` where it is missing or unreadable)."""
    days = pd.to_datetime(values, errors="coerce", format="mixed").dt.normalize()
    return days.fillna(pd.Timestamp(fallback)).dt.date


def rejected_business_dates(records: pd.Series, column: str | None, fallback: date) -> pd.Series:
    """The day of each quarantined source row, read from its JSON record's `column` (else `fallback`)."""
    if column is None or records.empty:
        return pd.Series([fallback] * len(records), index=records.index, dtype=object)
    found = records.astype(str).str.extract(rf'"{column}": "(\d{{4}}-\d{{2}}-\d{{2}})', expand=False)
    return row_business_dates(found, fallback)


def coverage_rows(
    *,
    source: str,
    entity: Entity,
    valid_dates: pd.Series,
    rejected_dates: pd.Series,
    loaded: int,
    duplicates: int,
) -> list[dict]:
    """One coverage row per business date of a batch: rows read, loaded, quarantined and duplicate.

    Duplicates carry no date of their own (a repeated key, or a key already stored): they are
    counted on the batch's earliest day, and loaded rows are the valid ones less those.
    """
    valid = pd.Series(valid_dates, dtype=object).value_counts()
    rejected = pd.Series(rejected_dates, dtype=object).value_counts()
    days = sorted(set(valid.index) | set(rejected.index))
    if not days:
        return []
    not_loaded = max(0, int(valid.sum()) - loaded)  # valid rows an `ignore` write found stored already
    out = []
    for i, day in enumerate(days):
        n_valid = int(valid.get(day, 0))
        skipped = min(n_valid, not_loaded)
        not_loaded -= skipped
        extra = duplicates if i == 0 else 0
        out.append(
            {
                "business_date": day,
                "source": source,
                "entity": entity.name,
                "rows_read": n_valid + int(rejected.get(day, 0)) + extra,
                "rows_loaded": n_valid - skipped,
                "rows_quarantined": int(rejected.get(day, 0)),
                "rows_duplicate": skipped + extra,
            }
        )
    return out
