"""Keyset pagination, the one helper ingestion and reconciliation page with: every row once, in key order, resumable."""

from __future__ import annotations

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, select

from crm.core.db import keyset_pages, read_frame
from crm.core.settings import make_engine

# A composite key (day, channel) with ties on the first column: the second decides the order.
ROWS = [(d, ch) for d in (1, 2, 3) for ch in ("email", "push", "sms")]


@pytest.fixture
def keyed(backend):
    engine = make_engine(backend.warehouse_url)
    table = Table(
        "keyset_rows",
        MetaData(),
        Column("day", Integer, primary_key=True),
        Column("channel", String(16), primary_key=True),
    )
    table.create(engine)
    with engine.begin() as conn:
        conn.execute(table.insert(), [{"day": d, "channel": ch} for d, ch in reversed(ROWS)])
    yield engine, table
    engine.dispose()


def pages(engine, table, **kwargs) -> list[list[tuple]]:
    order = [table.c.day, table.c.channel]
    reads = []

    def read(stmt):
        reads.append(stmt)
        assert len(reads) <= len(ROWS) + 1, "the pages never end: the mark does not move past the last row"
        return read_frame(conn, stmt)

    with engine.connect() as conn:
        return [
            list(page.itertuples(index=False, name=None)) for page in keyset_pages(select(table), order, read, **kwargs)
        ]


@pytest.mark.parametrize("chunk_rows", [1, 2, 3, 4, 9, 10])
def test_every_row_comes_once_in_key_order_whatever_the_page_size(keyed, chunk_rows):
    engine, table = keyed
    got = pages(engine, table, chunk_rows=chunk_rows)
    assert [row for page in got for row in page] == ROWS
    assert all(len(page) <= chunk_rows for page in got) and all(got)
    # No empty page: a full last page is followed by an empty read that yields nothing.
    assert len(got) == -(-len(ROWS) // chunk_rows)


def test_a_resumed_read_starts_strictly_after_the_stored_mark_on_a_tie(keyed):
    engine, table = keyed
    got = pages(engine, table, chunk_rows=4, after=(2, "email"))
    assert [row for page in got for row in page] == ROWS[4:]


def test_upto_stops_at_the_mark_inclusive(keyed):
    engine, table = keyed
    got = pages(engine, table, chunk_rows=2, after=(1, "sms"), upto=(3, "email"))
    assert [row for page in got for row in page] == ROWS[3:7]


def test_an_empty_range_yields_no_page(keyed):
    engine, table = keyed
    assert pages(engine, table, chunk_rows=5, after=(3, "sms")) == []
    assert pages(engine, table, chunk_rows=5, after=(2, "push"), upto=(2, "push")) == []
