"""Warehouse history on SQLite and PostgreSQL: versions valid from/to, the rows as they stood at the end of a day."""

from __future__ import annotations

from datetime import date, datetime

import pandas as pd
from sqlalchemy import insert, select

from crm.core.contracts import LOANS, PAYMENTS
from crm.core.migrations import upgrade_warehouse
from crm.core.settings import make_engine
from crm.ingest import record_versions, rows_as_of
from models.ingest import history, staging


def loan(loan_id: int, status: str, updated_at: str) -> dict:
    return {
        "loan_id": loan_id,
        "application_id": 10 + loan_id,
        "customer_id": 100 + loan_id,
        "issued_at": pd.Timestamp("2026-01-05 10:00"),
        "principal_minor": 500_000,
        "daily_rate_bp": 100,
        "term_days": 14,
        "due_on": pd.Timestamp("2026-01-19"),
        "status": status,
        "closed_at": pd.NaT,
        "updated_at": pd.Timestamp(updated_at),
    }


def write(engine, rows: list[dict], as_of: date) -> int:
    frame = pd.DataFrame(rows)
    with engine.begin() as conn:
        return record_versions(conn, LOANS, frame, as_of)


def stored(engine) -> list[tuple]:
    h = history["loans"]
    with engine.connect() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                select(h.c.loan_id, h.c.status, h.c.valid_from, h.c.valid_to).order_by(h.c.loan_id, h.c.valid_from)
            )
        ]


def as_of(engine, day: date) -> dict[int, str]:
    with engine.connect() as conn:
        return {r.loan_id: r.status for r in conn.execute(rows_as_of(LOANS, day))}


def test_versions_are_closed_by_the_next_one_even_when_they_arrive_out_of_order(backend):
    engine = make_engine(backend.warehouse_url)
    upgrade_warehouse(engine)
    assert (
        write(engine, [loan(1, "active", "2026-01-05 10:00"), loan(2, "active", "2026-01-05 11:00")], date(2026, 1, 5))
        == 2
    )
    assert write(engine, [loan(1, "repaid", "2026-01-19 09:00")], date(2026, 1, 19)) == 1
    assert write(engine, [loan(1, "overdue", "2026-01-12 00:00")], date(2026, 1, 19)) == 1  # a late, older version
    assert write(engine, [loan(1, "repaid", "2026-01-19 09:00")], date(2026, 1, 20)) == 0  # a re-run adds nothing

    assert stored(engine) == [
        (1, "active", datetime(2026, 1, 5, 10), datetime(2026, 1, 12)),
        (1, "overdue", datetime(2026, 1, 12), datetime(2026, 1, 19, 9)),
        (1, "repaid", datetime(2026, 1, 19, 9), None),
        (2, "active", datetime(2026, 1, 5, 11), None),
    ]


def test_the_rows_as_of_a_day_are_the_versions_valid_at_its_end(backend):
    engine = make_engine(backend.warehouse_url)
    upgrade_warehouse(engine)
    write(engine, [loan(1, "active", "2026-01-05 10:00"), loan(2, "active", "2026-01-06 00:00")], date(2026, 1, 6))
    write(engine, [loan(1, "overdue", "2026-01-12 00:00")], date(2026, 1, 12))
    write(engine, [loan(1, "repaid", "2026-01-12 23:59:59.999999")], date(2026, 1, 12))

    assert as_of(engine, date(2026, 1, 4)) == {}
    assert as_of(engine, date(2026, 1, 5)) == {1: "active"}  # loan 2 starts at midnight: the next day
    assert as_of(engine, date(2026, 1, 11)) == {1: "active", 2: "active"}
    assert as_of(engine, date(2026, 1, 12)) == {1: "repaid", 2: "active"}  # the last change of the day wins


def test_facts_as_of_a_day_are_those_known_by_its_end(backend):
    engine = make_engine(backend.warehouse_url)
    upgrade_warehouse(engine)
    payment = {
        "loan_id": 1,
        "customer_id": 101,
        "payment_type": "interest",
        "amount_minor": 700,
        "ingested_on": date(2026, 1, 9),
    }
    with engine.begin() as conn:
        conn.execute(
            insert(staging["payments"]),
            [
                {**payment, "payment_id": 1, "paid_at": datetime(2026, 1, 8, 9), "updated_at": datetime(2026, 1, 8, 9)},
                {
                    **payment,
                    "payment_id": 2,
                    "paid_at": datetime(2026, 1, 8, 23),
                    "updated_at": datetime(2026, 1, 9, 0),
                },
            ],
        )
    with engine.connect() as conn:
        assert [r.payment_id for r in conn.execute(rows_as_of(PAYMENTS, date(2026, 1, 8)))] == [1]
        assert sorted(r.payment_id for r in conn.execute(rows_as_of(PAYMENTS, date(2026, 1, 9)))) == [1, 2]


def test_the_migration_backfills_history_from_what_is_already_loaded(backend):
    engine = make_engine(backend.warehouse_url)
    upgrade_warehouse(engine, "0003")
    row = {**loan(7, "active", "2026-01-05 10:00"), "closed_at": None, "ingested_on": date(2026, 1, 5)}
    row = {k: (v.to_pydatetime() if isinstance(v, pd.Timestamp) else v) for k, v in row.items()}
    with engine.begin() as conn:
        conn.execute(insert(staging["loans"]), [row])
    upgrade_warehouse(engine)
    assert stored(engine) == [(7, "active", datetime(2026, 1, 5, 10), None)]


def test_later_loads_do_not_change_what_a_past_day_saw(backend):
    from datetime import timedelta

    from crm.core.contracts import ENTITIES
    from tests.simulated import START, ingest_days, simulate_company

    # The source advances as a real back end would: the night of a day sees the source at that day's end.
    simulate_company(backend.source_url, backend.landing_url, customers=150, days=6)
    engine = make_engine(backend.warehouse_url)
    day = START + timedelta(days=5)

    def snapshot() -> dict[str, pd.DataFrame]:
        with engine.connect() as conn:
            out = {}
            for entity in ENTITIES.values():
                frame = pd.DataFrame(conn.execute(rows_as_of(entity, day)).mappings().all())
                out[entity.name] = frame.sort_values(list(entity.key), ignore_index=True) if len(frame) else frame
            return out

    ingest_days(START, day)
    that_night = snapshot()
    for offset in range(6, 20):
        simulate_company(backend.source_url, backend.landing_url, customers=10, days=1)
        ingest_days(START + timedelta(days=offset), START + timedelta(days=offset))
    later = snapshot()
    assert sum(len(f) for f in that_night.values()) > 500 and len(that_night["loans"]) > 0
    for name, frame in that_night.items():
        pd.testing.assert_frame_equal(later[name], frame, obj=name)
    with engine.connect() as conn:
        versions = conn.execute(select(history["loans"].c.loan_id)).all()
        current = conn.execute(select(staging["loans"].c.loan_id)).all()
    assert len(versions) > len(current)  # loans changed after the day: their older versions are kept


def test_keys_new_to_staging_get_first_versions_without_closing_and_the_same_history(backend):
    # A batch whose keys all went into stg_ as new keys (an initial load) cannot have an earlier version: its
    # versions are written without closing anything (on SQLite, copied from those stg_ rows inside the engine).
    # Batch by batch, the history is the one the general path (write, then close) gives, also for batches that
    # mix new keys with known ones, late older versions and re-runs.
    from sqlalchemy import event, text

    from crm.core.db import write_rows
    from models.warehouse import metadata

    batches = [  # (rows, as_of, every key new to stg_)
        ([loan(1, "active", "2026-01-05 10:00"), loan(2, "active", "2026-01-05 11:00")], date(2026, 1, 5), True),
        ([loan(1, "repaid", "2026-01-19 09:00"), loan(3, "active", "2026-01-06 08:00")], date(2026, 1, 19), False),
        ([loan(4, "active", "2026-01-07 00:00"), loan(5, "overdue", "2026-01-20 00:00")], date(2026, 1, 20), True),
        ([loan(1, "overdue", "2026-01-12 00:00")], date(2026, 1, 20), False),  # a late, older version
        ([loan(1, "repaid", "2026-01-19 09:00")], date(2026, 1, 21), False),  # a re-run adds nothing
    ]
    engine = make_engine(backend.warehouse_url)
    h = history["loans"]
    histories, statements = {}, []
    event.listen(engine, "before_cursor_execute", lambda conn, cursor, sql, *args: statements.append(sql))
    for shortcut in (False, True):
        with engine.begin() as conn:
            metadata.drop_all(conn)
            conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
        upgrade_warehouse(engine)
        added, statements[:] = [], []
        for rows, day, all_new in batches:
            frame = pd.DataFrame(rows)
            with engine.begin() as conn:
                staged = write_rows(
                    conn,
                    staging["loans"],
                    frame.assign(ingested_on=pd.Timestamp(day)),
                    on_conflict="update",
                    fresh=all_new,
                    track_new=True,
                )
                assert staged.all_new == all_new
                added.append(
                    record_versions(conn, LOANS, frame, day, fresh=all_new, staged=staged if shortcut else None)
                )
        with engine.connect() as conn:
            histories[shortcut] = (
                added,
                [tuple(r) for r in conn.execute(select(h).order_by(h.c.loan_id, h.c.valid_from))],
            )
        closes = sum("_history_keys_" in s and s.lstrip().upper().startswith("CREATE") for s in statements)
        assert closes == (2 if shortcut else 4)  # the batches that added versions; the shortcut: those with known keys
        if shortcut and backend.name == "sqlite":
            assert sum(s.startswith("INSERT INTO hist_loans") and "SELECT" in s for s in statements) == 2
    assert histories[True] == histories[False]
    assert histories[True][0] == [2, 2, 2, 1, 0]
    assert [(r[0], r[-3], r[-2]) for r in histories[True][1] if r[0] == 1] == [
        (1, datetime(2026, 1, 5, 10), datetime(2026, 1, 12)),
        (1, datetime(2026, 1, 12), datetime(2026, 1, 19, 9)),
        (1, datetime(2026, 1, 19, 9), None),
    ]
