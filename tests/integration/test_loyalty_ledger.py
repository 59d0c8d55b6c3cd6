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


def test_what_if_replays_changed_rules_into_a_scratch_ledger_and_never_writes_the_real_one(sqlite_backend, tmp_path):
    from typer.testing import CliRunner

    from cli import app
    from crm.core.migrations import upgrade_warehouse

    simulate_company(sqlite_backend.source_url, sqlite_backend.landing_url, customers=80, days=6, seed=3)
    end = START + timedelta(days=5)
    ingest_days(START, end)
    engine = make_engine(sqlite_backend.warehouse_url)
    upgrade_warehouse(engine)
    for i in range(6):
        post_loyalty_day(engine, engine, START + timedelta(days=i), LoyaltyConfig())
    real = ledger_snapshot(engine)
    rules = tmp_path / "richer.yaml"
    rules.write_text(
        "tiers:\n"
        "  - {name: bronze, threshold_minor: 0, purchase_bp: 1000, interest_bp: 2000}\n"
        "  - {name: silver, threshold_minor: 100000, purchase_bp: 1500, interest_bp: 2500}\n"
        "  - {name: gold, threshold_minor: 300000, purchase_bp: 2000, interest_bp: 3000}\n"
    )
    scratch = tmp_path / "scratch.db"
    args = [
        "loyalty",
        "what-if",
        "--rules",
        str(rules),
        "--start",
        str(START),
        "--end",
        str(end),
        "--scratch",
        str(scratch),
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "| outstanding cashback |" in result.output and "members in gold" in result.output
    for name, frame in ledger_snapshot(engine).items():
        pd.testing.assert_frame_equal(frame, real[name], obj=name)
    scenario = ledger_snapshot(make_engine(f"sqlite:///{scratch}"))["loyalty_ledger"]
    accrued = scenario[scenario["kind"] == "accrual"]["amount_minor"].sum()
    assert accrued > real["loyalty_ledger"].query("kind == 'accrual'")["amount_minor"].sum()
    assert len(scenario) and scenario["rule"].str.contains("purchase 10%").any()

    bad = tmp_path / "bad.yaml"
    bad.write_text("redemption_limit_bp: -1\n")
    result = CliRunner().invoke(
        app, ["loyalty", "what-if", "--rules", str(bad), "--start", str(START), "--end", str(end)]
    )
    assert result.exit_code == 3 and "bad.yaml: redemption_limit_bp" in result.output


def test_posting_members_in_chunks_writes_the_same_ledger_and_finds_the_same_violations(
    sqlite_backend, tmp_path, monkeypatch
):
    from dataclasses import asdict
    from datetime import date

    from benchmarks.bench_loyalty import GENERATE
    from crm.loyalty import check_invariants, create_ledger_tables
    from crm.loyalty.io import check_members
    from tests.unit.loyalty.test_rules import CONFIG  # tiers within reach of a few purchases

    # The benchmark's synthetic year (the warehouse rows ingestion writes) for 300 members: a first run
    # posts 11 months at once, then 2 nights with purchases, interest, redemptions, expiry and tier moves.
    monkeypatch.setattr("sys.argv", ["generate", "300", "2025-01-01", "365"])
    exec(compile(GENERATE, "bench_loyalty.GENERATE", "exec"), {})
    source = make_engine(sqlite_backend.warehouse_url)
    config = CONFIG.model_copy(update={"expiry_days": 2, "promo_expiry_days": 1, "window_days": 1})
    days = [date(2025, 12, 1) + timedelta(days=i) for i in range(3)]
    posted = {}
    for name, chunk in (("at once", 10_000), ("in chunks of 70", 70)):
        ledger = make_engine(f"sqlite:///{tmp_path / name}.db")
        create_ledger_tables(ledger)
        results = [asdict(post_loyalty_day(source, ledger, d, config, chunk_members=chunk)) for d in days]
        posted[name] = (ledger, results, ledger_snapshot(ledger))
    whole, chunked = posted["at once"], posted["in chunks of 70"]
    assert chunked[1] == whole[1] and not [v for r in whole[1] for v in r["violations"]]
    assert {"accrual", "redemption", "expiry"} <= set(whole[2]["loyalty_ledger"]["kind"])
    assert whole[2]["loyalty_tiers"]["valid_to"].notna().any()  # tier moves
    assert whole[1][0]["members_touched"] > 3 * 70  # the first run spans several chunks
    for name, frame in whole[2].items():
        pd.testing.assert_frame_equal(chunked[2][name], frame, obj=name)

    # The check reads whole members a chunk at a time: violations of members in different chunks merge.
    ledger = chunked[0]
    with ledger.begin() as conn:
        conn.execute(loyalty_ledger.update().where(loyalty_ledger.c.kind == "expiry").values(amount_minor=-1))
        entries = pd.DataFrame(conn.execute(select(loyalty_ledger)).mappings().all())
        allocations = ledger_snapshot(ledger)["loyalty_allocations"]
        members = entries["customer_id"]
        assert check_members(conn, members, chunk_members=7) == check_invariants(entries, allocations) != []
