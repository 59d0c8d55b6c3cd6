"""The initial load of a company's history: a first-class path, not a very long night.

Loading into tables without their secondary indexes and building the indexes once at the end is
how every engine's bulk loaders work: one sort per index instead of a B-tree insert per row (on
SQLite with 20M rows the index pages stop fitting in the cache and each insert becomes random
IO). The first ingest of an empty warehouse drops the secondary indexes of the `stg_*` and
`hist_*` tables; every ingest ends by building whatever index is missing, so an initial load
killed half way is finished, indexes included, by the next run (which loads the rest as fast).
Keys (primary keys, unique constraints) are never dropped: they keep re-runs idempotent.
"""

from __future__ import annotations

import logging

from sqlalchemy import Engine, Index, exists, inspect, select

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


def missing_indexes(engine: Engine) -> list[Index]:
    """Secondary indexes the models declare that the warehouse lacks."""
    inspector = inspect(engine)
    present: dict[str, set[str]] = {}
    out = []
    for index in secondary_indexes():
        table = index.table.name
        if table not in present:
            present[table] = {i["name"] for i in inspector.get_indexes(table)}
        if index.name not in present[table]:
            out.append(index)
    return out


def drop_secondary_indexes(engine: Engine) -> list[str]:
    """Drop the secondary indexes of `stg_*` and `hist_*` (before an initial load); return their names."""
    dropped = [i for i in secondary_indexes() if i not in missing_indexes(engine)]
    with engine.begin() as conn:
        for index in dropped:
            index.drop(conn)
    return [str(i.name) for i in dropped]


def build_missing_indexes(engine: Engine) -> list[str]:
    """Create every secondary index that is missing (after an initial load, or one killed half way)."""
    built = []
    for index in missing_indexes(engine):
        with engine.begin() as conn:  # one transaction per index: a kill keeps those already built
            index.create(conn)
        built.append(str(index.name))
    return built


def rows_written(counts: list[dict]) -> dict[str, int]:
    """Rows a night's ingest wrote per warehouse table (`stg_*`, and `hist_*` for versioned entities), from its counts."""
    written: dict[str, int] = {}
    for row in counts:
        loaded = int(row.get("rows_loaded") or 0)
        name = row.get("entity")
        if not loaded or name not in staging:
            continue
        for table in (staging[name], history.get(name)):
            if table is not None:
                written[table.name] = written.get(table.name, 0) + loaded
    return written
