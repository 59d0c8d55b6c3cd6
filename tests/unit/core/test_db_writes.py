"""SQLite bulk writes: timestamps and dates stored as SQLAlchemy stores them, whichever path writes the text."""

from datetime import date, datetime

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import Column, Date, DateTime, Integer, MetaData, Table, create_engine, select

from crm.core.db import write_frame

TIMES = ["0001-01-01T00:00:00", "0999-12-31T23:59:59.5", "1969-12-31T23:59:59.999999", "2026-03-01T10:11:12.000001"]


@pytest.mark.parametrize("beyond_9999", [False, True], ids=["arrow-cast", "numpy-text"])
def test_sqlite_stores_timestamps_and_dates_as_sqlalchemy_does_for_every_year(beyond_9999):
    engine = create_engine("sqlite://")
    table = Table("t", MetaData(), Column("id", Integer, primary_key=True), Column("at", DateTime), Column("on", Date))
    table.create(engine)
    # A year past 9999 in the batch (SQLAlchemy cannot read it back) sends the whole batch down numpy's path.
    times = np.array([*TIMES, "NaT", *(["12026-01-01"] if beyond_9999 else [])], dtype="datetime64[us]")
    with engine.begin() as conn:
        write_frame(conn, table, pd.DataFrame({"id": range(len(times)), "at": times, "on": times}), on_conflict="error")
    with engine.connect() as conn:
        rows = conn.execute(select(table).where(table.c.id <= len(TIMES)).order_by(table.c.id)).all()
        stored = conn.exec_driver_sql('SELECT at, "on" FROM t WHERE id = 1').one()
    expected = [datetime.fromisoformat(t) for t in TIMES]
    assert [r.at for r in rows] == [*expected, None]
    assert [r.on for r in rows] == [*(date(t.year, t.month, t.day) for t in expected), None]
    assert tuple(stored) == ("0999-12-31 23:59:59.500000", "0999-12-31")  # SQLAlchemy's text, zero-padded
