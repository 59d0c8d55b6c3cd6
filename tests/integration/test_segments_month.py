"""A simulated month, night by night: incremental equals full, a past day recomputed equals its stored night,
SQLite equals PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import pytest

from crm.core.db import read_frame
from crm.core.settings import make_engine
from crm.segments import RunMode, SegmentsConfig, refresh_segments, segment_snapshot
from tests.conftest import _postgres_database
from tests.simulated import START, ingest_days, simulate_company

DAYS = 30
CONFIG = SegmentsConfig()


def run_month(warehouse_url: str, monkeypatch) -> dict[int, pd.DataFrame]:
    """Ingest and refresh segments night by night; return the snapshot of every day as stored that night."""
    monkeypatch.setenv("CRM_WAREHOUSE_URL", warehouse_url)
    engine = make_engine(warehouse_url)
    nights = {}
    for offset in range(DAYS):
        day = START + timedelta(days=offset)
        ingest_days(day, day)
        run = refresh_segments(engine, day, CONFIG)
        assert run.mode == (RunMode.FULL if offset == 0 else RunMode.INCREMENTAL)
        with engine.connect() as conn:
            nights[offset] = read_frame(conn, segment_snapshot(day))
    return nights


@pytest.mark.slow
def test_a_month_of_nights_incremental_equals_full_past_days_recompute_and_engines_agree(sqlite_backend, monkeypatch):
    simulate_company(sqlite_backend.source_url, sqlite_backend.landing_url, customers=200, days=DAYS)
    engines = {"sqlite": sqlite_backend.warehouse_url}
    postgres = _postgres_database()
    engines["postgresql"] = next(postgres)
    try:
        results = {}
        for name, url in engines.items():
            results[name] = run_month(url, monkeypatch)
            engine = make_engine(url)
            # Every night was incremental; each recheck recomputes the day in full from the history as
            # of that day, after the whole month was ingested, and compares it with what was stored.
            for offset in (9, 14, 20, 29):
                recheck = refresh_segments(engine, START + timedelta(days=offset), CONFIG)
                assert (recheck.mode, recheck.differences) == (RunMode.RECHECK, 0), (name, offset)
            with engine.connect() as conn:  # the stored night 10 reads the same after 20 more days
                later = read_frame(conn, segment_snapshot(START + timedelta(days=9)))
            pd.testing.assert_frame_equal(later, results[name][9])
        night = results["sqlite"][DAYS - 1]
        assert len(night) >= 200 and night["lifecycle_state"].nunique() >= 4 and night["rfm_cell"].notna().any()
        for offset in range(DAYS):
            pd.testing.assert_frame_equal(
                results["postgresql"][offset], results["sqlite"][offset], obj=f"night {offset}", check_dtype=False
            )
    finally:
        postgres.close()
