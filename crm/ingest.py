"""Ingestion: watermark pulls from the source database and loads of landing files.

Each unit of work (a chunk of a source table, or one landing file) is written in one
warehouse transaction together with its quarantine rows, its counts and its watermark or
manifest entry, so a crash never loses or doubles a row and a re-run resumes where it stopped.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import date, datetime

import numpy as np
import pandas as pd
from sqlalchemy import Connection, Engine, func, select, tuple_

from crm.contracts import ENTITIES, Entity
from crm.dates import end_of
from crm.db import upsert, write_frame
from crm.landing import LandingFile, LandingZone
from crm.validation import MissingColumnsError, ValidationResult, validate_frame
from models import source as source_model
from models import warehouse as wh

log = logging.getLogger(__name__)


@dataclass
class SourceCounts:
    """What happened to one source (a table or a file) in one run."""

    source: str
    entity: str
    status: str  # loaded | already_loaded | changed | failed | up_to_date
    rows_read: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    rows_duplicate: int = 0
    error: str | None = None

    def as_row(self) -> dict:
        """A flat dict for artifacts and reports."""
        return asdict(self)


class MalformedFileError(ValueError):
    """A landing file that cannot be read as its contract says."""


# --------------------------------------------------------------------------- known ids

def load_known_ids(conn: Connection, entity: Entity) -> dict[str, pd.Index]:
    """Keys of every entity `entity` references, as they stand in the warehouse now."""
    known = {}
    for referenced in set(entity.references.values()):
        target = ENTITIES[referenced]
        table = wh.staging[referenced]
        rows = conn.execute(select(table.c[target.key[0]])).cursor.fetchall()  # plain tuples: millions of ids
        known[referenced] = pd.Index(np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows)))
    return known


# --------------------------------------------------------------------------- shared write

def _record_batch(
    conn: Connection,
    entity: Entity,
    result: ValidationResult,
    *,
    source: str,
    as_of: date,
) -> tuple[int, int]:
    """Write valid rows, quarantine and counts of one batch; return (loaded, duplicates)."""
    frame = result.valid.assign(ingested_on=pd.Timestamp(as_of))
    loaded = write_frame(conn, wh.staging[entity.name], frame, on_conflict="ignore" if entity.immutable else "update")
    duplicates = result.duplicates + (len(frame) - loaded if entity.immutable else 0)
    if len(result.rejected):
        rejected = result.rejected.assign(as_of=pd.Timestamp(as_of), source=source, entity=entity.name)
        rejected["row_number"] = rejected["row_number"].astype("Int64")
        write_frame(conn, wh.quarantined_rows, rejected, on_conflict="error")
    upsert(
        conn,
        wh.ingest_batches,
        [
            {
                "as_of": as_of,
                "source": source,
                "entity": entity.name,
                "rows_read": result.rows_read,
                "rows_loaded": loaded,
                "rows_quarantined": len(result.rejected),
                "rows_duplicate": duplicates,
            }
        ],
        increment=("rows_read", "rows_loaded", "rows_quarantined", "rows_duplicate"),
    )
    return loaded, duplicates


# --------------------------------------------------------------------------- source database

def read_watermark(conn: Connection, entity: Entity) -> tuple[datetime, tuple] | None:
    """The (updated_at, key) of the last row loaded from the source table, if any."""
    row = conn.execute(
        select(wh.ingest_watermarks.c.watermark_at, wh.ingest_watermarks.c.watermark_key).where(
            wh.ingest_watermarks.c.source_table == entity.name
        )
    ).first()
    if row is None:
        return None
    return row.watermark_at, tuple(json.loads(row.watermark_key))


def pull_source_table(
    source: Engine,
    warehouse: Engine,
    entity: Entity,
    as_of: date,
    *,
    chunk_rows: int = 100_000,
    on_chunk: Callable[[int, int], None] | None = None,
) -> SourceCounts:
    """Copy rows changed since the watermark and up to the end of `as_of`, chunk by chunk."""
    table = source_model.tables[entity.name]
    updated = table.c[entity.updated_column]
    order = (updated, *[table.c[k] for k in entity.key])
    upper = end_of(as_of)
    counts = SourceCounts(source=f"db:{entity.name}", entity=entity.name, status="up_to_date")
    with warehouse.connect() as conn:
        in_warehouse = load_known_ids(conn, entity)
        mark = read_watermark(conn, entity)
    known = known_source_ids(source, in_warehouse, as_of)
    chunk_number = 0
    while True:
        stmt = select(table).where(updated < upper)
        if mark is not None:
            stmt = stmt.where(tuple_(*order) > tuple_(mark[0], *mark[1]))
        stmt = stmt.order_by(*order).limit(chunk_rows)
        with source.connect() as src:
            chunk = pd.read_sql(stmt, src)
        if chunk.empty:
            break
        chunk_number += 1
        result = validate_frame(chunk, entity, as_of=as_of, known_ids=known)
        last = chunk.iloc[-1]
        mark = (pd.Timestamp(last[entity.updated_column]).to_pydatetime(), tuple(_plain(last[k]) for k in entity.key))
        with warehouse.begin() as conn:
            pull_ahead_parents(source, conn, entity, result.valid, in_warehouse, as_of)
            loaded, duplicates = _record_batch(conn, entity, result, source=counts.source, as_of=as_of)
            upsert(
                conn,
                wh.ingest_watermarks,
                [
                    {
                        "source_table": entity.name,
                        "watermark_at": mark[0],
                        "watermark_key": json.dumps(mark[1]),
                        "as_of": as_of,
                    }
                ],
            )
        counts.status = "loaded"
        counts.rows_read += result.rows_read
        counts.rows_loaded += loaded
        counts.rows_quarantined += len(result.rejected)
        counts.rows_duplicate += duplicates
        if on_chunk:
            on_chunk(chunk_number, counts.rows_read)
        if len(chunk) < chunk_rows:
            break
    return counts


PULL_AHEAD_BATCH = 10_000


def pull_ahead_parents(
    source: Engine,
    conn: Connection,
    entity: Entity,
    rows: pd.DataFrame,
    in_warehouse: dict[str, pd.Index],
    as_of: date,
    *,
    depth: int = 0,
) -> int:
    """Load the parents `rows` reference that the warehouse lacks, in their current source version.

    The source keeps only each row's latest version: a loan issued on the day but repaid the
    next morning lies past the day's watermark, while its payment of the day does not. Without
    the parent the warehouse would hold an orphan payment until the next run (and the quality
    suite's `known_reference` rule would close the send gate). The parent is loaded now, in the
    transaction of its children, and loaded again in the normal way when its change comes into
    a later window. `in_warehouse` is updated with the keys loaded; returns how many rows.
    """
    total = 0
    for column, parent_name in entity.references.items():
        if parent_name not in in_warehouse or column not in rows:
            continue
        missing = _keys(rows[column]).difference(in_warehouse[parent_name])
        if missing.empty:
            continue
        parent = ENTITIES[parent_name]
        table = source_model.tables[parent_name]
        key = table.c[parent.key[0]]
        # Rows of the window that are missing were quarantined: never read them twice.
        ahead = table.c[parent.updated_column] >= end_of(as_of)
        for start in range(0, len(missing), PULL_AHEAD_BATCH):
            batch = missing[start : start + PULL_AHEAD_BATCH].tolist()
            with source.connect() as src:
                found = pd.read_sql(select(table).where(key.in_(batch), ahead).order_by(key), src)
            if found.empty:
                continue
            grand = {name: _warehouse_keys(conn, name, found[col]) for col, name in parent.references.items()}
            if depth < 3 and grand:
                pull_ahead_parents(source, conn, parent, found, grand, as_of, depth=depth + 1)
            # Its event happened by the day; only its latest change lies after it.
            result = validate_frame(found, parent, as_of=as_of, known_ids=grand)
            loaded, _ = _record_batch(conn, parent, result, source=f"db:{parent_name}", as_of=as_of)
            total += loaded
            in_warehouse[parent_name] = in_warehouse[parent_name].union(pd.Index(result.valid[parent.key[0]].astype(np.int64)))
    if total and depth == 0:
        log.info("%s: loaded %d parent row(s) whose latest change lies after %s", entity.name, total, as_of)
    return total


def _keys(values: pd.Series) -> pd.Index:
    """The distinct integer keys in a reference column (nulls left out)."""
    return pd.Index(pd.to_numeric(values, errors="coerce").dropna().astype(np.int64).unique())


def _warehouse_keys(conn: Connection, entity_name: str, values: pd.Series) -> pd.Index:
    """Which of `values` are keys of the entity's warehouse table (only those are read)."""
    key = wh.staging[entity_name].c[ENTITIES[entity_name].key[0]]
    wanted = _keys(values).tolist()
    found: list[int] = []
    for start in range(0, len(wanted), PULL_AHEAD_BATCH):
        found += conn.execute(select(key).where(key.in_(wanted[start : start + PULL_AHEAD_BATCH]))).scalars().all()
    return pd.Index(np.asarray(found, dtype=np.int64))


def known_source_ids(source: Engine, in_warehouse: dict[str, pd.Index], as_of: date) -> dict[str, pd.Index]:
    """Keys a reference may point at on `as_of`: in the warehouse, or in the source by the end of the day."""
    with source.connect() as src:
        return {name: ids.union(_existing_source_ids(src, name, end_of(as_of))) for name, ids in in_warehouse.items()}


def _existing_source_ids(src: Connection, entity_name: str, upper: datetime) -> pd.Index:
    """Keys of source rows that existed before `upper`, whatever their latest change.

    A child (a status change, a payment) may reference a parent whose newest version lies after
    the business day being loaded (e.g. replaying a past day): the parent did exist, so the
    child is valid; the parent itself lands when its own change comes into the window.
    """
    entity = ENTITIES[entity_name]
    table = source_model.tables[entity_name]
    when = table.c[entity.event_time_column or entity.updated_column]
    rows = src.execute(select(table.c[entity.key[0]]).where(when < upper)).cursor.fetchall()  # plain tuples: millions
    return pd.Index(np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows)))


def _plain(value):
    """A JSON-able Python scalar from a pandas/numpy one."""
    if isinstance(value, np.generic):
        return value.item()
    return value


# --------------------------------------------------------------------------- landing files

def parse_landing_file(data: bytes, landing_file: LandingFile) -> tuple[pd.DataFrame, np.ndarray, pd.DataFrame]:
    """Rows of a landing file as strings, their 1-based row numbers, and rows unreadable as records."""
    if landing_file.compressed:
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise MalformedFileError(f"not a gzip file: {exc}") from exc
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise MalformedFileError(f"not UTF-8 text (byte {exc.start}: {exc.reason})") from exc
    if "\x00" in text:
        raise MalformedFileError("binary content (NUL bytes) in a text file")
    if landing_file.entity.file_format == "csv":
        return _parse_csv(text)
    frame, numbers, unreadable = _parse_jsonl(text)
    if frame.empty and len(frame.columns) == 0:  # a provider with nothing to report that day
        frame = pd.DataFrame(columns=landing_file.entity.column_names, dtype=object)
    return frame, numbers, unreadable


def _unreadable(rows: list[tuple[int, str, str]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["row_number", "reason", "record"])


def _parse_csv(text: str) -> tuple[pd.DataFrame, np.ndarray, pd.DataFrame]:
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    if not header:
        raise MalformedFileError("empty file: no header row")
    header = [h.strip() for h in header]
    width = len(header)
    good, numbers, bad = [], [], []
    try:
        for number, row in enumerate(reader, start=1):
            if len(row) == width:
                good.append(row)
                numbers.append(number)
            elif row:  # a blank line is not a row
                bad.append((number, f"has {len(row)} fields, the header has {width}", json.dumps(row, ensure_ascii=False)))
    except csv.Error as exc:
        raise MalformedFileError(f"CSV syntax error near data row {reader.line_num}: {exc}") from exc
    frame = pd.DataFrame(good, columns=header, dtype=object)
    return frame, np.asarray(numbers, dtype=np.int64), _unreadable(bad)


def _parse_jsonl(text: str) -> tuple[pd.DataFrame, np.ndarray, pd.DataFrame]:
    records, numbers, bad = [], [], []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            bad.append((number, f"not valid JSON: {exc.msg} at column {exc.colno}", json.dumps(line[:2000])))
            continue
        if not isinstance(record, dict):
            bad.append((number, "a JSON line must be an object", json.dumps(line[:2000])))
            continue
        records.append(record)
        numbers.append(number)
    if bad and not records:
        raise MalformedFileError(f"no line is a JSON object (first error, line {bad[0][0]}: {bad[0][1]})")
    frame = pd.DataFrame.from_records(records) if records else pd.DataFrame()
    # Keep values as they came (numbers stay numbers); validation types them.
    return frame.astype(object), np.asarray(numbers, dtype=np.int64), _unreadable(bad)


def file_checksum(data: bytes) -> str:
    """SHA-256 of a file's bytes."""
    return hashlib.sha256(data).hexdigest()


def load_landing_file(
    zone: LandingZone,
    warehouse: Engine,
    landing_file: LandingFile,
    as_of: date,
    known_ids: dict[str, pd.Index] | None = None,
    *,
    source_db: Engine | None = None,
    in_warehouse: dict[str, pd.Index] | None = None,
) -> SourceCounts:
    """Load one landing file once: skip it if its bytes were loaded before, report it if it changed.

    `known_ids` (from `load_known_ids`) saves re-reading the referenced keys for every file of a run.
    With `source_db` and `in_warehouse` (the keys the warehouse holds), `known_ids` may also hold keys
    that exist only in the source: those parents are pulled ahead (`pull_ahead_parents`).
    """
    entity = landing_file.entity
    source = f"file:{landing_file.key}"
    data = zone.read_bytes(landing_file.key)
    checksum = file_checksum(data)
    manifest = wh.landing_files
    with warehouse.connect() as conn:
        seen = conn.execute(
            select(manifest.c.checksum, manifest.c.status).where(manifest.c.file_key == landing_file.key)
        ).all()
    if any(row.checksum == checksum and row.status == "loaded" for row in seen):
        return SourceCounts(source=source, entity=entity.name, status="already_loaded")
    changed = any(row.checksum != checksum and row.status == "loaded" for row in seen)

    manifest_row = {
        "file_key": landing_file.key,
        "checksum": checksum,
        "entity": entity.name,
        "business_date": landing_file.business_date,
        "size_bytes": len(data),
        "as_of": as_of,
    }
    try:
        frame, row_numbers, unreadable = parse_landing_file(data, landing_file)
        if known_ids is None:
            with warehouse.connect() as conn:
                known_ids = load_known_ids(conn, entity)
        result = validate_frame(frame, entity, as_of=as_of, known_ids=known_ids, row_numbers=row_numbers)
    except (MalformedFileError, MissingColumnsError) as exc:
        error = f"{landing_file.key}: {exc}"
        log.error("landing file rejected: %s", error)
        with warehouse.begin() as conn:
            upsert(conn, manifest, [{**manifest_row, "status": "failed", "error": error}])
        return SourceCounts(source=source, entity=entity.name, status="failed", error=error)

    if len(unreadable):
        unreadable = unreadable.assign(record_key=None, rule="malformed_row")
        result.rejected = pd.concat([unreadable[result.rejected.columns], result.rejected], ignore_index=True)
        result.rejected = result.rejected.sort_values("row_number", kind="stable", ignore_index=True)
    with warehouse.begin() as conn:
        if source_db is not None and in_warehouse is not None:
            pull_ahead_parents(source_db, conn, entity, result.valid, in_warehouse, as_of)
        loaded, duplicates = _record_batch(conn, entity, result, source=source, as_of=as_of)
        upsert(conn, manifest, [{**manifest_row, "status": "loaded", "error": None}])
    if changed:
        log.warning("landing file %s changed since it was loaded (new checksum %s): loaded its new rows", landing_file.key, checksum[:12])
    return SourceCounts(
        source=source,
        entity=entity.name,
        status="changed" if changed else "loaded",
        rows_read=result.rows_read,
        rows_loaded=loaded,
        rows_quarantined=len(result.rejected),
        rows_duplicate=duplicates,
    )


def quarantine_summary(conn: Connection, as_of: date) -> pd.DataFrame:
    """Quarantined rows of a business day by source and rule, with one example reason each."""
    q = wh.quarantined_rows
    stmt = (
        select(q.c.source, q.c.rule, func.count().label("rows"), func.min(q.c.reason).label("example"))
        .where(q.c.as_of == as_of)
        .group_by(q.c.source, q.c.rule)
        .order_by(q.c.source, q.c.rule)
    )
    return pd.DataFrame(conn.execute(stmt).all(), columns=["source", "rule", "rows", "example"])
