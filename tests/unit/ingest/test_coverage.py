"""Business dates of loaded rows (issue 9): coverage rows per day and the day of quarantined rows."""

from __future__ import annotations

import json
from datetime import date

import pandas as pd

from crm.core.contracts import ENTITIES
from crm.ingest import counts_table
from crm.ingest.coverage import coverage_rows, rejected_business_dates, row_business_dates

DAY = date(2026, 1, 5)


def test_rows_are_counted_on_the_day_of_their_change():
    valid = row_business_dates(
        pd.Series(pd.to_datetime(["2026-01-03 10:00", "2026-01-04 23:59", "2026-01-04 00:00"])), DAY
    )
    rejected = rejected_business_dates(
        pd.Series([json.dumps({"updated_at": "2026-01-03 08:00:00"}), "not json"]), "updated_at", DAY
    )
    assert list(rejected) == [date(2026, 1, 3), DAY]  # unreadable: the run's day
    rows = coverage_rows(
        source="db:loans", entity=ENTITIES["loans"], valid_dates=valid, rejected_dates=rejected, loaded=3, duplicates=0
    )
    by_day = {r["business_date"]: r for r in rows}
    assert by_day[date(2026, 1, 3)] | {} == {
        "business_date": date(2026, 1, 3),
        "source": "db:loans",
        "entity": "loans",
        "rows_read": 2,
        "rows_loaded": 1,
        "rows_quarantined": 1,
        "rows_duplicate": 0,
    }
    assert by_day[date(2026, 1, 4)]["rows_loaded"] == 2
    assert by_day[DAY]["rows_quarantined"] == 1 and by_day[DAY]["rows_loaded"] == 0


def test_totals_match_the_batch_whatever_the_split():
    valid = pd.Series([date(2026, 1, 3)] * 4 + [date(2026, 1, 4)] * 2, dtype=object)
    rows = coverage_rows(
        source="db:payments",
        entity=ENTITIES["payments"],
        valid_dates=valid,
        rejected_dates=pd.Series([], dtype=object),
        loaded=5,  # one key was stored already
        duplicates=2,  # two repeated keys inside the batch
    )
    assert sum(r["rows_read"] for r in rows) == 6 + 2
    assert sum(r["rows_loaded"] for r in rows) == 5
    assert sum(r["rows_duplicate"] for r in rows) == 1 + 2
    for r in rows:
        assert r["rows_read"] == r["rows_loaded"] + r["rows_quarantined"] + r["rows_duplicate"]


def test_the_counts_table_puts_rejected_files_and_their_reason_first():
    table = pd.DataFrame(
        [
            {
                "source": "db:customers",
                "entity": "customers",
                "status": "loaded",
                "rows_read": 12345,
                "rows_loaded": 12345,
                "rows_quarantined": 0,
                "rows_duplicate": 0,
                "error": None,
            },
            {
                "source": "file:app_events/a_2026-01-05.csv",
                "entity": "app_events",
                "status": "failed",
                "rows_read": 0,
                "rows_loaded": 0,
                "rows_quarantined": 0,
                "rows_duplicate": 0,
                "error": "app_events/a_2026-01-05.csv: binary content (NUL bytes) in a text file",
            },
        ]
    )
    rows = counts_table(table)
    assert rows[0]["status"] == "failed" and rows[0]["reason"] == "binary content (NUL bytes) in a text file"
    assert list(rows[0])[:3] == ["source", "status", "reason"]
    assert rows[1]["read"] == "12,345"
