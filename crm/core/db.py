"""Dialect-neutral database helpers: fast bulk writes of DataFrames, keyset pagination.

SQLite gets one prepared `INSERT ... ON CONFLICT` run with `executemany` over plain tuples
(timestamps as SQLAlchemy's text, cast by Arrow); PostgreSQL gets `COPY` into a temporary table
and one `INSERT ... SELECT ... ON CONFLICT` (ENGINEERING.md: COPY is an order of magnitude faster
than `to_sql` there), its CSV written by Arrow when every column allows it, else by pandas. Rows
whose keys are most likely new (`fresh`: an initial load) are copied straight into the table from
a savepoint, and take the conflict-handling path only when a key was there after all.
"""

from __future__ import annotations

import io
import itertools
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ColumnElement,
    Connection,
    Date,
    DateTime,
    Engine,
    Float,
    Integer,
    MetaData,
    Select,
    String,
    Table,
    bindparam,
    delete,
    text,
    tuple_,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError

OnConflict = Literal["update", "ignore", "error"]
_temp_names = itertools.count()
# Rows per statement of `write_frame` (its driver-side copy of the values: ~0.1 GB at this size).
WRITE_BATCH_ROWS = 100_000


def dialect_insert(conn: Connection, table: Table):
    """`INSERT` with `on_conflict_do_*` for the connection's dialect (SQLite or PostgreSQL)."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    if conn.dialect.name == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"dialect {conn.dialect.name!r} is not supported")


def upsert(conn: Connection, table: Table, rows: list[dict], *, increment: tuple[str, ...] = ()) -> None:
    """Insert `rows`, or update them in place on a key conflict (adding to `increment` columns)."""
    if not rows:
        return
    stmt = dialect_insert(conn, table)
    key = [c.name for c in table.primary_key]
    updates = {
        name: (table.c[name] + stmt.excluded[name]) if name in increment else stmt.excluded[name]
        for name in rows[0]
        if name not in key
    }
    conn.execute(stmt.on_conflict_do_update(index_elements=key, set_=updates), rows)


def write_frame(
    conn: Connection,
    table: Table,
    frame: pd.DataFrame,
    *,
    on_conflict: OnConflict,
    batch_rows: int = WRITE_BATCH_ROWS,
    fresh: bool = False,
) -> int:
    """Write `frame` into `table`; return how many rows were inserted or updated.

    `update` replaces rows whose key exists, `ignore` keeps the stored row (so
    `len(frame) - result` rows were duplicates), `error` is a plain insert.
    Keys repeated inside `frame` keep their last row. The rows go `batch_rows` at a time (in the
    caller's transaction): the driver's copy of the values follows the batch, not the frame.

    `fresh` says the keys are most likely not in the table (an initial load). PostgreSQL then
    copies each batch straight into the table (one write instead of a temporary table and an
    `INSERT ... ON CONFLICT`, as its bulk loaders do) from a savepoint; if the copy fails (a key
    was there after all, or a value the table refuses) the batch is rolled back to the savepoint
    and written by the conflict-handling path, so the outcome and the count are the same either way.
    SQLite checks a key the same way whether or not it conflicts: `fresh` changes nothing there.
    """
    return write_rows(conn, table, frame, on_conflict=on_conflict, batch_rows=batch_rows, fresh=fresh).rows


@dataclass(frozen=True)
class Written:
    """What `write_rows` did: rows inserted or updated, and whether each of them was a new key (an insert)."""

    rows: int
    # Every row of the frame went in as a new key (none was in the table before): known when PostgreSQL's
    # fresh copies all succeeded, and on SQLite with `track_new`. False means "not known", not "some existed".
    all_new: bool = False
    # SQLite with `track_new` and `all_new`: the rows are exactly those with `low < rowid <= high`.
    rowids: tuple[int, int] | None = None


def write_rows(
    conn: Connection,
    table: Table,
    frame: pd.DataFrame,
    *,
    on_conflict: OnConflict,
    batch_rows: int = WRITE_BATCH_ROWS,
    fresh: bool = False,
    track_new: bool = False,
) -> Written:
    """`write_frame`, also saying whether every row was a new key (`Written.all_new`).

    PostgreSQL knows it when every `fresh` copy succeeded. SQLite, with `track_new` (a table with
    rowids, none ever deleted), from the table's largest rowid before and after: each insert takes
    the next one, an update keeps its own, so the rows were all new iff it grew by their number
    (two index look-ups, whatever the table's size).
    """
    if frame.empty:
        return Written(0, all_new=True)
    key = [c.name for c in table.primary_key]
    if on_conflict != "error":
        frame = frame.drop_duplicates(subset=key, keep="last")
    if conn.dialect.name != "postgresql":
        low = _max_rowid(conn, table) if track_new else None
        written = sum(
            _write_sqlite(conn, table, frame.iloc[i : i + batch_rows], on_conflict, key)
            for i in range(0, len(frame), batch_rows)
        )
        if low is None:
            return Written(written)
        high = _max_rowid(conn, table)
        all_new = high - low == len(frame)
        return Written(written, all_new=all_new, rowids=(low, high) if all_new else None)
    batches = [
        _write_postgresql(conn, table, frame.iloc[i : i + batch_rows], on_conflict, key, fresh=fresh)
        for i in range(0, len(frame), batch_rows)
    ]
    return Written(sum(n for n, _ in batches), all_new=all(copied for _, copied in batches))


def _max_rowid(conn: Connection, table: Table) -> int:
    return conn.exec_driver_sql(f'SELECT max(rowid) FROM "{table.name}"').scalar() or 0


def _conflict_clause(stmt, table: Table, columns: list[str], key: list[str], on_conflict: OnConflict):
    if on_conflict == "ignore":
        return stmt.on_conflict_do_nothing(index_elements=key)
    if on_conflict == "update":
        return stmt.on_conflict_do_update(
            index_elements=key, set_={c: stmt.excluded[c] for c in columns if c not in key}
        )
    return stmt


def _write_sqlite(conn: Connection, table: Table, frame: pd.DataFrame, on_conflict: OnConflict, key: list[str]) -> int:
    columns = list(frame.columns)
    stmt = _conflict_clause(sqlite.insert(table), table, columns, key, on_conflict)
    compiled = stmt.compile(dialect=conn.dialect, column_keys=columns)
    order = list(compiled.positiontup)
    values = [_sqlite_values(frame[name], table.c[name].type) for name in order]
    # The driver's cursor takes the rows as they are zipped: no list of a million tuples first.
    sql, dbapi_error = str(compiled), conn.dialect.loaded_dbapi.Error
    cursor = conn.connection.driver_connection.cursor()
    try:
        cursor.executemany(sql, zip(*values, strict=False))
        return max(cursor.rowcount, 0)
    except dbapi_error as exc:  # as SQLAlchemy would raise it (errors.py classifies by SQLAlchemy's types)
        raise DBAPIError.instance(sql, None, exc, dbapi_error) from exc
    finally:
        cursor.close()


def _sqlite_values(series: pd.Series, sql_type) -> list:
    """Python values SQLite and SQLAlchemy agree on (datetimes in SQLAlchemy's storage format)."""
    if isinstance(sql_type, DateTime):
        return _datetime_strings(series, unit="us", sep=" ")
    if isinstance(sql_type, Date):
        return _datetime_strings(series, unit="D", sep=None)
    if isinstance(sql_type, Boolean):
        mask = series.isna().to_numpy()
        out = series.astype(object).to_numpy()
        out = np.where(mask, None, out)
        return [None if v is None else int(bool(v)) for v in out.tolist()]
    mask = series.isna().to_numpy()
    if not mask.any():
        return series.tolist()
    return np.where(mask, None, series.astype(object).to_numpy()).tolist()


# Years 1-9999 in microseconds: Arrow writes them exactly as SQLAlchemy stores them.
_ARROW_DATETIMES = (
    np.datetime64("0001-01-01T00:00:00", "us").astype(np.int64),
    np.datetime64("9999-12-31T23:59:59.999999", "us").astype(np.int64),
)


def _datetime_strings(series: pd.Series, *, unit: str, sep: str | None) -> list:
    values = pd.to_datetime(series).to_numpy(dtype="datetime64[us]")
    mask = np.isnat(values)
    present = values[~mask].astype(np.int64)
    if sep in (" ", None) and (
        not len(present) or (_ARROW_DATETIMES[0] <= present.min() and present.max() <= _ARROW_DATETIMES[1])
    ):
        # Arrow's cast gives "YYYY-MM-DD HH:MM:SS.ffffff" / "YYYY-MM-DD" in C, 5x faster than numpy's text.
        arrow = pa.array(values, mask=mask)
        text = pc.cast(arrow, pa.string()) if unit == "us" else pc.cast(pc.cast(arrow, pa.date32()), pa.string())
        return text.to_numpy(zero_copy_only=False).tolist()
    text = np.datetime_as_string(values, unit=unit)
    if sep is not None:
        # "YYYY-MM-DDTHH:MM:SS.ffffff" -> SQLAlchemy's "YYYY-MM-DD HH:MM:SS.ffffff", in place.
        raw = text.astype("S26")
        raw.view(np.uint8).reshape(-1, 26)[:, 10] = ord(sep)
        text = raw.astype("U26")
    out = text.astype(object)
    out[mask] = None
    return out.tolist()


def _write_postgresql(
    conn: Connection, table: Table, frame: pd.DataFrame, on_conflict: OnConflict, key: list[str], *, fresh: bool
) -> tuple[int, bool]:
    """Write one batch; return the rows inserted or updated, and whether they were all inserted as new keys."""
    columns = list(frame.columns)
    quoted = ", ".join(f'"{c}"' for c in columns)
    data = _copy_csv(frame)  # (text, the NULL marker it was written with)
    if on_conflict == "error":
        _copy(conn, table.name, quoted, data)
        return len(frame), True
    if fresh and _copied_fresh(conn, table.name, quoted, data):
        return len(frame), True  # every key was new: what `INSERT ... ON CONFLICT` would have counted
    temp = f"_load_{table.name}_{next(_temp_names)}"
    conn.exec_driver_sql(f'CREATE TEMP TABLE "{temp}" (LIKE "{table.name}" INCLUDING DEFAULTS) ON COMMIT DROP')
    _copy(conn, temp, quoted, data)
    conflict = f"ON CONFLICT ({', '.join(key)}) "
    if on_conflict == "ignore":
        conflict += "DO NOTHING"
    else:
        updates = ", ".join(f'"{c}" = EXCLUDED."{c}"' for c in columns if c not in key)
        conflict += f"DO UPDATE SET {updates}" if updates else "DO NOTHING"
    result = conn.exec_driver_sql(f'INSERT INTO "{table.name}" ({quoted}) SELECT {quoted} FROM "{temp}" {conflict}')
    conn.exec_driver_sql(f'DROP TABLE "{temp}"')
    return max(result.rowcount, 0), False


def _copy(conn: Connection, table_name: str, quoted: str, data: tuple[str | bytes, str]) -> None:
    text_, null = data
    options = "FORMAT csv" + (f", NULL '{null}'" if null else "")
    with (
        conn.connection.driver_connection.cursor() as cursor,
        cursor.copy(f'COPY "{table_name}" ({quoted}) FROM STDIN WITH ({options})') as copy,
    ):
        copy.write(text_)


def _copied_fresh(conn: Connection, table_name: str, quoted: str, data: tuple[str | bytes, str]) -> bool:
    """`COPY` the rows straight into the table from a savepoint; False (and nothing written) if it failed."""
    savepoint = conn.begin_nested()
    try:
        _copy(conn, table_name, quoted, data)
    except conn.dialect.loaded_dbapi.Error:
        # A key already there (or a value refused: the conflict-handling path raises it as it always did).
        savepoint.rollback()
        return False
    savepoint.commit()
    return True


def _copy_csv(frame: pd.DataFrame) -> tuple[str | bytes, str]:
    """The rows of `frame` as `COPY ... (FORMAT csv)` reads them, and the NULL marker to tell COPY.

    Arrow's writer when it can (nulls unquoted and empty, empty text quoted: COPY's defaults);
    else pandas', which writes empty text unquoted too, so its nulls get a marker that no text
    value of the frame equals (an empty string stays an empty string, as on SQLite).
    """
    arrow = _arrow_csv(frame)
    if arrow is not None:
        return arrow, ""
    texts: set = set()
    for name in frame.columns:
        if frame[name].dtype == object or isinstance(frame[name].dtype, pd.StringDtype):
            texts.update(v for v in frame[name].dropna().unique() if isinstance(v, str))
    marker, n = "\\N", 0
    while marker in texts:
        n += 1
        marker = f"\\N{n}"
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, header=False, na_rep=marker, date_format="%Y-%m-%d %H:%M:%S.%f")
    return buffer.getvalue(), marker


# Years 1000-9999 in microseconds: Arrow's text and pandas' `%Y-%m-%d %H:%M:%S.%f` agree on them.
_FOUR_DIGIT_YEARS = (
    np.datetime64("1000-01-01T00:00:00", "us").astype(np.int64),
    np.datetime64("9999-12-31T23:59:59.999999", "us").astype(np.int64),
)


def _arrow_csv(frame: pd.DataFrame) -> bytes | None:
    """`frame` as CSV by Arrow's C++ writer (pandas' `to_csv` is the dearest part of a PostgreSQL load), or None.

    Only for columns PostgreSQL reads the same from both writers: integers, booleans, timestamps of
    four-digit years, and text (an empty string quoted, a null unquoted and empty, as COPY reads them).
    """
    columns = {}
    for name in frame.columns:
        series = frame[name]
        dtype = series.dtype
        if pd.api.types.is_datetime64_dtype(dtype):
            values = series.to_numpy(dtype="datetime64[us]")
            mask = np.isnat(values)
            present = values[~mask].astype(np.int64)
            if len(present) and not (_FOUR_DIGIT_YEARS[0] <= present.min() and present.max() <= _FOUR_DIGIT_YEARS[1]):
                return None
            columns[name] = pc.cast(pa.array(values, mask=mask), pa.string())
        elif pd.api.types.is_integer_dtype(dtype):
            columns[name] = pa.array(series, type=pa.int64())
        elif pd.api.types.is_bool_dtype(dtype):
            columns[name] = pa.array(series, type=pa.bool_())
        elif isinstance(dtype, pd.StringDtype) or (
            pd.api.types.is_object_dtype(dtype) and pd.api.types.infer_dtype(series, skipna=True) in ("string", "empty")
        ):
            columns[name] = pa.array(series.to_numpy(object), type=pa.string(), from_pandas=True)
        else:
            return None
    sink = io.BytesIO()
    pa_csv.write_csv(
        pa.table(columns), sink, write_options=pa_csv.WriteOptions(include_header=False, quoting_style="needed")
    )
    return sink.getvalue()


# --------------------------------------------------------------------------- reads


def read_frame(conn: Connection, stmt: Select, *, integers: Sequence[str] = ()) -> pd.DataFrame:
    """A query's rows as a frame; `integers` columns as exact nullable Int64 (money)."""
    result = conn.execute(stmt)
    columns = list(result.keys())
    rows = result.all()
    # Column by column: building a frame from Row objects probes each row's attributes (10x slower).
    values = list(zip(*rows, strict=False)) if rows else [()] * len(columns)
    return pd.DataFrame(
        {
            c: pd.array(list(v), dtype="Int64") if c in integers else pd.Series(v, dtype=None if rows else object)
            for c, v in zip(columns, values, strict=False)
        }
    )


def read_typed(conn: Connection, stmt: Select) -> pd.DataFrame:
    """A query's rows as a frame typed by the statement's column types, the same frame on every engine.

    Integers come as nullable `Int64`, booleans as nullable `boolean`, floats as `float64`, dates as
    `datetime64[s]`, timestamps as `datetime64[us]` (null: NaT), text as object columns of `str`
    (null: None; a value `type_coerce`d to `String` is the engine's text of it); other types as the
    driver gives them (object). PostgreSQL streams `COPY (SELECT ...) TO STDOUT` as CSV into Arrow's
    C++ reader (no Python object per value: the hot reads of the segments night); SQLite, and a
    statement with a type Arrow is not told how to read, go through the cursor, column by column.
    """
    kinds = [_read_kind(column.type) for column in stmt.selected_columns]
    if conn.dialect.name == "postgresql" and None not in kinds:
        frame = _read_copy(conn, stmt, kinds)
        if frame is not None:
            return frame
    names = list(stmt.selected_columns.keys())  # the COPY path's names too
    rows = conn.execute(stmt).all()
    values = list(zip(*rows, strict=False)) if rows else [()] * len(names)
    return pd.DataFrame(
        {name: _typed_values(list(v), kind) for name, v, kind in zip(names, values, kinds, strict=True)},
        index=pd.RangeIndex(len(rows)),
    )


# The types `read_typed` reads through Arrow on PostgreSQL (and the dtype each becomes on both engines).
_ARROW_KINDS = {
    "int": pa.int64(),
    "bool": pa.bool_(),
    "float": pa.float64(),
    "date": pa.date32(),
    "datetime": pa.timestamp("us"),
    "text": pa.string(),
}


def _read_kind(sql_type) -> str | None:
    """What `read_typed` makes of a column of `sql_type` (None: whatever the driver gives)."""
    if isinstance(sql_type, Boolean):
        return "bool"
    if isinstance(sql_type, Integer):
        return "int"
    if isinstance(sql_type, Float):
        return "float"
    if isinstance(sql_type, DateTime):
        return None if sql_type.timezone else "datetime"
    if isinstance(sql_type, Date):
        return "date"
    if isinstance(sql_type, String):
        return "text"
    return None


def _typed_values(values: list, kind: str | None):
    """The cursor's values of one column as `read_typed` types them."""
    if kind == "int":
        return pd.array(values, dtype="Int64")
    if kind == "bool":
        return pd.array(values, dtype="boolean")
    if kind == "float":
        return pd.array(values, dtype="float64").to_numpy()
    if kind == "date":
        return pd.to_datetime(pd.Series(values, dtype=object)).to_numpy(dtype="datetime64[s]")
    if kind == "datetime":
        return pd.to_datetime(pd.Series(values, dtype=object)).to_numpy(dtype="datetime64[us]")
    if kind == "text":
        # A timestamp coerced to text comes as a datetime from psycopg: its text, as SQLite and COPY give it.
        return pd.Series([v if v is None or isinstance(v, str) else str(v) for v in values], dtype=object)
    return pd.Series(values, dtype=object)


def _read_copy(conn: Connection, stmt: Select, kinds: list[str]) -> pd.DataFrame | None:
    """`read_typed` on PostgreSQL through COPY and Arrow; None (nothing read) when a parameter needs SQLAlchemy's
    processing, or None (after reading) when Arrow cannot parse a value."""
    dialect = conn.dialect
    compiled = stmt.compile(dialect=dialect, compile_kwargs={"render_postcompile": True})
    if any(b.type.dialect_impl(dialect).bind_processor(dialect) is not None for b in compiled.binds.values()):
        return None
    params = compiled.params
    sql = (
        compiled.string if params else compiled.string.replace("%%", "%")
    )  # psycopg merges (unescapes) with params only
    names = list(stmt.selected_columns.keys())
    positional = [f"c{i}" for i in range(len(names))]
    options = pa_csv.ConvertOptions(
        column_types={p: _ARROW_KINDS[k] for p, k in zip(positional, kinds, strict=True)},
        null_values=[""],  # COPY's CSV: a null is unquoted and empty, an empty text quoted
        strings_can_be_null=True,
        quoted_strings_can_be_null=False,
        true_values=["t"],
        false_values=["f"],
    )
    with (
        conn.connection.driver_connection.cursor() as cursor,
        cursor.copy(f"COPY ({sql}) TO STDOUT WITH (FORMAT csv)", params or None) as copy,
    ):
        data = b"".join(copy)  # the server sends a row a block: joined in C, parsed at once
    if data:
        try:
            table = pa_csv.read_csv(
                pa.BufferReader(data),
                read_options=pa_csv.ReadOptions(column_names=positional, block_size=16 << 20),
                parse_options=pa_csv.ParseOptions(newlines_in_values=True),
                convert_options=options,
            )
        except pa.ArrowInvalid:  # a value Arrow does not read (a date 'infinity', a year BC): the cursor's way
            return None
    else:
        table = pa.schema([(p, _ARROW_KINDS[k]) for p, k in zip(positional, kinds, strict=True)]).empty_table()
    return pd.DataFrame(
        {name: _arrow_values(table.column(i), kind) for i, (name, kind) in enumerate(zip(names, kinds, strict=True))},
        index=pd.RangeIndex(table.num_rows),
    )


def _arrow_values(column: pa.ChunkedArray, kind: str):
    """One Arrow column as `read_typed` types it (the cursor path's dtypes)."""
    if kind in ("int", "bool"):
        column = column.combine_chunks()
        mask = column.is_null().to_numpy(zero_copy_only=False)
        values = column.fill_null(0 if kind == "int" else False).to_numpy(zero_copy_only=False)
        if kind == "int":
            return pd.arrays.IntegerArray(values.astype("int64", copy=False), mask)
        return pd.arrays.BooleanArray(values.astype(bool, copy=False), mask)
    if kind == "float":
        return column.to_numpy().astype("float64", copy=False)
    if kind == "date":
        return column.cast(pa.timestamp("s")).to_numpy().astype("datetime64[s]", copy=False)
    if kind == "datetime":
        return column.to_numpy().astype("datetime64[us]", copy=False)
    return pd.Series(column.to_numpy(), dtype=object)


# --------------------------------------------------------------------------- keyset pagination


def keyset_after(columns: Sequence[ColumnElement], mark: Sequence[Any] | None) -> ColumnElement | None:
    """`(columns) > mark` in key order (None when there is no mark yet)."""
    if mark is None:
        return None
    if len(columns) == 1:
        return columns[0] > mark[0]
    return tuple_(*columns) > tuple_(*mark)


def keyset_upto(columns: Sequence[ColumnElement], mark: Sequence[Any]) -> ColumnElement:
    """`(columns) <= mark` in key order."""
    if len(columns) == 1:
        return columns[0] <= mark[0]
    return tuple_(*columns) <= tuple_(*mark)


def plain(value: Any) -> Any:
    """A Python scalar SQLAlchemy binds the same on every dialect (a numpy scalar binds as a BLOB in SQLite)."""
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    if isinstance(value, np.generic):
        return value.item()
    return value


def last_key(frame: pd.DataFrame, columns: Sequence[str]) -> tuple:
    """The last row's values of `columns`, as plain Python values."""
    return tuple(plain(v) for v in frame.iloc[-1][list(columns)])


def keyset_pages(
    stmt: Select,
    order: Sequence[ColumnElement],
    read: Callable[[Select], pd.DataFrame],
    *,
    chunk_rows: int,
    after: Sequence[Any] | None = None,
    upto: Sequence[Any] | None = None,
) -> Iterator[pd.DataFrame]:
    """Pages of `stmt` in `order`, at most `chunk_rows` rows each, strictly after `after` and up to `upto`.

    Each page is read by `read(statement)`; the next page starts after the last row's `order`
    values, so memory stays bounded and a caller that stores the mark can resume after a crash.
    """
    names = [c.name for c in order]
    mark = after
    while True:
        page_stmt = stmt
        if (condition := keyset_after(order, mark)) is not None:
            page_stmt = page_stmt.where(condition)
        if upto is not None:
            page_stmt = page_stmt.where(keyset_upto(order, upto))
        page = read(page_stmt.order_by(*order).limit(chunk_rows))
        if len(page) == 0:
            return
        yield page
        if len(page) < chunk_rows:
            return
        mark = last_key(page, names)


def id_chunks(ids: Any, size: int | None) -> list[pd.Index]:
    """The distinct integer ids in increasing order, `size` at a time (all at once without a size); none for no ids.

    The one way to split customers into consecutive chunks: loyalty posts and checks members a chunk
    at a time, churn scores ranges of customers.
    """
    unique = pd.Index(pd.unique(pd.Series(ids, dtype="int64"))).sort_values()
    if not len(unique):
        return []
    if not size or len(unique) <= size:
        return [unique]
    return [unique[i : i + size] for i in range(0, len(unique), size)]


def sqlite_table_hint(stmt, table: str, hint: str):
    """`stmt` marked to read `table` with a SQLite table hint (`INDEXED BY <index>` or `NOT INDEXED`)."""
    return stmt.execution_options(sqlite_from_hint=(table, hint))


def with_sqlite_hint(conn: Connection, stmt):
    """On SQLite, the statement with its `sqlite_table_hint` written after its table; elsewhere, unchanged.

    SQLAlchemy's SQLite compiler renders no table hints, and SQLite's planner sometimes walks an
    index over the whole history (`valid_from`, `valid_to`) when the night's rows (`ingested_on`)
    or a plain scan are far cheaper (45 s instead of 2 s on 3 M order versions).
    """
    hint = stmt.get_execution_options().get("sqlite_from_hint") if hasattr(stmt, "get_execution_options") else None
    if hint is None or conn.dialect.name != "sqlite":
        return stmt
    table, table_hint = hint
    compiled = stmt.compile(dialect=sqlite.dialect(paramstyle="named"))
    sql = str(compiled)
    marker = f"FROM {table}"
    if sql.count(marker) != 1:
        return stmt
    sql = sql.replace(marker, f"{marker} {table_hint}")
    params = [bindparam(k, v, type_=compiled.binds[k].type) for k, v in compiled.params.items()]
    return text(sql).bindparams(*params).columns(*stmt.selected_columns)


def temporary_table(conn: Connection, prefix: str, *columns: Column) -> Table:
    """Create a temporary table of `columns` on this connection (a unique name starting with `prefix`)."""
    table = Table(f"{prefix}_{next(_temp_names)}", MetaData(), *columns, prefixes=["TEMPORARY"])
    table.create(conn)
    return table


def id_table(conn: Connection, prefix: str) -> Table:
    """A temporary table of customer ids (one row each) for a statement to join, instead of long IN lists."""
    return temporary_table(conn, prefix, Column("customer_id", BigInteger, primary_key=True))


def fill_ids(conn: Connection, table: Table, ids: Any) -> None:
    """Put exactly the distinct `ids` in an `id_table`, and tell PostgreSQL's planner how many there are."""
    conn.execute(delete(table))
    frame = pd.DataFrame({"customer_id": pd.unique(np.asarray(ids, dtype="int64"))})
    write_frame(conn, table, frame, on_conflict="error")
    analyze(conn, table.name)


def analyze(conn: Connection, table_name: str) -> None:
    """PostgreSQL: measure a table for the planner (a temporary table has no statistics until then). SQLite: nothing."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f'ANALYZE "{table_name}"')


# The share of a table's rows written since the planner last looked that makes it look again
# (PostgreSQL's autovacuum_analyze_scale_factor; autovacuum does it too, but only a minute or more later).
STATISTICS_SHARE = 0.1


def refresh_statistics(engine: Engine, written: Mapping[str, int], share: float = STATISTICS_SHARE) -> list[str]:
    """PostgreSQL: `ANALYZE` the tables of `written` (name -> rows just written) the planner has never
    measured or that grew by more than `share` since; return their names. SQLite: nothing.

    Without it the next step of the night plans on the statistics of an empty table (an initial load,
    a first segments run): seq scans and hash joins of the whole history for a few thousand customers.
    """
    if engine.dialect.name != "postgresql":
        return []
    names = [name for name, rows in written.items() if rows > 0]
    if not names:
        return []
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        # reltuples is -1 until the first ANALYZE (PostgreSQL 14+), 0 for a table measured empty.
        measured = dict(
            conn.execute(
                text("SELECT relname, reltuples FROM pg_class WHERE relkind = 'r' AND relname = ANY(:names)"),
                {"names": names},
            ).all()
        )
        stale = [n for n in names if n in measured and (measured[n] <= 0 or written[n] > share * measured[n])]
        for name in stale:
            analyze(conn, name)
    return stale
