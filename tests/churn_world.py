"""A simulated company with enough history for churn (months), ingested every few days without Prefect."""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd

from crm.churn import ChurnConfig, compute_features, customer_ranges, read_features, read_frames, score_range
from crm.core.contracts import SOURCE_ENTITIES
from crm.core.migrations import upgrade_warehouse
from crm.core.settings import get_settings, make_engine, source_engine, warehouse_engine
from crm.core.storage import open_store
from crm.ingest import list_landing_files, load_landing_file, pull_source_table
from tests.simulated import START


def simulate_history(customers: int, register_days: int, days: int, *, config=None, seed: int = 11) -> date:
    """Register `customers` over the first `register_days`, then let the company live until `days`; the last day."""
    from crm.simulator import simulate

    settings = get_settings()
    source = make_engine(settings.source)
    zone = open_store(settings.landing)
    simulate(source, zone, customers=customers, days=register_days, seed=seed, start=START, config=config)
    if days > register_days:
        simulate(source, zone, customers=0, days=days - register_days, config=config)
    return START + timedelta(days=days - 1)


def ingest_every(first: date, last: date, step: int, *, landing: bool = True) -> None:
    """Ingest on every `step`-th day from `first` to `last` (and on `last`), like sparse nightly runs."""
    settings = get_settings()
    warehouse, source = warehouse_engine(settings), source_engine(settings)
    upgrade_warehouse(warehouse)
    zone = open_store(settings.landing)
    days = [first + timedelta(days=i) for i in range(0, (last - first).days + 1, step)]
    if days[-1] != last:
        days.append(last)
    for day in days:
        for entity in SOURCE_ENTITIES:
            pull_source_table(source, warehouse, entity, day, chunk_rows=settings.source_chunk_rows)
        if landing:
            files, _ = list_landing_files(zone, day)
            for landing_file in files:
                load_landing_file(zone, warehouse, landing_file, day)


def all_features(as_of: date, config: ChurnConfig, *, from_rows: bool = False) -> pd.DataFrame:
    """Every customer's features on `as_of`, in customer order: aggregated in the warehouse per chunk (as
    scoring does), or with `from_rows` from the chunk's rows in pandas (the reference)."""
    engine = warehouse_engine()
    with engine.connect() as conn:
        parts = [
            compute_features(
                read_frames(conn, as_of, lo, hi, events_days=config.features.windows_days[-1]), as_of, config
            )
            if from_rows
            else read_features(conn, as_of, config, lo, hi)
            for lo, hi in customer_ranges(conn, as_of, config.scoring.chunk_customers)
        ]
    return pd.concat(parts).sort_index()


def all_scores(as_of: date, model, entry: dict, config: ChurnConfig) -> pd.DataFrame:
    """Every eligible customer's probability on `as_of`, in customer order."""
    engine = warehouse_engine()
    with engine.connect() as conn:
        ranges = customer_ranges(conn, as_of, config.scoring.chunk_customers)
    parts = [score_range(engine, as_of, lo, hi, model, entry, config)[0] for lo, hi in ranges]
    return pd.concat(parts).sort_values("customer_id").reset_index(drop=True)
