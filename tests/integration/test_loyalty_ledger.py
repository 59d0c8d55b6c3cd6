"""The loyalty ledger on a simulated company: a month posted twice is unchanged, SQLite and PostgreSQL agree."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import pytest
from sqlalchemy import func, select

from crm.core.settings import make_engine
from crm.loyalty import LoyaltyConfig, ledger_snapshot, post_loyalty_day
from models.loyalty import loyalty_ledger
from tests.conftest import _postgres_database
from tests.simulated import START, ingest_days, simulate_company

DAYS = 31


def _balances(url: str) -> pd.DataFrame:
    with make_engine(url).connect() as conn:
        rows = conn.execute(
            select(loyalty_ledger.c.customer_id, func.sum(loyalty_ledger.c.amount_minor).label("balance"))
            .group_by(loyalty_ledger.c.customer_id)
            .order_by(loyalty_ledger.c.customer_id)
        ).all()
    return pd.DataFrame(rows, columns=["customer_id", "balance"]).astype("int64")


def _post_month(url: str, config: LoyaltyConfig) -> list:
    engine = make_engine(url)
    return [post_loyalty_day(engine, engine, START + timedelta(days=i), config) for i in range(DAYS)]


def _use(monkeypatch, warehouse: str, source: str, landing: str) -> None:
    monkeypatch.setenv("CRM_WAREHOUSE_URL", warehouse)
    monkeypatch.setenv("CRM_SOURCE_URL", source)
    monkeypatch.setenv("CRM_LANDING_URL", landing)


@pytest.mark.slow
def test_a_month_posted_twice_is_byte_for_byte_unchanged_and_sqlite_equals_postgresql(tmp_path, monkeypatch):
    source, landing = f"sqlite:///{tmp_path / 'source.db'}", str(tmp_path / "landing")
    monkeypatch.setenv("CRM_HOME", str(tmp_path))
    simulate_company(source, landing, customers=200, days=DAYS, seed=11)
    config = LoyaltyConfig(expiry_days=20, promo_expiry_days=5, window_days=14)  # expiry and tier moves within a month

    sqlite_url = f"sqlite:///{tmp_path / 'warehouse.db'}"
    _use(monkeypatch, sqlite_url, source, landing)
    ingest_days(START, START + timedelta(days=DAYS - 1))
    first = _post_month(sqlite_url, config)
    assert not [v for r in first for v in r.violations]
    snapshot = ledger_snapshot(make_engine(sqlite_url))
    kinds = set(snapshot["loyalty_ledger"]["kind"])
    assert {"accrual", "redemption", "expiry"} <= kinds, kinds
    assert len(snapshot["loyalty_events"]) and len(snapshot["loyalty_tiers"]) >= 200 * 0.9

    again = _post_month(sqlite_url, config)  # the whole month recalculated
    assert sum(r.entries_added + r.allocations_added for r in again) == 0
    past = post_loyalty_day(make_engine(sqlite_url), make_engine(sqlite_url), START + timedelta(days=9), config)
    assert past.entries_added == 0 and not past.tiers_written
    for name, frame in ledger_snapshot(make_engine(sqlite_url)).items():
        pd.testing.assert_frame_equal(frame, snapshot[name], obj=name)

    generator = _postgres_database()
    postgres_url = next(generator)
    try:
        _use(monkeypatch, postgres_url, source, landing)
        ingest_days(START, START + timedelta(days=DAYS - 1))
        on_postgres = _post_month(postgres_url, config)
        assert not [v for r in on_postgres for v in r.violations]
        pd.testing.assert_frame_equal(_balances(postgres_url), _balances(sqlite_url))
        pg = ledger_snapshot(make_engine(postgres_url))
        for name in ("loyalty_ledger", "loyalty_allocations", "loyalty_qualifying", "loyalty_tiers", "loyalty_events"):
            mine, theirs = pg[name].astype(str), snapshot[name].astype(str)
            pd.testing.assert_frame_equal(mine, theirs, obj=name)
    finally:
        make_engine(postgres_url).dispose()
        generator.close()
