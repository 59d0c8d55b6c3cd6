"""A simulated month, night by night: incremental equals full, a past day recomputed equals its stored night,
SQLite equals PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import pytest

from crm.core.db import read_frame
from crm.core.pipeline import read_ahead
from crm.core.settings import make_engine
from crm.segments import RunMode, SegmentsConfig, refresh_segments, segment_snapshot
from crm.segments import io as segments_io
from tests.conftest import _postgres_database
from tests.simulated import START, ingest_days, simulate_company

DAYS = 30
CONFIG = SegmentsConfig()


def run_month(warehouse_url: str, monkeypatch, *, small_chunks: bool = False) -> dict[int, pd.DataFrame]:
    """Ingest and refresh segments night by night; return the snapshot of every day as stored that night.

    `small_chunks`: every other night's customers aggregated from the history come in chunks of 10, as a
    night larger than a chunk (streamed on the night's connection instead of aggregated apart)."""
    monkeypatch.setenv("CRM_WAREHOUSE_URL", warehouse_url)
    engine = make_engine(warehouse_url)
    nights, streamed = {}, 0
    for offset in range(DAYS):
        day = START + timedelta(days=offset)
        ingest_days(day, day)
        chunk_rows = 10 if small_chunks and offset % 2 else 200_000
        run = refresh_segments(engine, day, CONFIG, chunk_rows=chunk_rows)
        assert run.mode == (RunMode.FULL if offset == 0 else RunMode.INCREMENTAL)
        streamed += run.mode == RunMode.INCREMENTAL and run.customers_aggregated > chunk_rows
        with engine.connect() as conn:
            nights[offset] = read_frame(conn, segment_snapshot(day))
    if small_chunks:
        assert streamed >= DAYS // 3
    return nights


@pytest.mark.slow
def test_a_month_of_nights_incremental_equals_full_past_days_recompute_and_engines_agree(sqlite_backend, monkeypatch):
    # SQLite's nights aggregate in a worker process whatever their size; PostgreSQL's on a second connection,
    # or, every other night, in chunks on the night's connection.
    monkeypatch.setattr(segments_io, "SQLITE_APART_FROM", 1)
    workers = []

    def counted_read_ahead(*args, **kwargs):
        workers.append(args[0].__name__)
        return read_ahead(*args, **kwargs)

    monkeypatch.setattr(segments_io, "read_ahead", counted_read_ahead)
    simulate_company(sqlite_backend.source_url, sqlite_backend.landing_url, customers=200, days=DAYS)
    engines = {"sqlite": sqlite_backend.warehouse_url}
    postgres = _postgres_database()
    engines["postgresql"] = next(postgres)
    try:
        results = {}
        for name, url in engines.items():
            results[name] = run_month(url, monkeypatch, small_chunks=name == "postgresql")
            engine = make_engine(url)
            # Every night was incremental; each recheck recomputes the day in full from the history as
            # of that day, after the whole month was ingested, and compares it with what was stored.
            for offset in (9, 14, 20, 29):
                recheck = refresh_segments(engine, START + timedelta(days=offset), CONFIG)
                assert (recheck.mode, recheck.differences) == (RunMode.RECHECK, 0), (name, offset)
            with engine.connect() as conn:  # the stored night 10 reads the same after 20 more days
                later = read_frame(conn, segment_snapshot(START + timedelta(days=9)))
            pd.testing.assert_frame_equal(later, results[name][9])
        assert len(workers) >= DAYS - 3  # SQLite's nights with someone to aggregate, each in a worker
        night = results["sqlite"][DAYS - 1]
        assert len(night) >= 200 and night["lifecycle_state"].nunique() >= 4 and night["rfm_cell"].notna().any()
        for offset in range(DAYS):
            pd.testing.assert_frame_equal(
                results["postgresql"][offset], results["sqlite"][offset], obj=f"night {offset}", check_dtype=False
            )
    finally:
        postgres.close()
