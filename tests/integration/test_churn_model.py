"""Churn on a simulated company: beats recency, point in time, re-scoring identical, partial data, short history."""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd
import pytest

from crm.churn import (
    RECENCY_MODEL,
    ChurnConfig,
    ModelRegistry,
    build_snapshot,
    customer_ranges,
    fit_and_compare,
    plan_snapshots,
    read_features,
    usable,
)
from crm.core.settings import warehouse_engine
from crm.core.storage import open_store
from tests.churn_world import all_features, all_scores, ingest_every, simulate_history
from tests.simulated import START

pytestmark = pytest.mark.slow


def quick_config(**changes) -> ChurnConfig:
    """Defaults with a lighter booster and small chunks (several chunks on a small company)."""
    config = ChurnConfig(**changes)
    config.training.max_iter = 60
    config.training.importance_rows = 1500
    config.scoring.chunk_customers = 400
    return config


def train(as_of: date, config: ChurnConfig):
    engine = warehouse_engine()
    plan = plan_snapshots(engine, as_of, config)
    frames = [build_snapshot(engine, day, as_of, config) for day in plan.used]
    kept = [f for f in frames if len(f) and usable(f, config) is None]
    return plan, fit_and_compare(pd.concat(kept, ignore_index=True), plan.kinds, config, None)


def test_the_model_beats_recency_and_past_days_do_not_move_when_later_days_arrive(sqlite_backend, tmp_path):
    # On PostgreSQL: tests/flows/test_churn_flow.py trains, scores and re-scores a day there (CI time).
    last = simulate_history(customers=1000, register_days=40, days=225)
    as_of = date(2026, 7, 20)
    ingest_every(START + timedelta(days=14), as_of, 15)
    config = quick_config()

    plan, result = train(as_of, config)
    assert len(plan.used) >= 4
    assert result.split == "time"
    mine = result.metrics["gradient_boosting"]["roc_auc"]
    recency = result.metrics[RECENCY_MODEL]["roc_auc"]
    assert mine > recency, (mine, recency)

    registry = ModelRegistry(open_store(str(tmp_path / "models")))
    registered = registry.register(
        result.challenger,
        {
            "as_of": as_of.isoformat(),
            "model_kind": "gradient_boosting",
            "features": result.features,
            "reference": result.reference,
            "training_window": [d.isoformat() for d in plan.used],
        },
    )
    model, entry = registry.load(registered["version"])
    features_then = all_features(as_of, config)
    # The warehouse's aggregates give the features the rows give in pandas (the reference).
    pd.testing.assert_frame_equal(features_then, all_features(as_of, config, from_rows=True), rtol=1e-6)
    # Training and scoring aggregate the eligible customers only: per chunk, and as one range holding everyone
    # (read as the whole population), they get the eligible rows of everyone's features.
    with warehouse_engine().connect() as conn:
        ranges = customer_ranges(conn, as_of, config.scoring.chunk_customers)
        chunked = pd.concat(read_features(conn, as_of, config, lo, hi, eligible_only=True) for lo, hi in ranges)
        everyone = read_features(conn, as_of, config, ranges[0][0], ranges[-1][1], eligible_only=True)
    eligible_then = features_then[features_then["is_eligible"]]
    assert len(ranges) > 1 and len(eligible_then) < len(features_then)
    pd.testing.assert_frame_equal(chunked.sort_index(), eligible_then)
    pd.testing.assert_frame_equal(everyone.sort_index(), eligible_then)
    scores_then = all_scores(as_of, model, entry, config)
    assert len(scores_then) == int(features_then["is_eligible"].sum()) > 100

    ingest_every(as_of + timedelta(days=1), last, 7)  # later days arrive: new loans, repayments, events

    pd.testing.assert_frame_equal(all_features(as_of, config), features_then)
    model, entry = registry.load(registered["version"])
    pd.testing.assert_frame_equal(all_scores(as_of, model, entry, config), scores_then)
    # And the later day does see the news.
    assert not all_features(last, config).equals(features_then)


def test_a_retail_chain_with_only_customers_and_orders_trains(sqlite_backend):
    from crm.simulator import SimulationConfig

    retail = SimulationConfig(lead_share=0.0, retail_only_share=1.0, orders_per_day=1 / 45)
    last = simulate_history(customers=500, register_days=25, days=190, config=retail)
    ingest_every(START + timedelta(days=14), last, 15, landing=False)  # no app or message events at all
    config = quick_config()
    plan, result = train(last, config)
    assert set(plan.kinds) == {"customers", "orders"}
    assert result.features and not [f for f in result.features if "loan" in f or "app_event" in f or "push" in f]
    assert result.metrics["gradient_boosting"]["rows"] > 0


def test_a_short_history_trains_on_the_snapshots_that_fit(sqlite_backend):
    last = simulate_history(customers=600, register_days=30, days=130)
    ingest_every(START + timedelta(days=14), last, 15)
    config = quick_config()
    plan, result = train(last, config)
    assert 1 <= len(plan.used) < config.training.snapshots
    assert len(plan.skipped) == config.training.snapshots - len(plan.used)
    assert all("history" in why for why in plan.skipped.values())
    assert result.train_rows > 0 and result.valid_rows > 0
