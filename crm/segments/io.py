"""Segments' IO: compute a day (full, incremental, recheck, rewrite) and store intervals, events, sizes, aggregates."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np
import pandas as pd
from sqlalchemy import (
    Connection,
    Engine,
    Select,
    String,
    Table,
    delete,
    exists,
    func,
    insert,
    select,
    type_coerce,
    update,
)

from crm.core.db import (
    fill_ids,
    id_table,
    read_typed,
    refresh_statistics,
    sqlite_table_hint,
    with_sqlite_hint,
    write_frame,
)
from crm.core.gate import read_send_gate
from crm.core.pipeline import ahead_on_thread, read_ahead, reads_in_process
from crm.core.settings import engine_of, engine_url
from crm.segments.config import SegmentsConfig
from crm.segments.derive import (
    AGGREGATE_COLUMNS,
    FACT_COLUMNS,
    MEMBERSHIP_COLUMNS,
    add_fact_deltas,
    derive_segments,
    diff_memberships,
    memberships,
    recheck_on,
    typed_aggregates,
)
from crm.segments.queries import (
    aggregate_statement,
    customers_to_recompute,
    due_for_recheck,
    fact_deltas,
    stored_aggregates,
    valid_on,
)
from crm.segments.states import RunMode, SegmentKind
from models.segments import segment_aggregates, segment_events, segment_memberships, segment_runs, segment_sizes

# PostgreSQL memory per sort / hash of the run's transaction (the 100k aggregation: 10.7-13.8 s at 4 MB, 9.3-9.8 s here).
PG_WORK_MEM = "256MB"
# PostgreSQL's planner prices a random page read at 4 sequential ones (spinning disks): a night's few
# thousand customers then get hash joins over whole history tables (1M: 2.7 s for the day's 16.7k new
# customers) where their indexes take 0.7 s. 1.1 is the usual figure for SSDs and cached databases.
PG_RANDOM_PAGE_COST = "1.1"
# SQLite: from this many customers aggregated from the history, a worker process aggregates them while this
# one derives the others (below it, starting the process costs more than it saves).
SQLITE_APART_FROM = 5_000


def _plan_for_the_night(conn: Connection) -> None:
    """PostgreSQL settings of a segments transaction (SET LOCAL: they end with it)."""
    if conn.dialect.name == "postgresql":
        # The aggregation hashes and sorts every customer: 4 MB (the default) spills them to disk.
        conn.exec_driver_sql(f"SET LOCAL work_mem = '{PG_WORK_MEM}'")
        conn.exec_driver_sql(f"SET LOCAL random_page_cost = {PG_RANDOM_PAGE_COST}")


COMPUTING_MODES = (RunMode.FULL.value, RunMode.INCREMENTAL.value, RunMode.REWRITE.value)


@dataclass
class SegmentRun:
    """What one segments run did for a day."""

    as_of: date
    mode: RunMode
    gate_open: bool
    gate_reasons: list[str] = field(default_factory=list)
    customers_computed: int = 0
    customers_aggregated: int | None = None  # incremental: of the computed, those aggregated again from the history
    customers_changed: int = 0
    events: int = 0
    differences: int | None = None
    difference_examples: list[int] = field(default_factory=list)
    baseline: bool = False  # the segments' first day: memberships written, no entries recorded
    intervals: int = 0  # membership rows written (opened and closed)


def last_computed_day(conn: Connection) -> date | None:
    """The newest day whose segments are stored (recheck runs do not count)."""
    return conn.execute(select(func.max(segment_runs.c.as_of)).where(segment_runs.c.mode.in_(COMPUTING_MODES))).scalar()


def plan_run(conn: Connection, as_of: date, *, full: bool, rewrite: bool) -> RunMode:
    """How to compute `as_of`: incremental after yesterday's run, full when asked or after a gap, recheck for a past day."""
    last = last_computed_day(conn)
    if last is not None and as_of <= last:
        return RunMode.REWRITE if rewrite else RunMode.RECHECK
    if rewrite or full or last is None or last != as_of - timedelta(days=1):
        return RunMode.FULL
    if conn.execute(select(segment_aggregates.c.customer_id).limit(1)).first() is None:
        return RunMode.FULL
    return RunMode.INCREMENTAL


def _frames(conn: Connection, stmt: Select, chunk_rows: int) -> Iterator[pd.DataFrame]:
    """The statement's rows in frames of at most `chunk_rows` (server-side cursor on PostgreSQL)."""
    result = conn.execute(stmt.execution_options(stream_results=True, yield_per=chunk_rows))
    columns = list(result.keys())
    for rows in result.partitions(chunk_rows):
        values = list(zip(*rows, strict=False))
        yield pd.DataFrame({c: pd.Series(v, dtype=object) for c, v in zip(columns, values, strict=False)})


def _stored_memberships(conn: Connection, ids: np.ndarray, on: date | None, table: Table | None = None) -> pd.DataFrame:
    """Open memberships (or those valid on `on`) of the customers `ids` (looked up in `table`, else by id range)."""
    m = segment_memberships.c
    condition = m.valid_to.is_(None) if on is None else valid_on(on)
    # valid_from raw (text on SQLite): SQLAlchemy's per-row date parsing was most of this read.
    valid_from = type_coerce(m.valid_from, String).label("valid_from")
    stmt = select(m.customer_id, m.kind, m.segment, valid_from, m.rule).where(condition)
    if table is not None:
        stmt = stmt.where(m.customer_id.in_(select(table.c.customer_id)))
        # SQLite could walk another index over every membership of the base instead of the customers' keys.
        primary_key = f"sqlite_autoindex_{segment_memberships.name}_1"
        stmt = sqlite_table_hint(stmt, segment_memberships.name, f"INDEXED BY {primary_key}")
    elif len(ids):
        stmt = stmt.where(m.customer_id >= int(ids.min()), m.customer_id <= int(ids.max()))
    # Typed by column (COPY and Arrow on PostgreSQL): no Python object per value.
    frame = read_typed(conn, with_sqlite_hint(conn, stmt))
    frame["customer_id"] = frame["customer_id"].to_numpy("int64")
    return frame[frame["customer_id"].isin(ids)]


def _aggregate_rows(agg: pd.DataFrame, long: pd.DataFrame, as_of: date, config: SegmentsConfig) -> pd.DataFrame:
    """The `segment_aggregates` rows of a chunk, with the hashes of their inputs and of their memberships."""
    out = agg[list(AGGREGATE_COLUMNS)].copy()
    out["recheck_on"] = recheck_on(agg, as_of, config).astype("datetime64[s]")
    out["inputs_hash"] = (
        pd.util.hash_pandas_object(out.drop(columns="customer_id"), index=False).to_numpy().view("int64")
    )
    row_hashes = pd.util.hash_pandas_object(long[["kind", "segment", "rule"]], index=False).to_numpy()
    # The sum of the rows' hashes (mod 2**64): the same whatever the order of a customer's memberships.
    per_customer = pd.Series(row_hashes, dtype="uint64").groupby(long["customer_id"].to_numpy()).sum()
    out["segments_hash"] = (
        per_customer.reindex(out["customer_id"].to_numpy()).fillna(0).astype("uint64").to_numpy().view("int64")
    )
    out["computed_on"] = pd.Timestamp(as_of)
    return out


def _stored_hashes(conn: Connection, ids: np.ndarray, table: Table | None) -> pd.DataFrame:
    g = segment_aggregates.c
    stmt = select(g.customer_id, g.inputs_hash, g.segments_hash)
    if table is not None:
        stmt = stmt.where(g.customer_id.in_(select(table.c.customer_id)))
    else:
        stmt = stmt.where(g.customer_id >= int(ids.min()), g.customer_id <= int(ids.max()))
    return _hash_columns(read_typed(conn, stmt))


def _hash_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """The stored hashes of rows read from `segment_aggregates`, named as `_store` compares them."""
    return pd.DataFrame(
        {
            "customer_id": frame["customer_id"].to_numpy("int64"),
            "stored_inputs": frame["inputs_hash"].to_numpy("int64"),
            "stored_segments": frame["segments_hash"].to_numpy("int64"),
        }
    )


def _derive(agg: pd.DataFrame, as_of: date, config: SegmentsConfig) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The memberships (long form) and the `segment_aggregates` rows of typed aggregates."""
    long = memberships(derive_segments(agg, as_of, config), config)
    return long, _aggregate_rows(agg, long, as_of, config)


def _apply(
    conn: Connection,
    as_of: date,
    config: SegmentsConfig,
    aggregates: Iterable[pd.DataFrame],
    run: SegmentRun,
    ids: Table | None,
) -> pd.DataFrame:
    """Derive the customers of `aggregates` (typed frames), diff those whose memberships changed, write the changes.

    Returns the events (none on a baseline run). `ids` holds the customers' ids (else their stored rows are
    found by id range).
    """
    derived = (_derive(agg, as_of, config) for agg in aggregates)
    return _store(conn, as_of, derived, run, ids)


@dataclass
class _Changes:
    """Rows a set of re-derived customers changes, to write with `_write_changes` (None: nothing of that kind)."""

    aggregates: pd.DataFrame | None = None  # `segment_aggregates` rows whose inputs or memberships changed
    computed: int = 0  # customers re-derived
    intervals: pd.DataFrame | None = None  # closed (valid_to set) and opened today
    events: pd.DataFrame | None = None  # none on a baseline run
    changed: int = 0  # customers whose memberships moved


def _changes(
    conn: Connection, as_of: date, long: pd.DataFrame, rows: pd.DataFrame, stored: pd.DataFrame, *, baseline: bool
) -> Iterator[_Changes]:
    """Diff derived customers (`_derive`'s pair) against what is stored, writing nothing: first the aggregate
    rows to rewrite (written while the memberships are read and diffed, when this runs apart), then the
    memberships' changes.

    `stored` holds their stored hashes (`_hash_columns`). Stored hashes spare the work where nothing
    moved: memberships are read and diffed only for customers whose membership hash changed,
    aggregate rows rewritten only when their inputs did.
    """
    customer_ids = rows["customer_id"].to_numpy()
    both = rows[["customer_id", "inputs_hash", "segments_hash"]].merge(stored, on="customer_id", how="left")
    known = both["stored_segments"].notna().to_numpy()
    segments_moved = ~known | (both["segments_hash"] != both["stored_segments"]).to_numpy()
    inputs_moved = segments_moved | (both["inputs_hash"] != both["stored_inputs"]).to_numpy()
    yield _Changes(aggregates=rows[inputs_moved], computed=len(rows))
    candidates = customer_ids[segments_moved]
    # Only the moved customers' memberships are read (half of a night's re-derived ones, or fewer).
    moved = id_table(conn, "_segment_moved")
    fill_ids(conn, moved, candidates)
    current = _stored_memberships(conn, candidates, None, moved)
    moved.drop(conn)
    intervals, events, changed = diff_memberships(current, long[long["customer_id"].isin(candidates)], as_of)
    # In key order: each index page is visited once, in order, instead of at random.
    intervals = intervals.sort_values(["customer_id", "kind", "segment"], ignore_index=True)
    events = events.sort_values(["kind", "segment", "customer_id"], ignore_index=True)
    yield _Changes(intervals=intervals, events=None if baseline else events, changed=len(changed))


def _write_changes(conn: Connection, changes: Iterable[_Changes], run: SegmentRun) -> pd.DataFrame:
    """Write what `_changes` found and count it in `run`; return the events written."""
    written = []
    for change in changes:
        if change.aggregates is not None:
            write_frame(conn, segment_aggregates, change.aggregates, on_conflict="update")
            run.customers_computed += change.computed
        if change.intervals is not None:
            intervals = change.intervals
            # Intervals opened today and the day's events are new rows (a computed day is never computed
            # again without a rewind): plain inserts (COPY on PostgreSQL); closed intervals update valid_to.
            closing = intervals["valid_to"].notna().to_numpy()
            write_frame(conn, segment_memberships, intervals[closing], on_conflict="update")
            write_frame(conn, segment_memberships, intervals[~closing], on_conflict="error")
            run.intervals += len(intervals)
            run.customers_changed += change.changed
        if change.events is not None and len(change.events):
            write_frame(conn, segment_events, change.events, on_conflict="error")
            run.events += len(change.events)
            written.append(change.events)
    return pd.concat(written, ignore_index=True) if written else pd.DataFrame()


def _store(
    conn: Connection,
    as_of: date,
    derived: Iterable[tuple[pd.DataFrame, pd.DataFrame]],
    run: SegmentRun,
    ids: Table | None,
) -> pd.DataFrame:
    """Diff the derived customers (`_derive`'s pairs, chunk by chunk), write the changes; return the events."""
    events = []
    for long, rows in derived:
        stored = _stored_hashes(conn, rows["customer_id"].to_numpy(), ids)
        events.append(_write_changes(conn, _changes(conn, as_of, long, rows, stored, baseline=run.baseline), run))
    events = [e for e in events if len(e)]
    return pd.concat(events, ignore_index=True) if events else pd.DataFrame()


def _typed(frames: Iterable[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    for raw in frames:
        yield typed_aggregates(raw)


def _read(conn: Connection, stmt: Select) -> pd.DataFrame:
    """A (small) statement's rows as a typed frame (COPY and Arrow on PostgreSQL)."""
    return read_typed(conn, with_sqlite_hint(conn, stmt))


def _recomputed(conn: Connection, as_of: date, config: SegmentsConfig, ids: np.ndarray) -> Iterator[_Changes]:
    """The customers aggregated again from the history tonight: aggregated, derived and diffed, nothing written.

    Customers first seen today come first (all of their memberships open: the night's connection
    writes them while the others are aggregated). Logins, deliveries and reactions of those with a
    stored row are their stored counts plus the day's facts. Tonight's other customers are disjoint
    from these, so what the night writes for them does not change what is read here.
    """
    window = config.rfm.window_days
    table = id_table(conn, "_segment_recomputed")
    fill_ids(conn, table, ids)
    g = segment_aggregates.c
    stored = exists().where(g.customer_id == table.c.customer_id)
    known_ids = _read(conn, select(table.c.customer_id).where(stored))["customer_id"].to_numpy("int64")
    new_ids = ids[~np.isin(ids, known_ids)]
    if len(new_ids):
        # No stored counts of their logins and messages: all from the history.
        fill_ids(conn, table, new_ids)
        new = typed_aggregates(_read(conn, aggregate_statement(as_of, window, table).order_by("customer_id")))
        long, rows = _derive(new, as_of, config)
        nothing = {name: np.array([], dtype="int64") for name in ("customer_id", "inputs_hash", "segments_hash")}
        yield from _changes(conn, as_of, long, rows, _hash_columns(pd.DataFrame(nothing)), baseline=False)
    if len(known_ids):
        fill_ids(conn, table, known_ids)
        stmt = aggregate_statement(as_of, window, table, facts=False).order_by("customer_id")
        known = _read(conn, stmt)
        stored = _read(conn, stored_aggregates(table, ("customer_id", *FACT_COLUMNS)))
        deltas = {name: _read(conn, q) for name, q in fact_deltas(as_of, window, table).items()}
        facts = typed_aggregates(stored, ("customer_id", *FACT_COLUMNS))
        facts = add_fact_deltas(facts, deltas["messages"], deltas["logins"], deltas["interest"])
        known["customer_id"] = known["customer_id"].to_numpy("int64")
        known = typed_aggregates(known.merge(facts, on="customer_id", how="left"))
        long, rows = _derive(known, as_of, config)
        yield from _changes(conn, as_of, long, rows, _hash_columns(stored), baseline=False)
    table.drop(conn)


def _recomputed_apart(engine: Engine | str, as_of: date, config: SegmentsConfig, ids: np.ndarray) -> Iterator[_Changes]:
    """`_recomputed` on a connection of its own (`engine`, or its URL in a worker process).

    It runs while the night's connection derives and writes the other customers: on PostgreSQL the
    server aggregates meanwhile, on SQLite a worker process derives on the other core. The night's
    transaction has not committed, and writes only other customers' rows: both read the same.
    """
    with engine_of(engine).connect() as conn:
        _plan_for_the_night(conn)
        yield from _recomputed(conn, as_of, config, ids)
        conn.rollback()


def _incremental(
    conn: Connection, as_of: date, config: SegmentsConfig, chunk_rows: int, run: SegmentRun
) -> pd.DataFrame:
    """The incremental night: work in proportion to the day's rows, not to the history or the base.

    Customers with a new version (customer, contact, application, loan, order), an unsubscribe or
    an activity leaving the RFM window are aggregated again from the history; those with only new
    facts (deliveries, reactions, logins, interest payments) or a threshold date due get their
    stored aggregates plus the day's facts (`fact_deltas`), which is the same row without reading
    their history. The two sets are disjoint: the first is aggregated, derived and diffed apart
    (`_recomputed`: a second connection on PostgreSQL, a worker process on SQLite) while this
    connection derives, diffs and writes the second; then this connection writes the first's
    changes. Every write is in this connection's transaction.
    """
    window = config.rfm.window_days
    recompute = customers_to_recompute(as_of, window).subquery("recompute")
    recomputed_ids = _read(conn, select(recompute.c.customer_id))["customer_id"].to_numpy("int64")
    run.customers_aggregated = len(recomputed_ids)
    ids = id_table(conn, "_segment_ids")
    events = []
    with ExitStack() as stack:
        recomputed: Iterable[_Changes] | None = None  # its changes, as they come
        if len(recomputed_ids) > chunk_rows:
            # A night larger than a chunk: streamed on this connection, each chunk with its own reads.
            fill_ids(conn, ids, recomputed_ids)
            stmt = aggregate_statement(as_of, window, ids).order_by("customer_id")
            events.append(_apply(conn, as_of, config, _typed(_frames(conn, stmt, chunk_rows)), run, ids))
        elif conn.dialect.name == "postgresql":
            # The server aggregates on a second connection meanwhile (1M: 15.0-18.7 s -> 12.1-14.3 s).
            recomputed = stack.enter_context(
                ahead_on_thread(_recomputed_apart, conn.engine, as_of, config, recomputed_ids, name="segments")
            )
        elif reads_in_process(conn.engine) and len(recomputed_ids) >= SQLITE_APART_FROM:
            # A worker process aggregates, derives and diffs them on the other core (a thread would share this
            # process's interpreter lock); this process writes what it found, in this transaction.
            recomputed = stack.enter_context(
                read_ahead(
                    _recomputed_apart,
                    engine_url(conn.engine),
                    as_of,
                    config,
                    recomputed_ids,
                    in_process=True,
                    depth=4,  # all of its items: it never waits for this process to take one
                    name="segments aggregation",
                    preload=False,  # one worker a night: it imports while this process reads
                )
            )
        elif len(recomputed_ids):
            recomputed = _recomputed(conn, as_of, config, recomputed_ids)  # a generator: runs when written
        deltas = {name: _read(conn, q) for name, q in fact_deltas(as_of, window).items()}
        due = _read(conn, due_for_recheck(as_of))["customer_id"].to_numpy("int64")
        touched = np.unique(np.concatenate([*(d["customer_id"].to_numpy("int64") for d in deltas.values()), due]))
        touched = touched[~np.isin(touched, recomputed_ids)]
        if len(touched):
            # Their stored rows plus the day's facts: derived and written while the others are being aggregated.
            fill_ids(conn, ids, touched)
            stored = _read(conn, stored_aggregates(ids))
            own = add_fact_deltas(typed_aggregates(stored), deltas["messages"], deltas["logins"], deltas["interest"])
            long, rows = _derive(own, as_of, config)
            changes = _changes(conn, as_of, long, rows, _hash_columns(stored), baseline=run.baseline)
            events.append(_write_changes(conn, changes, run))
        if recomputed is not None:
            events.append(_write_changes(conn, recomputed, run))
    ids.drop(conn)
    events = [e for e in events if len(e)]
    return pd.concat(events, ignore_index=True) if events else pd.DataFrame()


def _recheck(conn: Connection, as_of: date, config: SegmentsConfig, chunk_rows: int, run: SegmentRun) -> None:
    """Recompute a stored day from the history as of it and count the customers whose memberships differ."""
    key = ["customer_id", "kind", "segment"]
    differing: list[np.ndarray] = []
    seen: list[np.ndarray] = []
    stmt = aggregate_statement(as_of, config.rfm.window_days).order_by("customer_id")
    for raw in _frames(conn, stmt, chunk_rows):
        agg = typed_aggregates(raw)
        ids = agg["customer_id"].to_numpy()
        long = memberships(derive_segments(agg, as_of, config), config)[key]
        stored = _stored_memberships(conn, ids, as_of)[key]
        merged = long.merge(stored, on=key, how="outer", indicator=True)
        differing.append(merged.loc[merged["_merge"] != "both", "customer_id"].unique())
        seen.append(ids)
        run.customers_computed += len(agg)
    m = segment_memberships.c
    stored_ids = {r[0] for r in conn.execute(select(m.customer_id).where(valid_on(as_of)).distinct())}
    computed_ids = set(np.concatenate(seen).tolist()) if seen else set()
    extra = stored_ids - computed_ids  # stored that night, unknown now
    diff = set(np.concatenate(differing).tolist()) if differing else set()
    diff |= extra
    run.differences = len(diff)
    run.difference_examples = sorted(diff)[:10]


def _rewind(conn: Connection, as_of: date) -> None:
    """Forget the stored history from `as_of` on: intervals started then are removed, those ended then reopened."""
    m = segment_memberships.c
    conn.execute(delete(segment_memberships).where(m.valid_from >= as_of))
    conn.execute(update(segment_memberships).where(m.valid_to >= as_of).values(valid_to=None))
    conn.execute(delete(segment_events).where(segment_events.c.as_of >= as_of))
    conn.execute(delete(segment_sizes).where(segment_sizes.c.as_of >= as_of))
    conn.execute(delete(segment_runs).where(segment_runs.c.as_of >= as_of))
    conn.execute(delete(segment_aggregates))


def _store_sizes(conn: Connection, as_of: date, events: pd.DataFrame) -> None:
    """Members per (kind, segment) at the end of the day, with the day's entries and exits."""
    s = segment_sizes.c
    previous = pd.DataFrame(
        conn.execute(select(s.kind, s.segment, s.customers).where(s.as_of == as_of - timedelta(days=1))).all(),
        columns=["kind", "segment", "customers"],
    )
    if len(events):
        flows = events.groupby(["kind", "segment", "change"]).size().unstack("change", fill_value=0)
    else:  # a night without a single move
        empty = pd.MultiIndex.from_arrays([[], []], names=["kind", "segment"])
        flows = pd.DataFrame({"entered": [], "left": []}, index=empty, dtype="int64")
    flows = flows.reindex(columns=["entered", "left"], fill_value=0)
    # Yesterday's sizes exist only if yesterday was computed, and then the open memberships this run
    # diffed against are yesterday's (a rewrite rewinds them to it): its sizes plus today's moves are
    # exact, full or incremental, without counting every open membership of the base.
    if len(previous):
        sizes = previous.set_index(["kind", "segment"])["customers"]
        sizes = sizes.add(flows["entered"], fill_value=0).sub(flows["left"], fill_value=0)
    else:
        m = segment_memberships.c
        counted = conn.execute(
            select(m.kind, m.segment, func.count()).where(m.valid_to.is_(None)).group_by(m.kind, m.segment)
        ).all()
        sizes = pd.Series({(k, g): n for k, g, n in counted}, dtype="int64")
        sizes.index.names = ["kind", "segment"]
    frame = pd.DataFrame({"customers": sizes}).join(flows, how="outer").fillna(0).reset_index()
    frame.columns = ["kind", "segment", "customers", "entered", "left"]
    frame = frame[(frame["customers"] > 0) | (frame["entered"] > 0) | (frame["left"] > 0)]
    frame = frame.assign(as_of=pd.Timestamp(as_of)).astype({"customers": "int64", "entered": "int64", "left": "int64"})
    conn.execute(delete(segment_sizes).where(s.as_of == as_of))
    write_frame(conn, segment_sizes, frame, on_conflict="error")


def refresh_segments(
    engine: Engine,
    as_of: date,
    config: SegmentsConfig,
    *,
    full: bool = False,
    rewrite: bool = False,
    chunk_rows: int = 200_000,
) -> SegmentRun:
    """Compute the segments of `as_of` and store them, in one transaction.

    After yesterday's run: incremental (customers whose inputs changed today or whose
    `recheck_on` came). `full`, the first run or a gap: every known customer. A day already
    stored: recheck (recompute and count differences, nothing written) or, with `rewrite`, the
    history from that day on is replaced by a full recompute (re-run the following days after).
    """
    with engine.begin() as conn:
        _plan_for_the_night(conn)
        gate = read_send_gate(conn, as_of)
        mode = plan_run(conn, as_of, full=full, rewrite=rewrite)
        run = SegmentRun(as_of=as_of, mode=mode, gate_open=gate.is_open, gate_reasons=gate.reasons)
        if mode == RunMode.RECHECK:
            _recheck(conn, as_of, config, chunk_rows, run)
        else:
            if mode == RunMode.REWRITE:
                _rewind(conn, as_of)
            # The segments' first day (nothing stored before it, also when rewritten): everybody's memberships
            # start there, but nobody *entered* a segment that day. No entries are recorded, or every campaign
            # on "entered pre-churn today" would target the whole pre-churn base on the launch night.
            run.baseline = last_computed_day(conn) is None
            if mode == RunMode.INCREMENTAL:
                events = _incremental(conn, as_of, config, chunk_rows, run)
            else:
                stmt = aggregate_statement(as_of, config.rfm.window_days).order_by("customer_id")
                events = _apply(conn, as_of, config, _typed(_frames(conn, stmt, chunk_rows)), run, None)
            _store_sizes(conn, as_of, events)
        conn.execute(
            insert(segment_runs).values(
                as_of=as_of,
                mode=mode.value,
                customers_computed=run.customers_computed,
                customers_changed=run.customers_changed,
                events=run.events,
                gate_open=run.gate_open,
                differences=run.differences,
            )
        )
    if mode in (RunMode.FULL, RunMode.REWRITE):
        # A first run writes every membership and aggregate: the next nights' lookups need the planner
        # to know it (an incremental night changes a few percent: autovacuum's business).
        written = {segment_memberships.name: run.intervals, segment_events.name: run.events}
        refresh_statistics(engine, {**written, segment_aggregates.name: run.customers_computed})
    return run


def read_day(conn: Connection, as_of: date) -> dict[str, pd.DataFrame]:
    """What the reports show for a day: sizes of the day and the day before, the lifecycle events, the run."""
    s = segment_sizes.c
    sizes = pd.DataFrame(
        conn.execute(
            select(s.as_of, s.kind, s.segment, s.customers, s.entered, s.left).where(
                s.as_of.in_([as_of, as_of - timedelta(days=1)])
            )
        ).all(),
        columns=["as_of", "kind", "segment", "customers", "entered", "left"],
    )
    e = segment_events.c
    lifecycle = pd.DataFrame(
        conn.execute(
            select(e.customer_id, e.kind, e.segment, e.change).where(
                e.as_of == as_of, e.kind.in_([SegmentKind.LIFECYCLE.value, SegmentKind.LIFECYCLE_SUBSTATE.value])
            )
        ).all(),
        columns=["customer_id", "kind", "segment", "change"],
    )
    return {"sizes": sizes, "lifecycle_events": lifecycle}


__all__ = [
    "MEMBERSHIP_COLUMNS",
    "SegmentRun",
    "last_computed_day",
    "plan_run",
    "read_day",
    "refresh_segments",
]


def write_report(reports_url: str, key: str, data: bytes) -> str:
    """Write a report file to the reports location (folder or S3); return its address for a link."""
    from pathlib import Path

    from crm.core.storage import open_store

    open_store(reports_url).write_bytes(key, data)
    if reports_url.startswith("s3://"):
        return f"{reports_url.rstrip('/')}/{key}"
    return str(Path(reports_url.removeprefix("file://")).expanduser().resolve() / key)
