"""`read_typed`: the same typed frame on SQLite (the cursor) and PostgreSQL (COPY parsed by Arrow)."""

from datetime import date, datetime

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    func,
    insert,
    literal,
    select,
    type_coerce,
)

import crm.core.db as db
from crm.core.db import read_typed
from crm.core.settings import make_engine

BIG = 2**62 + 7
ROWS = [
    # id, big, flag, ratio, day, at, label, note
    (1, BIG, True, 0.5, date(2026, 3, 1), datetime(2026, 3, 1, 10, 11, 12, 123456), "", "a,b"),
    (2, None, None, None, None, None, None, None),
    (3, -BIG, False, -2.25, date(999, 1, 2), datetime(1999, 12, 31, 23, 59, 59), "x", 'quote " and\nnewline'),
    (4, 0, True, 0.0, date(9999, 12, 31), datetime(2026, 1, 1), "\\N", "t"),
]


def _probe(engine) -> Table:
    table = Table(
        "_read_probe",
        MetaData(),
        Column("id", Integer, primary_key=True),
        Column("big", BigInteger),
        Column("flag", Boolean),
        Column("ratio", Float),
        Column("day", Date),
        Column("at", DateTime),
        Column("label", String(20)),
        Column("note", Text),
    )
    table.create(engine)
    with engine.begin() as conn:
        conn.execute(insert(table), [dict(zip(table.columns.keys(), row, strict=True)) for row in ROWS])
    return table


def _expected() -> pd.DataFrame:
    columns = list(zip(*ROWS, strict=True))
    return pd.DataFrame(
        {
            "id": pd.array(columns[0], dtype="Int64"),
            "big": pd.array(columns[1], dtype="Int64"),
            "flag": pd.array(columns[2], dtype="boolean"),
            "ratio": np.array([np.nan if v is None else v for v in columns[3]], dtype="float64"),
            "day": np.array(
                [np.datetime64(v) if v else np.datetime64("NaT") for v in columns[4]], dtype="datetime64[s]"
            ),
            "at": np.array(
                [np.datetime64(v) if v else np.datetime64("NaT") for v in columns[5]], dtype="datetime64[us]"
            ),
            "label": pd.Series(columns[6], dtype=object),
            "note": pd.Series(columns[7], dtype=object),
        }
    )


@pytest.fixture
def probe(backend):
    engine = make_engine(backend.warehouse_url)
    table = _probe(engine)
    yield engine, table
    table.drop(engine)
    engine.dispose()


def test_typed_read_gives_the_same_frame_on_both_engines_nulls_empty_text_dates_big_ints_booleans(probe):
    engine, table = probe
    with engine.connect() as conn:
        frame = read_typed(conn, select(table).order_by(table.c.id))
    pd.testing.assert_frame_equal(frame, _expected())
    assert frame["label"].tolist() == ["", None, "x", "\\N"]  # an empty text stays empty, a null stays None


def test_typed_read_of_no_rows_keeps_the_column_types(probe):
    engine, table = probe
    with engine.connect() as conn:
        frame = read_typed(conn, select(table).where(table.c.id > 100))
    pd.testing.assert_frame_equal(frame, _expected().iloc[:0].reset_index(drop=True))


def test_typed_read_binds_parameters_like_the_cursor_in_lists_dates_and_percent_signs(probe):
    engine, table = probe
    stmt = (
        select(
            table.c.id,
            func.count().over().label("n"),
            type_coerce(table.c.day, String).label("day_text"),
            literal("100%").label("pct"),
        )
        .where(table.c.id.in_([1, 3, 4]), table.c.day >= date(1000, 1, 1), table.c.note.like("%,%") | (table.c.id > 3))
        .order_by(table.c.id)
    )
    with engine.connect() as conn:
        frame = read_typed(conn, stmt)
        percent_only = read_typed(conn, select(table.c.id, literal("50%", String).label("p")).where(table.c.id == 1))
    assert frame["id"].tolist() == [1, 4]
    assert frame["n"].tolist() == [2, 2]
    assert frame["day_text"].tolist() == ["2026-03-01", "9999-12-31"]  # a coerced date is its text on both engines
    assert frame["pct"].tolist() == ["100%", "100%"]
    assert percent_only["p"].tolist() == ["50%"]


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)  # the COPY path is PostgreSQL's
def test_postgresql_reads_through_copy_and_arrow_and_the_cursor_gives_the_same_frame(probe, monkeypatch):
    engine, table = probe
    assert engine.dialect.name == "postgresql"
    copied = []
    read_copy = db._read_copy
    monkeypatch.setattr(db, "_read_copy", lambda *a: copied.append(1) or read_copy(*a))
    stmt = select(table).order_by(table.c.id)
    with engine.connect() as conn:
        through_copy = read_typed(conn, stmt)
        monkeypatch.setattr(db, "_read_copy", lambda *a: None)  # the cursor's way on the same engine
        through_cursor = read_typed(conn, stmt)
    assert copied == [1]
    pd.testing.assert_frame_equal(through_copy, through_cursor)
    pd.testing.assert_frame_equal(through_copy, _expected())
