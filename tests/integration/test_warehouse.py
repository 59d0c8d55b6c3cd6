"""The warehouse on SQLite and PostgreSQL: Alembic migrations match the models, bulk writes round-trip."""

from datetime import date

import pandas as pd
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event, select, text

from crm.core.db import write_frame
from crm.core.migrations import alembic_config, current_revision, upgrade_warehouse
from crm.core.settings import make_engine
from models.ingest import staging
from models.warehouse import metadata


def test_migrations_create_exactly_the_modelled_schema(backend):
    engine = make_engine(backend.warehouse_url)
    upgrade_warehouse(engine)
    upgrade_warehouse(engine)  # idempotent
    head = ScriptDirectory.from_config(alembic_config(engine)).get_current_head()
    assert head is not None and current_revision(engine) == head
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata)
    assert diff == []


def test_bulk_writes_upsert_ignore_and_keep_types(backend):
    engine = make_engine(backend.warehouse_url)
    upgrade_warehouse(engine)
    table = staging["loans"]
    frame = pd.DataFrame(
        {
            "loan_id": pd.array([1, 2], dtype="Int64"),
            "application_id": pd.array([10, 20], dtype="Int64"),
            "customer_id": pd.array([100, 200], dtype="Int64"),
            "issued_at": pd.to_datetime(["2026-01-01 10:11:12.123456", "2026-01-02 00:00:00"], format="ISO8601"),
            "principal_minor": pd.array([500_000, 1_000_000], dtype="Int64"),
            "daily_rate_bp": pd.array([100, 80], dtype="Int64"),
            "term_days": pd.array([14, 30], dtype="Int64"),
            "due_on": pd.to_datetime(["2026-01-15", "2026-02-01"]),
            "status": ["active", "active"],
            "closed_at": pd.to_datetime([None, None]),
            "updated_at": pd.to_datetime(["2026-01-01 10:11:12", "2026-01-02 00:00:00"]),
            "ingested_on": pd.to_datetime(["2026-01-02", "2026-01-02"]),
        }
    )
    with engine.begin() as conn:
        assert write_frame(conn, table, frame, on_conflict="update") == 2
    repaid = frame.iloc[[0]].assign(status="repaid", closed_at=pd.to_datetime(["2026-01-14 09:00:00"]))
    with engine.begin() as conn:
        assert write_frame(conn, table, repaid, on_conflict="update") == 1
        assert write_frame(conn, table, frame, on_conflict="ignore") == 0
    with engine.connect() as conn:
        rows = conn.execute(select(table).order_by(table.c.loan_id)).mappings().all()
    assert [r["status"] for r in rows] == ["repaid", "active"]
    assert rows[0]["issued_at"] == pd.Timestamp("2026-01-01 10:11:12.123456").to_pydatetime()
    assert rows[0]["closed_at"] == pd.Timestamp("2026-01-14 09:00:00").to_pydatetime()
    assert rows[1]["closed_at"] is None
    assert rows[0]["due_on"] == date(2026, 1, 15)
    assert rows[1]["principal_minor"] == 1_000_000


def test_bulk_writes_keep_text_and_timestamps_exactly(backend):
    engine = make_engine(backend.warehouse_url)
    upgrade_warehouse(engine)
    table = staging["message_events"]
    texts = ["a,b", 'say "hi"', "two\nlines\r\n", " padded ", "\\N", "é\u2028ü"]
    frame = pd.DataFrame(
        {
            "event_id": texts,
            "message_id": texts,
            "customer_id": pd.array([1, 2, 3, 4, 5, 2**62], dtype="Int64"),
            "channel": ["sms"] * 6,
            "event_type": ["sent"] * 6,
            "occurred_at": pd.to_datetime(["1999-12-31 23:59:59.999999", *["2026-01-01 00:00:00.000001"] * 5]),
            "campaign_id": [None, *texts[1:]],
            "provider": ["p"] * 6,
            "ingested_on": pd.to_datetime(["2026-01-02"] * 6),
        }
    )
    with engine.begin() as conn:
        assert write_frame(conn, table, frame, on_conflict="ignore") == 6
    with engine.connect() as conn:
        rows = {r.event_id: r for r in conn.execute(select(table))}
    assert sorted(rows) == sorted(texts)
    assert all(rows[t].message_id == t for t in texts)
    assert rows["a,b"].campaign_id is None and rows["é\u2028ü"].campaign_id == "é\u2028ü"
    assert rows["a,b"].occurred_at == pd.Timestamp("1999-12-31 23:59:59.999999").to_pydatetime()
    assert rows["é\u2028ü"].customer_id == 2**62


def test_an_initial_load_sets_the_secondary_indexes_aside_and_builds_exactly_the_modelled_ones(backend):
    from crm.ingest import build_missing_indexes, drop_secondary_indexes, is_initial_load, secondary_indexes
    from crm.ingest.bulk import missing_indexes
    from models.ingest import ingest_batches

    engine = make_engine(backend.warehouse_url)
    upgrade_warehouse(engine)
    assert is_initial_load(engine)
    dropped = drop_secondary_indexes(engine)
    assert sorted(dropped) == sorted(str(i.name) for i in secondary_indexes()) and len(dropped) >= 20
    assert drop_secondary_indexes(engine) == []  # nothing left to drop
    at = pd.to_datetime(["2026-01-01", "2026-01-02"])
    frame = pd.DataFrame(
        {"customer_id": [1, 2], "registered_at": at, "signup_channel": "app", "is_technical": False, "updated_at": at}
    )
    counts = {"rows_read": 2, "rows_loaded": 2, "rows_quarantined": 0, "rows_duplicate": 0}
    with engine.begin() as conn:  # rows go in without the indexes; keys still hold
        write_frame(conn, staging["customers"], frame.assign(ingested_on=at[1]), on_conflict="update")
        conn.execute(ingest_batches.insert().values(as_of=date(2026, 1, 2), source="db", entity="customers", **counts))
    assert not is_initial_load(engine)
    assert [str(i.name) for i in missing_indexes(engine)] == sorted(dropped)
    assert sorted(build_missing_indexes(engine)) == sorted(dropped)
    assert build_missing_indexes(engine) == []  # a later ingest has nothing to build
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata)
    assert diff == []  # the rebuilt indexes are the migrations' own


def test_bulk_writes_in_batches_write_every_row_once_and_count_like_one_statement(backend):
    engine = make_engine(backend.warehouse_url)
    upgrade_warehouse(engine)
    table = staging["customers"]
    at = pd.Timestamp("2026-01-02 09:00:00")
    frame = pd.DataFrame(
        {
            "customer_id": pd.array([1, 2, 3, 4, 5, 3], dtype="Int64"),
            "registered_at": at,
            "updated_at": at,
            "ingested_on": pd.Timestamp("2026-01-02"),
            "signup_channel": ["online", "online", "offline", "online", "offline", "online"],  # 3 repeated: last row
            "is_technical": False,
        }
    )
    with engine.begin() as conn:
        assert write_frame(conn, table, frame.iloc[:2], on_conflict="error") == 2
        assert write_frame(conn, table, frame, on_conflict="ignore", batch_rows=2) == 3
        assert write_frame(conn, table, frame.iloc[[4]].assign(signup_channel="online"), on_conflict="update") == 1
    with engine.connect() as conn:
        rows = conn.execute(select(table.c.customer_id, table.c.signup_channel).order_by(table.c.customer_id)).all()
    assert [tuple(r) for r in rows] == [(1, "online"), (2, "online"), (3, "online"), (4, "online"), (5, "online")]


def test_fresh_writes_copy_new_keys_straight_in_and_end_like_the_conflict_path_when_keys_exist(backend):
    """An initial load's writes (`fresh=True`): PostgreSQL copies new keys straight into the table, with no
    conflict-handling statement; a batch whose key is there after all is rolled back to a savepoint and written
    by the conflict path. Rows, counts and errors are those of the normal path; earlier writes of the
    transaction survive a fallback."""
    engine = make_engine(backend.warehouse_url)
    upgrade_warehouse(engine)
    table = staging["customers"]
    conflict_statements: list[str] = []
    event.listen(
        engine,
        "before_cursor_execute",
        lambda conn, cursor, statement, *args: (
            conflict_statements.append(statement) if "ON CONFLICT" in statement else None
        ),
    )
    at = pd.Timestamp("2026-01-02 09:00:00")

    def frame(ids: list[int], channel: str) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "customer_id": pd.array(ids, dtype="Int64"),
                "registered_at": at,
                "signup_channel": channel,
                "is_technical": False,
                "updated_at": at,
                "ingested_on": pd.Timestamp("2026-01-02"),
            }
        )

    writes = [
        (frame([1, 2, 3], "online"), "update"),  # every key new
        (frame([3, 4], "offline"), "ignore"),  # 3 is there: kept as stored
        (frame([4, 5, 5], "offline"), "update"),  # 4 is there: replaced; 5 repeated: its last row
    ]
    outcomes = {}
    for fresh in (False, True):
        with engine.begin() as conn:
            conn.execute(table.delete())
        conflict_statements.clear()
        counts, conflicts = [], []
        with engine.begin() as conn:
            for rows, on_conflict in writes:
                before = len(conflict_statements)
                counts.append(write_frame(conn, table, rows, on_conflict=on_conflict, fresh=fresh))
                conflicts.append(len(conflict_statements) - before)
        with engine.connect() as conn:
            stored = conn.execute(select(table.c.customer_id, table.c.signup_channel).order_by("customer_id")).all()
        outcomes[fresh] = (counts, [tuple(r) for r in stored])
        if backend.name == "postgresql":  # SQLite checks a key the same way either way: one path
            assert conflicts == ([0, 1, 1] if fresh else [1, 1, 1]), fresh
    assert outcomes[True] == outcomes[False]
    assert outcomes[True] == ([3, 1, 2], [(1, "online"), (2, "online"), (3, "online"), (4, "offline"), (5, "offline")])

    if backend.name == "postgresql":  # a value the table refuses fails the same way on both paths
        refused = {}
        for fresh in (False, True):
            with pytest.raises(Exception) as raised, engine.begin() as conn:
                write_frame(conn, table, frame([9], "x" * 65), on_conflict="update", fresh=fresh)
            refused[fresh] = type(raised.value)
        assert refused[True] is refused[False] and getattr(refused[True], "sqlstate", None) == "22001"


def test_tables_a_load_grew_get_planner_statistics_and_small_growth_is_left_to_autovacuum(backend):
    from crm.core.db import refresh_statistics
    from crm.ingest import rows_written

    engine = make_engine(backend.warehouse_url)
    upgrade_warehouse(engine)
    table = staging["customers"]
    at = pd.Timestamp("2026-01-02 09:00:00")

    def load(first: int, n: int) -> dict[str, int]:
        ids = pd.array(range(first, first + n), dtype="Int64")
        frame = pd.DataFrame(
            {"customer_id": ids, "registered_at": at, "signup_channel": "app", "is_technical": False, "updated_at": at}
        )
        with engine.begin() as conn:
            write_frame(conn, table, frame.assign(ingested_on=at), on_conflict="update")
        # (only stg_customers is written here: hist_customers, measured empty, is measured again each time)
        return rows_written([{"entity": "customers", "rows_loaded": n}, {"entity": "app_events", "rows_loaded": 0}])

    written = load(1, 1_000)
    assert written == {"stg_customers": 1_000, "hist_customers": 1_000}  # versioned: both tables; nothing for 0 rows
    if backend.name == "sqlite":
        assert refresh_statistics(engine, written) == []  # SQLite plans without them (hinted where it matters)
        return

    def measured() -> float:
        with engine.connect() as conn:
            return conn.execute(text("SELECT reltuples FROM pg_class WHERE relname = 'stg_customers'")).scalar()

    assert measured() < 0  # never measured: the planner would guess
    assert "stg_customers" in refresh_statistics(engine, written)
    assert measured() == 1_000
    assert "stg_customers" not in refresh_statistics(engine, load(1_001, 50))  # 5% more: autovacuum's business
    assert "stg_customers" in refresh_statistics(engine, load(2_000, 200))  # 20% more: measured again
    assert measured() == 1_250


def test_empty_text_stays_empty_and_null_stays_null_on_both_engines_whichever_csv_writer_copies_it(backend):
    from sqlalchemy import Column, Float, Integer, MetaData, String, Table

    engine = make_engine(backend.warehouse_url)
    table = Table(
        "_text_probe", MetaData(), Column("id", Integer, primary_key=True), Column("s", String(20)), Column("f", Float)
    )
    texts = ["", None, "x", "\\N", "a,b"]
    arrow = pd.DataFrame({"id": range(1, 6), "s": texts})  # Arrow's writer
    fallback = arrow.assign(f=[0.5, None, 1.0, 2.0, 3.0])  # a float column: pandas' writer, with a NULL marker
    with engine.begin() as conn:
        table.create(conn)
        for frame in (arrow, fallback):
            for mode in ("error", "update"):
                conn.execute(table.delete())
                write_frame(conn, table, frame, on_conflict=mode)
                stored = dict(conn.execute(select(table.c.id, table.c.s).order_by(table.c.id)).all())
                assert stored == dict(zip(range(1, 6), texts, strict=True)), (list(frame.columns), mode)
        table.drop(conn)


def test_segment_memberships_has_only_its_key_and_postgresql_leaves_room_for_in_page_updates(backend):
    from sqlalchemy import inspect

    engine = make_engine(backend.warehouse_url)
    upgrade_warehouse(engine)
    # No reader goes through (kind, segment, valid_from) or valid_to: every interval written paid for them.
    assert inspect(engine).get_indexes("segment_memberships") == []
    if backend.name == "postgresql":
        with engine.connect() as conn:
            options = dict(
                conn.execute(
                    text(
                        "SELECT relname, reloptions FROM pg_class "
                        "WHERE relname IN ('segment_memberships', 'segment_aggregates')"
                    )
                ).all()
            )
        # Closing an interval stays in its page (HOT: no new primary key entry); aggregates stay packed.
        assert options == {"segment_memberships": ["fillfactor=90"], "segment_aggregates": None}


def test_tables_measured_alongside_an_initial_load_are_not_measured_again_at_its_end(backend):
    from crm.core.db import refresh_statistics
    from crm.ingest import entity_tables, measure_tables, rows_written

    engine = make_engine(backend.warehouse_url)
    upgrade_warehouse(engine)
    at = pd.Timestamp("2026-01-02 09:00:00")
    frame = pd.DataFrame(
        {"customer_id": pd.array(range(1, 501), dtype="Int64"), "registered_at": at, "signup_channel": "app"}
    ).assign(is_technical=False, updated_at=at, ingested_on=at)
    with engine.begin() as conn:
        write_frame(conn, staging["customers"], frame, on_conflict="update")
    counts = [{"entity": "customers", "rows_loaded": 500}, {"entity": "payments", "rows_loaded": 10}]
    measured = measure_tables(engine, entity_tables("customers"))  # as the build alongside does, once loaded
    if backend.name == "sqlite":
        assert measured == []  # nothing to measure: SQLite plans without statistics
        return
    assert measured == ["hist_customers", "stg_customers"]
    with engine.connect() as conn:
        assert conn.execute(text("SELECT reltuples FROM pg_class WHERE relname = 'stg_customers'")).scalar() == 500
    assert rows_written(counts, measured=measured) == {"stg_payments": 10}
    assert refresh_statistics(engine, rows_written(counts, measured=measured)) == ["stg_payments"]
