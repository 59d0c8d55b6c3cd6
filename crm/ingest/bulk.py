"""The initial load of a company's history: a first-class path, not a very long night.

Loading into tables without their secondary indexes and building the indexes once at the end is
how every engine's bulk loaders work: one sort per index instead of a B-tree insert per row (on
SQLite with 20M rows the index pages stop fitting in the cache and each insert becomes random
IO). The first ingest of an empty warehouse drops the secondary indexes of the `stg_*` and
`hist_*` tables; every ingest ends by building whatever index is missing, so an initial load
killed half way is finished, indexes included, by the next run (which loads the rest as fast).
Keys (primary keys, unique constraints) are never dropped: they keep re-runs idempotent.

While indexes are set aside (`loading_in_bulk`) the rows' keys are most likely new, and the
writes say so (`write_frame(..., fresh=True)`): PostgreSQL copies them straight into `stg_*` and
`hist_*` instead of through a temporary table and `INSERT ... ON CONFLICT`, falling back to that
path, from a savepoint, for a batch whose keys were there after all (a resumed load, a key
repeated across files). Outcomes are the same; only the work differs.

On PostgreSQL the indexes of an entity's tables are built as soon as the entity is loaded, on a
second connection (`build_missing_indexes(engine, tables=entity_tables(name))`), while the client
validates the next entity: the server's sort overlaps the client's work instead of adding to it at
the end. A build locks only its own table (a parent pulled ahead meanwhile waits for it); a build
killed half way is rolled back, and the index, missing, is built by the next run like the others.
SQLite has one writer per database, so there a build would only stall the load: it builds at the end.
"""

from __future__ import annotations

import logging
from collections.abc import Collection

from sqlalchemy import Engine, Index, exists, inspect, select

from crm.core.db import analyze
from models.ingest import history, ingest_batches, landing_files, staging
from models.warehouse import metadata  # every capability's tables: some declare indexes on stg_/hist_ tables

log = logging.getLogger(__name__)


def secondary_indexes() -> list[Index]:
    """The non-unique indexes of the tables ingestion writes (`stg_*`, `hist_*`), as the models declare them."""
    names = {t.name for t in (*staging.values(), *history.values())}
    tables = [t for t in metadata.sorted_tables if t.name in names]
    return sorted((i for t in tables for i in t.indexes if not i.unique), key=lambda i: str(i.name))


def is_initial_load(engine: Engine) -> bool:
    """Whether nothing has been ingested yet: no batch from the source, no landing file on record."""
    with engine.connect() as conn:
        loaded = exists(select(ingest_batches.c.as_of)) | exists(select(landing_files.c.file_key))
        return not conn.execute(select(loaded)).scalar()


def entity_tables(entity_name: str) -> set[str]:
    """The warehouse tables an entity's load writes: its `stg_*` table and, if it keeps versions, its `hist_*`."""
    return {t.name for t in (staging[entity_name], history.get(entity_name)) if t is not None}


def builds_indexes_alongside(engine: Engine) -> bool:
    """Whether a loaded entity's indexes are built on a second connection while the load goes on (PostgreSQL)."""
    return engine.dialect.name == "postgresql"


def missing_indexes(engine: Engine) -> list[Index]:
    """Secondary indexes the models declare that the warehouse lacks."""
    declared = secondary_indexes()
    tables = sorted({i.table.name for i in declared})
    found = inspect(engine).get_multi_indexes(filter_names=tables)  # one catalogue query on PostgreSQL
    present = {(table, index["name"]) for (_, table), indexes in found.items() for index in indexes}
    return [i for i in declared if (i.table.name, i.name) not in present]


def loading_in_bulk(engine: Engine) -> bool:
    """Whether secondary indexes are set aside: an initial load (or one killed half way) is under way, so the
    rows a load writes most likely have new keys (`write_frame(..., fresh=True)`)."""
    return bool(missing_indexes(engine))


def drop_secondary_indexes(engine: Engine) -> list[str]:
    """Drop the secondary indexes of `stg_*` and `hist_*` (before an initial load); return their names."""
    missing = missing_indexes(engine)
    dropped = [i for i in secondary_indexes() if i not in missing]
    with engine.begin() as conn:
        for index in dropped:
            index.drop(conn)
    return [str(i.name) for i in dropped]


# Memory for sorting an index's keys while PostgreSQL builds it (`maintenance_work_mem`, whose default
# of 64 MB spills a 20M-row history's sorts to disk). No gain measured at 2.6M rows, where they fit
# either way. (A 256 MB page cache for SQLite's builds made them slower at 2.6M rows: not used.)
INDEX_BUILD_MEMORY_MB = 256
# SQLite's sorter may use helper threads for an index build (`PRAGMA threads`): builds run at the end of an
# initial load, when the reading process has finished and a core is free (-12% at 8.5M rows, measured).
SQLITE_INDEX_BUILD_THREADS = 2


def build_missing_indexes(engine: Engine, tables: Collection[str] | None = None) -> list[str]:
    """Create every secondary index that is missing (after an initial load, or one killed half way); with
    `tables`, only those of these tables (an entity just loaded, `entity_tables`)."""
    built = []
    for index in missing_indexes(engine):
        if tables is not None and index.table.name not in tables:
            continue
        with engine.begin() as conn:  # one transaction per index: a kill keeps those already built
            if conn.dialect.name == "postgresql":
                conn.exec_driver_sql(f"SET LOCAL maintenance_work_mem = '{INDEX_BUILD_MEMORY_MB}MB'")
                index.create(conn)
            else:
                conn.exec_driver_sql(f"PRAGMA threads = {SQLITE_INDEX_BUILD_THREADS}")
                try:
                    index.create(conn)
                finally:  # the pooled connection's other statements keep the default
                    conn.exec_driver_sql("PRAGMA threads = 0")
        built.append(str(index.name))
    return built


def measure_tables(engine: Engine, tables: Collection[str]) -> list[str]:
    """PostgreSQL: `ANALYZE` the tables of an entity just loaded (and indexed), alongside the load like its index
    builds, so the end of an initial load measures only what was loaded last; return their names. SQLite: nothing.

    The ingest's final `refresh_statistics` leaves the tables measured here out (`rows_written(..., measured=)`):
    after their measure only pulled-ahead parents can still be written to them, a few rows.
    """
    if engine.dialect.name != "postgresql":
        return []
    names = sorted(tables)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for name in names:
            analyze(conn, name)
    return names


def rows_written(counts: list[dict], measured: Collection[str] = ()) -> dict[str, int]:
    """Rows a night's ingest wrote per warehouse table (`stg_*`, and `hist_*` for versioned entities), from its counts;
    without the tables `measured` alongside the load (`measure_tables`)."""
    written: dict[str, int] = {}
    for row in counts:
        loaded = int(row.get("rows_loaded") or 0)
        name = row.get("entity")
        if not loaded or name not in staging:
            continue
        for table in (staging[name], history.get(name)):
            if table is not None and table.name not in measured:
                written[table.name] = written.get(table.name, 0) + loaded
    return written
