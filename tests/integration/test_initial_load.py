"""The initial load's writes (issue 15, scale) on SQLite and PostgreSQL: rows copied straight into `stg_*` and
`hist_*` while indexes are set aside give exactly the warehouse of the normal (conflict-handling) path, also when
keys are there after all (a later day's changes, a key repeated across files); indexes built as each entity
loads (on a second connection on PostgreSQL) give the warehouse of indexes built at the end, and a load killed
after building some of them is finished, indexes included, by the next run."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import date, timedelta

import pandas as pd
from sqlalchemy import Engine, event, select

from crm.core.contracts import ENTITIES, LANDING_ENTITIES, SOURCE_ENTITIES
from crm.core.migrations import upgrade_warehouse
from crm.core.settings import make_engine
from crm.core.storage import open_store
from crm.ingest import (
    build_missing_indexes,
    drop_secondary_indexes,
    entity_tables,
    list_landing_files,
    load_known_ids,
    load_landing_files,
    loading_in_bulk,
    pull_source_table,
    secondary_indexes,
)
from crm.ingest import io as ingest_io
from crm.ingest.bulk import missing_indexes
from models import source as src
from models.ingest import history
from models.warehouse import metadata
from tests.integration.landing import load_zone, warehouse_with_customers
from tests.simulated import START, ingest_days, simulate_company

CSV_HEADER = "event_id,customer_id,event_type,platform,occurred_at\n"


def snapshot(engine: Engine) -> dict[str, list[tuple]]:
    """Every warehouse table's rows in a stable order (without the quarantine's surrogate id and the landing
    files' versions, their modification times)."""
    out = {}
    with engine.connect() as conn:
        for table in metadata.sorted_tables:
            columns = [c for c in table.columns if c.name not in ("quarantine_id", "version")]
            out[table.name] = [tuple(r) for r in conn.execute(select(*columns).order_by(*columns))]
    return out


def reset(engine: Engine) -> None:
    """An empty, unmigrated warehouse again."""
    with engine.begin() as conn:
        metadata.drop_all(conn)
        conn.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")


@contextmanager
def stg_conflict_inserts(engine: Engine) -> Iterator[list[str]]:
    """The tables of the conflict-handling statements into `stg_*` tables the engine sends inside the block."""
    seen: list[str] = []

    def record(conn, cursor, statement, *args) -> None:
        if statement.startswith('INSERT INTO "stg_') and "ON CONFLICT" in statement:
            seen.append(statement.split('"')[1])

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def test_a_history_loaded_in_bulk_day_by_day_ends_like_nightly_loads(backend):
    # The company lives a day, the warehouse ingests it, and again: each day's changes hit keys already
    # loaded, so the copies fail and those batches take the conflict path (stg_ upserts, hist_ versions
    # closed); the first day's keys are all new. Once with the normal path, once as an initial load.
    source = make_engine(backend.source_url)
    engine = make_engine(backend.warehouse_url)
    snapshots = {}
    for bulk in (False, True):
        src.metadata.drop_all(source)
        shutil.rmtree(backend.landing_url, ignore_errors=True)
        reset(engine)
        for offset in range(8):
            simulate_company(backend.source_url, backend.landing_url, customers=40, days=1, seed=11)
            ingest_days(START + timedelta(days=offset), START + timedelta(days=offset), bulk=bulk)
        snapshots[bulk] = snapshot(engine)
    assert snapshots[True] == snapshots[False]
    assert snapshots[True]["stg_app_events"]
    changed = [
        name
        for name, table in history.items()
        if pd.DataFrame(snapshots[True][table.name]).duplicated(list(range(len(ENTITIES[name].key)))).any()
    ]
    assert changed  # some records changed after their first load: versions were closed on the bulk path too


def test_a_landing_key_repeated_across_files_of_an_initial_load_is_a_duplicate_as_on_any_night(backend):
    zone = open_store(backend.landing_url)
    day = date(2026, 1, 6)
    zone.write_bytes(
        "app_events/app_events_2026-01-05.csv",
        (CSV_HEADER + "a,1,login,web,2026-01-05T01:00:00\nb,2,login,web,2026-01-05T02:00:00\n").encode(),
    )
    zone.write_bytes(  # "b" again (another device's export), and a new "c"
        "app_events/app_events-2_2026-01-05.csv",
        (CSV_HEADER + "b,2,login,ios,2026-01-05T03:00:00\nc,1,login,android,2026-01-05T04:00:00\n").encode(),
    )
    engine = make_engine(backend.warehouse_url)
    outcomes = {}
    for bulk in (False, True):
        reset(engine)
        warehouse = warehouse_with_customers(backend.warehouse_url, [1, 2])
        if bulk:
            drop_secondary_indexes(warehouse)  # as the ingest flow does on an empty warehouse
            assert loading_in_bulk(warehouse)
        with stg_conflict_inserts(warehouse) as conflicts:
            counts = load_zone(zone, warehouse, day)
        outcomes[bulk] = (counts, snapshot(warehouse))
        if backend.name == "postgresql":
            # Bulk: the first file is copied straight in, only the file with the repeated key takes the
            # conflict path; otherwise every file does.
            assert conflicts == (["stg_app_events"] if bulk else ["stg_app_events", "stg_app_events"])
    assert outcomes[True] == outcomes[False]
    counts = outcomes[True][0].values()
    assert sum(c["rows_loaded"] for c in counts) == 3 and sum(c["rows_duplicate"] for c in counts) == 1


def initial_load(engine: Engine, backend, day: date, *, alongside: bool) -> list[str]:
    """An initial load of everything up to `day`, as the ingest flow runs it: indexes set aside, then built at
    the end, or (`alongside`) each entity's as soon as it is loaded, on a second connection while the load goes
    on (PostgreSQL) or at once (SQLite); returns the indexes built alongside."""
    reset(engine)
    upgrade_warehouse(engine)
    assert drop_secondary_indexes(engine)
    source = make_engine(backend.source_url)
    zone = open_store(backend.landing_url)
    built: list = []
    with ThreadPoolExecutor(1) as pool:
        for entity in SOURCE_ENTITIES:
            pull_source_table(source, engine, entity, day)
            if alongside:
                built.append(pool.submit(build_missing_indexes, engine, entity_tables(entity.name)))
        files, _ = list_landing_files(zone, day)
        for entity in LANDING_ENTITIES:
            with engine.connect() as conn:
                known = load_known_ids(conn, entity)
            load_landing_files(zone, engine, [f for f in files if f.entity == entity], day, known)
            if alongside:
                built.append(pool.submit(build_missing_indexes, engine, entity_tables(entity.name)))
        early = [name for future in built for name in future.result()]
    build_missing_indexes(engine)
    assert missing_indexes(engine) == []
    return early


def test_indexes_built_as_each_entity_loads_give_the_warehouse_of_indexes_built_at_the_end(backend):
    simulate_company(backend.source_url, backend.landing_url, customers=60, days=3, seed=5)
    engine = make_engine(backend.warehouse_url)
    day = START + timedelta(days=2)
    initial_load(engine, backend, day, alongside=False)
    expected = snapshot(engine)
    early = initial_load(engine, backend, day, alongside=True)
    assert sorted(early) == sorted(str(i.name) for i in secondary_indexes())  # every one built alongside
    assert snapshot(engine) == expected


def test_an_initial_load_killed_after_some_entities_indexes_were_built_is_finished_by_the_next_run(backend):
    simulate_company(backend.source_url, backend.landing_url, customers=60, days=3, seed=5)
    engine = make_engine(backend.warehouse_url)
    day = START + timedelta(days=2)
    initial_load(engine, backend, day, alongside=False)
    expected = snapshot(engine)

    # The load built the indexes of each entity it finished, then was killed while building the loans' and
    # loading the payments: the build's transaction never committed.
    reset(engine)
    upgrade_warehouse(engine)
    drop_secondary_indexes(engine)
    source = make_engine(backend.source_url)
    names = [e.name for e in SOURCE_ENTITIES]
    finished = names[: names.index("loans")]
    for name in finished:
        pull_source_table(source, engine, ENTITIES[name], day)
        build_missing_indexes(engine, tables=entity_tables(name))
    pull_source_table(source, engine, ENTITIES["loans"], day)
    loans_indexes = [i for i in missing_indexes(engine) if i.table.name in entity_tables("loans")]
    assert loans_indexes
    if backend.name == "postgresql":  # a build killed half way: its transaction rolls back (pysqlite commits DDL)
        with engine.connect() as conn:
            killed = conn.begin()
            loans_indexes[0].create(conn)
            killed.rollback()
    pull_source_table(source, engine, ENTITIES["payments"], day, chunk_rows=5)  # half way through
    left = {str(i.name) for i in missing_indexes(engine)}
    assert {str(i.name) for i in loans_indexes} <= left
    assert not {i.table.name for i in missing_indexes(engine)} & set().union(*map(entity_tables, finished))
    assert loading_in_bulk(engine)  # the next run sees an unfinished initial load

    ingest_days(day, day)  # the next run loads the rest as fast (its writes are bulk)...
    assert set(build_missing_indexes(engine)) == left  # ...and builds exactly what is missing
    assert missing_indexes(engine) == []
    assert snapshot(engine) == expected


def test_an_initial_load_on_sqlite_read_in_a_worker_process_ends_like_one_read_inline(sqlite_backend, monkeypatch):
    # SQLite, initial load: source pages and landing files are read and validated in a worker process while
    # this one writes. The same load read inline (as PostgreSQL and nightly loads read) gives the same warehouse.
    backend = sqlite_backend
    simulate_company(backend.source_url, backend.landing_url, customers=60, days=3, seed=5)
    engine = make_engine(backend.warehouse_url)
    day = START + timedelta(days=2)
    read_in_process: list[bool] = []
    read_ahead = ingest_io.read_ahead

    def recorded(produce, *args, in_process: bool, **kwargs):
        read_in_process.append(in_process)
        return read_ahead(produce, *args, in_process=in_process, **kwargs)

    monkeypatch.setattr(ingest_io, "read_ahead", recorded)
    initial_load(engine, backend, day, alongside=False)
    in_worker = snapshot(engine)
    assert len(read_in_process) == len(SOURCE_ENTITIES) + len(LANDING_ENTITIES) and all(read_in_process)

    read_in_process.clear()
    monkeypatch.setattr(ingest_io, "reads_in_process", lambda *engines: False)
    initial_load(engine, backend, day, alongside=False)
    assert read_in_process and not any(read_in_process)
    assert snapshot(engine) == in_worker
    assert in_worker["stg_app_events"] and in_worker["hist_customers"]
