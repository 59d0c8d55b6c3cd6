"""Issue 9: a day's verdict does not depend on the order in which days are run.

One simulated company, two warehouses: days run in order, night after night, and the same days
run out of order (the last day first, then a backfill of the days before it, then a past day
re-run after later ones). Verdicts, quality results and reconciliation figures must be equal.

On both engines: the checks select a day's rows by comparing timestamps and dates in SQL, which
SQLite does on text and PostgreSQL on typed values. Three days are enough to catch a parent pulled
ahead on one night whose latest version is refused: it was quarantined that night and again on its own
day, so the day's verdict counted it twice when days ran in order.
"""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import pytest
from sqlalchemy import select

from crm.core.settings import make_engine
from crm.simulator import FaultConfig
from flows.backfill import backfill
from flows.nightly import nightly
from models.gate import day_verdicts
from models.quality import quality_results
from models.reconcile import reconciliation_results
from tests.conftest import _postgres_database
from tests.flows.conftest import simulate_company

CHECKS = ["ingest", "quality", "reconcile"]  # the steps whose verdicts are compared (the rest costs minutes)


def _outcome(url: str) -> dict[str, pd.DataFrame]:
    out = {}
    with make_engine(url).connect() as conn:
        for table in (day_verdicts, quality_results, reconciliation_results):
            key = list(table.primary_key.columns)
            frame = pd.DataFrame(conn.execute(select(table).order_by(*key)).mappings().all())
            out[table.name] = frame.reset_index(drop=True)
    return out


@pytest.mark.slow
def test_days_run_out_of_order_get_the_verdicts_of_their_own_nights(backend, tmp_path, monkeypatch):
    faults = FaultConfig(rate=0.01)
    summary = simulate_company(backend.source_url, backend.landing_url, customers=150, days=3, faults=faults)
    if backend.name == "sqlite":
        _compare_orders(
            summary.last_day, backend.warehouse_url, f"sqlite:///{tmp_path / 'out-of-order.db'}", monkeypatch
        )
        return
    second = _postgres_database()
    try:
        _compare_orders(summary.last_day, backend.warehouse_url, next(second), monkeypatch)
    finally:
        second.close()


def _compare_orders(last, in_order: str, out_of_order: str, monkeypatch) -> None:
    first = last - timedelta(days=2)  # three nights: in order, then the last, a backfill of two, one re-run
    day = first
    while day <= last:
        nightly(as_of=day, steps=CHECKS, return_state=True)
        day += timedelta(days=1)

    monkeypatch.setenv("CRM_WAREHOUSE_URL", out_of_order)
    nightly(as_of=last, steps=CHECKS, return_state=True)  # loads every file and source change up to the last day
    backfill(job="nightly", start=first, end=last - timedelta(days=1), steps=CHECKS)
    nightly(as_of=first + timedelta(days=1), steps=CHECKS, return_state=True)  # a past day re-run after later ones

    expected, got = _outcome(in_order), _outcome(out_of_order)
    assert len(expected["quality_results"]) > 0 and len(expected["reconciliation_results"]) > 0
    for name in expected:
        pd.testing.assert_frame_equal(got[name], expected[name], check_dtype=False, obj=name)
    make_engine(out_of_order).dispose()
