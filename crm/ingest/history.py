"""Warehouse history: every version of the mutable records, and the rows as they were at the end of a day.

`stg_*` tables hold the latest version of each row. Mutable source records (customers,
contacts and consent, applications, loans, orders) also keep every version in `hist_*`, valid
from its `updated_at` until the next version's (a slowly changing dimension of type 2),
written in the same transaction as the upsert. `rows_as_of` is the one way later capabilities
(segments, churn features, campaign consent, loyalty) read the warehouse for a business day,
so re-running a past day after later loads gives what that night saw.
"""

from __future__ import annotations

import itertools
from datetime import date

import pandas as pd
from sqlalchemy import (
    Column,
    Connection,
    Date,
    MetaData,
    Select,
    Table,
    and_,
    exists,
    func,
    literal,
    literal_column,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects import sqlite

from crm.core.contracts import ENTITIES, Entity
from crm.core.dates import end_of
from crm.core.db import Written, write_frame
from models.ingest import history, staging

_temp_names = itertools.count()


def _entity(entity: Entity | str) -> Entity:
    return ENTITIES[entity] if isinstance(entity, str) else entity


def rows_as_of(entity: Entity | str, as_of: date) -> Select:
    """The rows of `entity` as they stood at the end of `as_of`, with the contract's columns.

    Mutable records: the version valid at the end of the day (one per key; keys unknown by then
    are absent). Facts (payments, status changes, events): those known by the end of the day.
    """
    entity = _entity(entity)
    end = end_of(as_of)
    if entity.versioned:
        h = history[entity.name]
        return select(*[h.c[c] for c in entity.column_names]).where(
            h.c.valid_from < end, or_(h.c.valid_to.is_(None), h.c.valid_to >= end)
        )
    table = staging[entity.name]
    return select(*[table.c[c] for c in entity.column_names]).where(table.c[entity.known_at_column] < end)


def versions_changed_on(entity: Entity | str, as_of: date) -> Select:
    """Versions of a mutable entity that became valid during `as_of` (the day's changes)."""
    entity = _entity(entity)
    h = history[entity.name]
    end = end_of(as_of)
    start = end - pd.Timedelta(days=1).to_pytimedelta()
    return select(*[h.c[c] for c in entity.column_names]).where(h.c.valid_from >= start, h.c.valid_from < end)


def record_versions(
    conn: Connection,
    entity: Entity,
    rows: pd.DataFrame,
    as_of: date,
    *,
    fresh: bool = False,
    staged: Written | None = None,
) -> int:
    """Add the versions in `rows` (typed, one per key) to the entity's history; close the versions they follow.

    A version already stored (same key and `updated_at`) is kept as it is, so re-runs and
    pulled-ahead parents add nothing. Returns how many versions were new. `fresh`: the versions
    are most likely new (an initial load; `write_frame`). `staged`: how `rows` were just written to
    the entity's `stg_*` table (`write_rows`); when every key went in as new, no key has a stored
    version (a key has versions only once it is in `stg_*`, in the same transaction, and no `stg_*`
    row is ever deleted): there is nothing to close, and on SQLite the versions are copied from
    those `stg_*` rows inside the engine instead of being converted and bound again.
    """
    if rows.empty or not entity.versioned:
        return 0
    table = history[entity.name]
    first_versions = staged is not None and staged.all_new and staged.rows == len(rows)
    if first_versions and staged.rowids is not None:
        return _copy_staged_versions(conn, entity, table, staged.rowids, as_of)
    frame = rows[entity.column_names].assign(valid_from=rows[entity.updated_column], ingested_on=pd.Timestamp(as_of))
    added = write_frame(conn, table, frame, on_conflict="ignore", fresh=fresh or first_versions)
    if added and not first_versions:
        _close_versions(conn, entity, table, rows[list(entity.key)].drop_duplicates())
    return added


def _copy_staged_versions(conn: Connection, entity: Entity, table: Table, rowids: tuple[int, int], as_of: date) -> int:
    """SQLite: the `stg_*` rows with `low < rowid <= high` (a batch just inserted) as first versions in `hist_*`."""
    staged = staging[entity.name]
    rowid = literal_column("rowid")
    columns = [staged.c[c] for c in entity.column_names]
    rows = select(*columns, staged.c[entity.updated_column], literal(as_of, Date)).where(
        rowid > rowids[0], rowid <= rowids[1]
    )
    stmt = (
        sqlite.insert(table)
        .from_select([*entity.column_names, "valid_from", "ingested_on"], rows)
        .on_conflict_do_nothing(index_elements=[*entity.key, "valid_from"])
    )
    return max(conn.execute(stmt).rowcount, 0)


def _close_versions(conn: Connection, entity: Entity, table: Table, keys: pd.DataFrame) -> None:
    """Set each version's `valid_to` to the next version's `valid_from`, for the keys given (set-based)."""
    temp = Table(
        f"_history_keys_{next(_temp_names)}",
        MetaData(),
        *[Column(k, table.c[k].type) for k in entity.key],
        prefixes=["TEMPORARY"],
    )
    temp.create(conn)
    try:
        write_frame(conn, temp, keys, on_conflict="error")
        later = table.alias("later")
        same_key = and_(*[later.c[k] == table.c[k] for k in entity.key])
        next_from = select(func.min(later.c.valid_from)).where(same_key, later.c.valid_from > table.c.valid_from)
        in_batch = (
            table.c[entity.key[0]].in_(select(temp.c[entity.key[0]]))
            if len(entity.key) == 1
            else tuple_(*[table.c[k] for k in entity.key]).in_(select(*[temp.c[k] for k in entity.key]))
        )
        # Only keys with more than one version can change: a first version stays open.
        has_other = exists(select(later.c.valid_from).where(same_key, later.c.valid_from != table.c.valid_from))
        conn.execute(update(table).where(in_batch, has_other).values(valid_to=next_from.scalar_subquery()))
    finally:
        temp.drop(conn)
