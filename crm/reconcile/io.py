"""Reconciliation's IO: aggregate both sides, walk id lists in key order, store results and the verdict.

For a business day `as_of` both sides are read as "every row whose last change (`updated_at`)
lies before the end of `as_of`" — the source directly (read only), the warehouse through the
`updated_at` its `stg_` tables carry — so a past day can be reconciled after later days were
ingested. Rows the source has changed since the day (their new version is not comparable) are
left out of both sides: the warehouse may still hold their older version when it is behind the
live source, and that is lag, not loss.

When an entity's figure diverges beyond the threshold its id lists are diffed chunk by chunk in
key order (key, status and amount only), so memory stays bounded at millions of rows.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta

import pandas as pd
from sqlalchemy import Connection, Engine, Select, case, delete, func, select

from crm.core.contracts import Entity
from crm.core.db import keyset_pages, last_key, plain, read_frame, write_frame
from crm.core.gate import Check, record_verdict
from crm.reconcile.config import EntityCheck
from crm.reconcile.diff import (
    MISMATCH_COLUMNS,
    MISMATCH_KINDS,
    MismatchCollector,
    MismatchKind,
    diff_rows,
    mark_quarantined,
)
from crm.reconcile.figures import AGGREGATE_COLUMNS, FIGURE_COLUMNS, combine_aggregates, compare_metrics, entity_metrics
from crm.reconcile.queries import aggregate_statement, changed_since, day_bounds, key_columns, key_filter
from models import source as source_model
from models.ingest import quarantined_rows, staging
from models.reconcile import reconciliation_mismatches, reconciliation_results

# Bound parameters per `IN (...)` list (SQLite allows 32,766 per statement).
IN_LIST_SIZE = 5_000


def _aggregate(conn: Connection, stmt: Select) -> pd.DataFrame:
    return pd.DataFrame(conn.execute(stmt).all(), columns=AGGREGATE_COLUMNS)


def iter_changed_since(conn: Connection, entity: Entity, since, chunk: int = IN_LIST_SIZE) -> Iterator[list[tuple]]:
    """Keys of source rows changed at or after `since`, in chunks (the watermark index serves it)."""
    stmt, order = changed_since(source_model.tables[entity.name], entity, since)
    for page in keyset_pages(stmt, order, lambda s: read_frame(conn, s), chunk_rows=chunk):
        yield [tuple(plain(v) for v in row) for row in page[list(entity.key)].itertuples(index=False, name=None)]


@dataclass
class EntityFigures:
    """Both sides' figures of one entity."""

    figures: pd.DataFrame
    in_flight: int  # warehouse rows left out: the source changed them after the day


def read_entity_figures(
    source: Engine, warehouse: Engine, entity: Entity, check: EntityCheck, as_of: date, threshold: float
) -> EntityFigures:
    """Aggregate one entity on both sides and compare every figure."""
    _, end = day_bounds(as_of)
    with source.connect() as conn:
        src = _aggregate(conn, aggregate_statement(source_model.tables[entity.name], entity, check, as_of))
    stg = staging[entity.name]
    with warehouse.connect() as conn:
        whs = _aggregate(conn, aggregate_statement(stg, entity, check, as_of))
    corrections = []
    if not entity.immutable:
        # Warehouse rows whose source row has moved on since the day: not comparable, left out.
        with source.connect() as src_conn, warehouse.connect() as wh_conn:
            for keys in iter_changed_since(src_conn, entity, end):
                stmt = aggregate_statement(stg, entity, check, as_of).where(key_filter(stg, entity, keys))
                corrections.append(_aggregate(wh_conn, stmt))
    in_flight = int(sum(int(c["rows_cumulative"].map(int).sum()) for c in corrections))
    if corrections:
        whs = combine_aggregates([whs, *corrections], sign=[1] + [-1] * len(corrections))
    figures = compare_metrics(
        entity.name, entity_metrics(entity, check, src), entity_metrics(entity, check, whs), threshold
    )
    return EntityFigures(figures=figures, in_flight=in_flight)


@dataclass
class EntityDiff:
    """The id diff of one entity."""

    entity: str
    counts: dict[str, int]
    mismatches: pd.DataFrame  # capped per kind; columns MISMATCH_COLUMNS
    in_flight: int
    source_rows: int
    warehouse_rows: int


def diff_entity_ids(
    source: Engine,
    warehouse: Engine,
    entity: Entity,
    check: EntityCheck,
    as_of: date,
    *,
    chunk_rows: int = 100_000,
    max_stored_ids: int = 100_000,
) -> EntityDiff:
    """Walk both sides in key order, `chunk_rows` source keys at a time, and classify every mismatching id.

    Source rows changed after the day are read too, only to leave their keys out on both sides.
    Missing ids sitting in `quarantined_rows` become kind `quarantined`.
    """
    _, end = day_bounds(as_of)
    key = list(entity.key)
    compared = [c for c in (check.status, check.amount) if c]
    money = [check.amount] if check.amount else []
    src_t, stg_t = source_model.tables[entity.name], staging[entity.name]
    updated = entity.updated_column
    collector = MismatchCollector(cap=max_stored_ids)
    in_flight = source_rows = warehouse_rows = 0
    quarantine: dict[str, str] | None = None
    stg_stmt = select(*[stg_t.c[c] for c in key + compared]).where(stg_t.c[updated] < end)
    # Compared in SQL: parsing every timestamp in Python would double the walk's time.
    # Rows without updated_at were never pulled by the watermark either: not comparable.
    is_current = case((src_t.c[updated] < end, 1), else_=0).label("_current")
    src_stmt = select(*[src_t.c[c] for c in key + compared], is_current)

    def classify(src_part: pd.DataFrame, wh_part: pd.DataFrame) -> None:
        nonlocal quarantine
        mismatches = diff_rows(src_part, wh_part, key=key, status=check.status, amount=check.amount)
        if (mismatches["kind"] == MismatchKind.MISSING).any():
            if quarantine is None:
                quarantine = _quarantine_rules(warehouse, entity)
            mismatches = mark_quarantined(mismatches, quarantine)
        collector.add(mismatches)

    lo: tuple | None = None
    with source.connect() as src_conn, warehouse.connect() as wh_conn:

        def read_source(stmt: Select) -> pd.DataFrame:
            return read_frame(src_conn, stmt, integers=money)

        def read_warehouse(stmt: Select) -> pd.DataFrame:
            return read_frame(wh_conn, stmt, integers=money)

        def warehouse_range(after: tuple | None, upto: tuple | None) -> Iterator[pd.DataFrame]:
            order = key_columns(stg_t, entity)
            return keyset_pages(stg_stmt, order, read_warehouse, chunk_rows=chunk_rows, after=after, upto=upto)

        for chunk in keyset_pages(src_stmt, key_columns(src_t, entity), read_source, chunk_rows=chunk_rows):
            hi = last_key(chunk, key)
            current_mask = (chunk["_current"] == 1).to_numpy(bool)
            moved = chunk[~current_mask]
            current = chunk[current_mask].drop(columns="_current")
            wh_part = pd.concat(
                list(warehouse_range(lo, hi)) or [pd.DataFrame(columns=key + compared)], ignore_index=True
            )
            if len(moved) and len(wh_part):
                gone = (
                    wh_part.merge(moved[key].drop_duplicates(), on=key, how="left", indicator=True)["_merge"] == "both"
                )
                in_flight += int(gone.sum())
                wh_part = wh_part[~gone.to_numpy()]
            source_rows += len(current)
            warehouse_rows += len(wh_part)
            classify(current, wh_part)
            lo = hi
        # Warehouse keys after the last source key: all extra.
        for page in warehouse_range(lo, None):
            warehouse_rows += len(page)
            classify(page.iloc[0:0], page)

    mismatches = collector.frame().assign(entity=entity.name)[MISMATCH_COLUMNS]
    counts = {kind: collector.counts.get(kind, 0) for kind in MISMATCH_KINDS}
    return EntityDiff(entity.name, counts, mismatches, in_flight, source_rows, warehouse_rows)


def _quarantine_rules(warehouse: Engine, entity: Entity) -> dict[str, str]:
    """record_key -> the rule that last rejected it, for one entity's quarantined rows."""
    q = quarantined_rows
    stmt = (
        select(q.c.record_key, q.c.rule)
        .where(q.c.entity == entity.name, q.c.record_key.is_not(None))
        .order_by(q.c.quarantine_id)
    )
    with warehouse.connect() as conn:
        return {row.record_key: row.rule for row in conn.execute(stmt)}


def record_reconciliation(
    warehouse: Engine,
    as_of: date,
    figures: pd.DataFrame,
    mismatches: pd.DataFrame,
    *,
    fit_for_sending: bool,
    summary: str,
) -> None:
    """Replace the day's results, mismatches and verdict in one transaction (other days untouched)."""
    results = figures[FIGURE_COLUMNS].assign(as_of=pd.Timestamp(as_of))
    ids = mismatches[MISMATCH_COLUMNS].assign(as_of=pd.Timestamp(as_of))
    for column in ("source_value", "warehouse_value"):  # String(256) columns
        ids[column] = ids[column].astype(object).where(ids[column].isna(), ids[column].astype(str).str.slice(0, 256))
    with warehouse.begin() as conn:
        conn.execute(delete(reconciliation_mismatches).where(reconciliation_mismatches.c.as_of == as_of))
        conn.execute(delete(reconciliation_results).where(reconciliation_results.c.as_of == as_of))
        write_frame(conn, reconciliation_results, results, on_conflict="error")
        write_frame(conn, reconciliation_mismatches, ids, on_conflict="error")
        record_verdict(conn, as_of, Check.RECONCILIATION, fit_for_sending=fit_for_sending, summary=summary)


def read_divergence_history(conn: Connection, as_of: date, days: int) -> pd.DataFrame:
    """Stored divergences of the `days` days up to `as_of`: as_of, entity, divergence (largest per entity and day)."""
    r = reconciliation_results
    stmt = (
        select(r.c.as_of, r.c.entity, func.max(r.c.divergence).label("divergence"))
        .where(r.c.as_of > as_of - timedelta(days=days), r.c.as_of <= as_of)
        .group_by(r.c.as_of, r.c.entity)
        .order_by(r.c.as_of, r.c.entity)
    )
    return read_frame(conn, stmt)
