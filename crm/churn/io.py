"""Churn IO: read a chunk's rows per data kind, the customers' id ranges, and write a day's scores."""

from __future__ import annotations

from contextlib import contextmanager
from datetime import date, datetime, timedelta

import numpy as np
import pandas as pd
from sqlalchemy import BigInteger, Column, Connection, Engine, Select, insert, select

from crm.churn import queries
from crm.churn.config import ChurnConfig
from crm.churn.features import DATA_KINDS, TIME_COLUMNS, Frames, features_from_aggregates, measures
from crm.core.dates import end_of
from crm.core.db import analyze, id_chunks, temporary_table, write_frame
from models.churn import churn_scores

EVENT_KINDS = ("app_events", "message_events")


def read_frames(
    conn: Connection,
    as_of: date,
    lo: int,
    hi: int,
    *,
    kinds=DATA_KINDS,
    since: datetime | None = None,
    events_days: int | None = None,
) -> Frames:
    """The rows of customers lo..hi per data kind, as they stood at the end of `as_of`.

    `since` keeps dated rows from then on; `events_days` keeps only that many days of app and
    message events (the longest feature window: the bulk of the rows, and older ones add nothing).
    """
    frames = {}
    for kind in kinds:
        use_since = since if kind in queries.TIME_COLUMN else None
        if kind in EVENT_KINDS and events_days is not None:
            use_since = max(filter(None, [use_since, end_of(as_of) - timedelta(days=events_days)]))
        frame = pd.read_sql(queries.kind_rows(kind, as_of, lo, hi, since=use_since), conn)
        for column in TIME_COLUMNS.values():
            if column in frame and frame[column].dtype == object:
                frame[column] = pd.to_datetime(frame[column], format="ISO8601")
        frames[kind] = frame
    return Frames(frames)


def _parse_times(frame: pd.DataFrame, columns) -> pd.DataFrame:
    for column in columns:
        if column in frame and frame[column].dtype == object:
            frame[column] = pd.to_datetime(frame[column], format="ISO8601")
    return frame


def read_aggregates(
    conn: Connection, as_of: date, config: ChurnConfig, lo: int | None = None, hi: int | None = None
) -> dict[str, pd.DataFrame]:
    """Per-customer aggregates of each data kind (one GROUP BY each in the warehouse) for customers lo..hi (or all).

    App and message events older than the longest feature window are left out (the bulk of
    the rows, and no feature reads them).
    """
    return _read_aggregates(conn, as_of, config, lo, hi, None)


def _read_aggregates(
    conn: Connection, as_of: date, config: ChurnConfig, lo: int | None, hi: int | None, only: Select | None
) -> dict[str, pd.DataFrame]:
    """`read_aggregates` of the customers of `only` (a subquery of ids) when given."""
    out = {}
    since = end_of(as_of) - timedelta(days=config.features.windows_days[-1])
    for kind, kind_measures in measures(config).items():
        stmt = queries.kind_aggregates(
            kind, as_of, config, lo, hi, since=since if kind in EVENT_KINDS else None, only=only
        )
        frame = pd.read_sql(stmt, conn, index_col="customer_id")
        times = [m.name for m in kind_measures if m.how in ("min", "max") and m.name.endswith("_at")]
        if len(frame):
            out[kind] = _parse_times(frame, times)
    return out


def read_features(
    conn: Connection,
    as_of: date,
    config: ChurnConfig,
    lo: int | None = None,
    hi: int | None = None,
    *,
    eligible_only: bool = False,
) -> pd.DataFrame:
    """Features and eligibility of customers lo..hi (or all) known at the end of `as_of`, aggregated in the warehouse.

    `eligible_only`: only the customers scored on `as_of` (what training and scoring use; the
    others' rows are not aggregated). A range holding every known customer is read as the whole
    population (a scan: on SQLite faster than the range's index walk when one chunk is everyone).
    """
    if lo is not None and hi is not None and covers_everyone(conn, as_of, lo, hi):
        lo = hi = None
    with _eligible(conn, as_of, config, lo, hi, eligible_only) as only:
        customers = _parse_times(pd.read_sql(queries.customers_rows(as_of, lo, hi, only), conn), ["registered_at"])
        aggregates = _read_aggregates(conn, as_of, config, lo, hi, only)
    return features_from_aggregates(customers, aggregates, as_of, config)


@contextmanager
def _eligible(conn: Connection, as_of: date, config: ChurnConfig, lo: int | None, hi: int | None, wanted: bool):
    """The ids of the customers scored on `as_of` (lo..hi, or all) in a temporary table, as a subquery (None if
    not `wanted`): worked out once in the warehouse, not once per data kind's statement."""
    if not wanted:
        yield None
        return
    table = temporary_table(conn, "_churn_eligible", Column("customer_id", BigInteger, primary_key=True))
    conn.execute(insert(table).from_select(["customer_id"], queries.eligible_customers(as_of, config, lo, hi)))
    analyze(conn, table.name)  # no statistics otherwise: the planner would guess
    yield select(table.c.customer_id)
    # After an error the table stays with the connection (its name is unique; PostgreSQL's rollback drops it):
    # dropping it in a failed PostgreSQL transaction would hide the error.
    table.drop(conn)


def covers_everyone(conn: Connection, as_of: date, lo: int, hi: int) -> bool:
    """Whether customers lo..hi are every customer known at the end of `as_of` (one chunk for the whole base)."""
    return conn.execute(queries.customer_outside(as_of, lo, hi)).first() is None


def returning_customers(
    conn: Connection,
    snapshot: date,
    label_as_of: date,
    config: ChurnConfig,
    lo: int | None = None,
    hi: int | None = None,
) -> np.ndarray:
    """Ids of the customers with counted activity in the horizon after `snapshot`, as known by `label_as_of`."""
    stmt = queries.returning_customers(snapshot, label_as_of, config, lo, hi)
    return np.fromiter((row[0] for row in conn.execute(stmt)), dtype=np.int64)


def present_kinds(conn: Connection, as_of: date) -> set[str]:
    """The data kinds the company has (any row known at the end of `as_of`)."""
    return {kind for kind in DATA_KINDS if conn.execute(queries.kind_exists(kind, as_of)).first() is not None}


def customer_ranges(conn: Connection, as_of: date, chunk: int) -> list[tuple[int, int]]:
    """Consecutive id ranges (lo, hi) of about `chunk` customers each, covering every customer known by `as_of`."""
    ids = np.fromiter((row[0] for row in conn.execute(queries.customer_ids(as_of))), dtype=np.int64)
    return [(int(part[0]), int(part[-1])) for part in id_chunks(ids, chunk)]


def history_start(conn: Connection, as_of: date) -> date | None:
    """The day the oldest known customer registered (None for an empty warehouse)."""
    value = conn.execute(queries.first_registration(as_of)).scalar()
    if value is None:
        return None
    return pd.Timestamp(value).date()


def write_scores(engine: Engine, as_of: date, scores: pd.DataFrame) -> int:
    """Replace the day's scores (customer_id, probability, decile, model_version) in one transaction."""
    frame = scores[["customer_id", "probability", "decile", "model_version"]].assign(as_of=pd.Timestamp(as_of))
    with engine.begin() as conn:
        conn.execute(queries.delete_scores(as_of))
        return write_frame(conn, churn_scores, frame, on_conflict="error")


def read_scores(conn: Connection, as_of: date) -> pd.DataFrame:
    """A day's scores in customer order."""
    return pd.read_sql(queries.day_scores(as_of), conn)


def write_report_files(reports_url: str, prefix: str, files: dict[str, bytes]) -> dict[str, str]:
    """Write report files (plots) under `prefix` in the reports location; return each one's address."""
    from pathlib import Path

    from crm.core.storage import open_store

    zone = open_store(reports_url)
    base = (
        reports_url.rstrip("/")
        if reports_url.startswith("s3://")
        else str(Path(reports_url.removeprefix("file://")).expanduser().resolve())
    )
    out = {}
    for name, data in files.items():
        zone.write_bytes(f"{prefix}/{name}", data)
        out[name] = f"{base}/{prefix}/{name}"
    return out
