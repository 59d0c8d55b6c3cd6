"""Ingestion's IO: watermark pulls from the source database and loads of landing files.

Each unit of work (a chunk of a source table, or one landing file) is written in one
warehouse transaction together with its quarantine rows, its counts and its watermark or
manifest entry, so a crash never loses or doubles a row and a re-run resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime

import numpy as np
import pandas as pd
from sqlalchemy import Connection, Engine, Select, inspect, select, update
from sqlalchemy.exc import DataError

from crm.core.contracts import ENTITIES, LANDING_ENTITIES, SOURCE_ENTITIES, Entity
from crm.core.dates import end_of
from crm.core.db import keyset_pages, last_key, upsert, write_frame, write_rows
from crm.core.errors import OperatorError, one_line
from crm.core.pipeline import WriteBehind, read_ahead, reads_in_process, writes_behind
from crm.core.settings import engine_of, engine_url
from crm.core.storage import LocalStore, ObjectStore, open_store
from crm.ingest import queries
from crm.ingest.bulk import loading_in_bulk
from crm.ingest.counts import FileStatus, SourceCounts, SourceStatus
from crm.ingest.coverage import coverage_rows, rejected_business_dates, row_business_dates
from crm.ingest.dayguard import day_guard_refusal
from crm.ingest.history import record_versions
from crm.ingest.landing import MAX_KEY_CHARS, LandingFile, MisplacedFile
from crm.ingest.parsing import MalformedFileError, file_checksum, parse_landing_file
from crm.ingest.validation import (
    DEFAULT_PLAUSIBLE_SINCE,
    MissingColumnsError,
    ValidationResult,
    validate_frame,
)
from models import source as source_model
from models.ingest import ingest_batches, ingest_coverage, ingest_watermarks, landing_files, quarantined_rows, staging

log = logging.getLogger(__name__)


def _id_index(conn: Connection, stmt: Select) -> pd.Index:
    """The integer ids a one-column query returns, as an index (plain tuples: millions of ids)."""
    rows = conn.execute(stmt).cursor.fetchall()
    return pd.Index(np.fromiter(itertools.chain.from_iterable(rows), dtype=np.int64, count=len(rows)))


def load_known_ids(conn: Connection, entity: Entity) -> dict[str, pd.Index]:
    """Keys of every entity `entity` references, as they stand in the warehouse now."""
    return {
        referenced: _id_index(conn, queries.entity_ids(referenced)) for referenced in set(entity.references.values())
    }


def _record_batch(
    conn: Connection,
    entity: Entity,
    result: ValidationResult,
    *,
    source: str,
    as_of: date,
    business_date: date | None = None,
    coverage: bool = True,
    bulk: bool = False,
) -> tuple[int, int]:
    """Write valid rows, quarantine, counts and business-date coverage of one batch; return (loaded, duplicates).

    `business_date` is a landing file's date (its rows are stamped with it); without it, each
    source row belongs to the day of its change. `coverage=False` for parents pulled ahead: their
    change is counted on its own day, when the normal pull reads it. `bulk`: an initial load,
    the keys are most likely new (`write_frame(..., fresh=True)`).
    """
    frame = result.valid.assign(ingested_on=pd.Timestamp(business_date or as_of))
    on_conflict = "ignore" if entity.immutable else "update"
    staged = write_rows(
        conn, staging[entity.name], frame, on_conflict=on_conflict, fresh=bulk, track_new=entity.versioned
    )
    loaded = staged.rows
    # Same transaction: history never lags. Keys all new to `stg_*` have no version to close.
    record_versions(conn, entity, result.valid, as_of, fresh=bulk, staged=staged)
    duplicates = result.duplicates + (len(frame) - loaded if entity.immutable else 0)
    if business_date is not None:
        valid_days = pd.Series([business_date] * len(result.valid), dtype=object)
        rejected_days = pd.Series([business_date] * len(result.rejected), dtype=object)
    else:
        day_column = entity.updated_column or entity.event_time_column
        valid_days = row_business_dates(result.valid[day_column], as_of) if day_column else None
        rejected_days = rejected_business_dates(result.rejected["record"], day_column, as_of)
        if valid_days is None:
            valid_days = pd.Series([as_of] * len(result.valid), dtype=object)
    if len(result.rejected):
        rejected = result.rejected.assign(
            as_of=pd.Timestamp(as_of),
            business_date=pd.to_datetime(pd.Series(list(rejected_days), index=result.rejected.index, dtype=object)),
            source=source,
            entity=entity.name,
        )
        rejected["row_number"] = rejected["row_number"].astype("Int64")
        rejected["record_key"] = fit_text(rejected["record_key"], quarantined_rows.c.record_key.type.length)
        for column in ("reason", "record"):
            rejected[column] = storable_text(rejected[column])
        write_frame(conn, quarantined_rows, rejected, on_conflict="error")
    upsert(
        conn,
        ingest_batches,
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
    if coverage:
        rows = coverage_rows(
            source=source,
            entity=entity,
            valid_dates=valid_days,
            rejected_dates=rejected_days,
            loaded=loaded if entity.immutable else len(result.valid),
            duplicates=result.duplicates,
        )
        upsert(
            conn, ingest_coverage, rows, increment=("rows_read", "rows_loaded", "rows_quarantined", "rows_duplicate")
        )
    return loaded, duplicates


TRUNCATED = "…(truncated)"


def fit_text(values: pd.Series, limit: int) -> pd.Series:
    """Text cut to `limit` characters with a marker (a key longer than its column, on every engine)."""
    values = storable_text(values)
    long = values.str.len().fillna(0).to_numpy() > limit
    if not long.any():
        return values
    out = values.copy()
    out[long] = values[long].str.slice(0, limit - len(TRUNCATED)) + TRUNCATED
    return out


def storable_text(values: pd.Series) -> pd.Series:
    """Text any database stores: a NUL (PostgreSQL refuses it) written as `\\u0000`."""
    text = values.astype(object)
    has_nul = text.map(lambda v: isinstance(v, str) and "\x00" in v).to_numpy(bool)
    if has_nul.any():
        text = text.copy()
        text[has_nul] = text[has_nul].str.replace("\x00", "\\u0000", regex=False)
    return text


def read_watermark(conn: Connection, entity: Entity) -> tuple[datetime, tuple] | None:
    """The (updated_at, key) of the last row loaded from the source table, if any."""
    row = conn.execute(queries.watermark(entity)).first()
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
    bulk: bool | None = None,
) -> SourceCounts:
    """Copy rows changed since the watermark and up to the end of `as_of`, chunk by chunk; the next chunk is
    read and validated while one is written (PostgreSQL: writes on a thread; SQLite, initial load: reads in a
    worker process, `read_ahead`).

    `bulk`: an initial load is under way (default: whether its indexes are set aside, `loading_in_bulk`).
    """
    if bulk is None:
        bulk = loading_in_bulk(warehouse)
    table = source_model.tables[entity.name]
    counts = SourceCounts(source=f"db:{entity.name}", entity=entity.name, status=SourceStatus.UP_TO_DATE)
    with warehouse.connect() as conn:
        in_warehouse = load_known_ids(conn, entity)
        mark = read_watermark(conn, entity)
    with source.connect() as src:
        counts.rows_without_watermark = int(src.execute(queries.without_watermark(table, entity)).scalar_one())
    after = (mark[0], *mark[1]) if mark else None

    def write(result: ValidationResult, watermark_at: datetime, key: list) -> tuple[int, int]:
        with warehouse.begin() as conn:
            pull_ahead_parents(source, conn, entity, result.valid, in_warehouse, as_of, bulk=bulk)
            written = _record_batch(conn, entity, result, source=counts.source, as_of=as_of, bulk=bulk)
            row = {
                "source_table": entity.name,
                "watermark_at": watermark_at,
                "watermark_key": json.dumps(key),
                "as_of": as_of,
            }
            upsert(conn, ingest_watermarks, [row])
        return written

    def count(done: Iterator[tuple[tuple[int, ValidationResult], tuple[int, int]]]) -> None:
        for (chunk_number, result), (loaded, duplicates) in done:
            counts.status = SourceStatus.LOADED
            counts.rows_read += result.rows_read
            counts.rows_loaded += loaded
            counts.rows_quarantined += len(result.rejected)
            counts.rows_duplicate += duplicates
            if on_chunk:
                on_chunk(chunk_number, counts.rows_read)

    # PostgreSQL: the next chunk is read and validated while this one is written (its own transaction, in order).
    # SQLite, initial load: the next chunks are read and validated in a worker process while this one is written.
    in_process = bulk and reads_in_process(warehouse, source)
    with (
        read_ahead(
            _validated_pages,
            engine_url(source) if in_process else source,
            entity,
            as_of,
            chunk_rows,
            after,
            in_warehouse,
            in_process=in_process,
            name=f"read-{entity.name}",
        ) as pages,
        WriteBehind[tuple[int, ValidationResult], tuple[int, int]](
            f"pull-{entity.name}", threaded=writes_behind(warehouse)
        ) as writer,
    ):
        for chunk_number, result, watermark_at, key in pages:
            writer.submit((chunk_number, result), write, result, watermark_at, key)
            count(writer.completed())
        count(writer.results())
    return counts


def _validated_pages(
    source: Engine | str,
    entity: Entity,
    as_of: date,
    chunk_rows: int,
    after: tuple | None,
    in_warehouse: dict[str, pd.Index],
) -> Iterator[tuple[int, ValidationResult, datetime, list]]:
    """The source rows changed after `after` and up to the end of `as_of`, page by page, validated:
    (page number, result, watermark of its last row). `in_warehouse`: the referenced keys the warehouse holds."""
    source = engine_of(source)
    table = source_model.tables[entity.name]
    order = [table.c[entity.updated_column], *[table.c[k] for k in entity.key]]
    known = known_source_ids(source, in_warehouse, as_of)

    def read(stmt: Select) -> pd.DataFrame:
        with source.connect() as src:
            return pd.read_sql(stmt, src)

    pages = keyset_pages(queries.changed_up_to(table, entity, as_of), order, read, chunk_rows=chunk_rows, after=after)
    for chunk_number, chunk in enumerate(pages, start=1):
        result = validate_frame(chunk, entity, as_of=as_of, known_ids=known)
        watermark_at, *key = last_key(chunk, [c.name for c in order])
        yield chunk_number, result, watermark_at, key


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
    bulk: bool = False,
) -> int:
    """Load the parents `rows` reference that the warehouse lacks, in their current source version.

    The source keeps only each row's latest version: a loan issued on the day but repaid the
    next morning lies past the day's watermark, while its payment of the day does not. Without
    the parent the warehouse would hold an orphan payment until the next run (and the quality
    suite's `known_reference` rule would close the send gate). The parent is loaded now, in the
    transaction of its children, and loaded again in the normal way when its change comes into
    a later window. A parent whose current version is refused is not quarantined here: the normal
    pull does it on the day of that change (once). `in_warehouse` is updated with the keys loaded;
    returns how many rows.
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
                pull_ahead_parents(source, conn, parent, found, grand, as_of, depth=depth + 1, bulk=bulk)
            # Its event happened by the day; only its latest change lies after it.
            result = validate_frame(found, parent, as_of=as_of, known_ids=grand)
            # A parent whose latest version is refused is judged (and quarantined, once) on the day of that
            # change, when the normal pull reads it; quarantined here too, that day would count it twice.
            result.rejected = result.rejected.iloc[0:0]
            loaded, _ = _record_batch(
                conn, parent, result, source=f"db:{parent_name}", as_of=as_of, coverage=False, bulk=bulk
            )
            total += loaded
            in_warehouse[parent_name] = in_warehouse[parent_name].union(
                pd.Index(result.valid[parent.key[0]].astype(np.int64))
            )
    if total and depth == 0:
        log.info("%s: loaded %d parent row(s) whose latest change lies after %s", entity.name, total, as_of)
    return total


def _keys(values: pd.Series) -> pd.Index:
    """The distinct integer keys in a reference column (nulls left out)."""
    return pd.Index(pd.to_numeric(values, errors="coerce").dropna().astype(np.int64).unique())


def _warehouse_keys(conn: Connection, entity_name: str, values: pd.Series) -> pd.Index:
    """Which of `values` are keys of the entity's warehouse table (only those are read)."""
    key = staging[entity_name].c[ENTITIES[entity_name].key[0]]
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
    return _id_index(src, select(table.c[entity.key[0]]).where(when < upper))


def load_landing_file(
    zone: ObjectStore,
    warehouse: Engine,
    landing_file: LandingFile,
    as_of: date,
    known_ids: dict[str, pd.Index] | None = None,
    *,
    source_db: Engine | None = None,
    in_warehouse: dict[str, pd.Index] | None = None,
    plausible_since: date = DEFAULT_PLAUSIBLE_SINCE,
    bulk: bool | None = None,
) -> SourceCounts:
    """Load one landing file once: skip it if its bytes were loaded (or rejected) before, report it if it changed.

    Whatever the bytes, the file ends loaded (bad rows quarantined) or rejected by name with a
    reason in `landing_files`; it never raises for its content, so it never stops other files.
    A rejected checksum is not read again until `request_retry` (`crm landing retry`).
    `known_ids` (from `load_known_ids`) saves re-reading the referenced keys for every file of a run.
    With `source_db` and `in_warehouse` (the keys the warehouse holds), `known_ids` may also hold keys
    that exist only in the source: those parents are pulled ahead (`pull_ahead_parents`).
    `bulk`: an initial load is under way (default: whether its indexes are set aside, `loading_in_bulk`);
    a file that changed since it was loaded is never written as a bulk load (its keys are there).
    """
    prepared = _read_landing_file(zone, warehouse, landing_file, known_ids, plausible_since)
    if isinstance(prepared, SourceCounts):
        return prepared
    if bulk is None:
        bulk = loading_in_bulk(warehouse)
    return _store_landing_file(warehouse, prepared, as_of, source_db=source_db, in_warehouse=in_warehouse, bulk=bulk)


def load_landing_files(
    zone: ObjectStore,
    warehouse: Engine,
    landing_files_: list[LandingFile],
    as_of: date,
    known_ids: dict[str, pd.Index],
    *,
    source_db: Engine | None = None,
    in_warehouse: dict[str, pd.Index] | None = None,
    plausible_since: date = DEFAULT_PLAUSIBLE_SINCE,
    bulk: bool | None = None,
    on_file: Callable[[LandingFile, SourceCounts], None] | None = None,
) -> list[SourceCounts]:
    """`load_landing_file` for each file in order; the next file is read and validated while one is written:
    PostgreSQL writes on a thread, SQLite during an initial load of local files reads in a worker process.

    Each file keeps its own transaction, committed before the next file's starts; `on_file` is called
    for each file in order once its outcome is known. A write that fails for another reason than the
    file's content stops the files after it (as it would inline): they are loaded by a retry.
    """
    if bulk is None:
        bulk = loading_in_bulk(warehouse)
    out: list[SourceCounts] = []

    def report(done: Iterator[tuple[LandingFile, SourceCounts]]) -> None:
        for landing_file, counts in done:
            out.append(counts)
            if on_file:
                on_file(landing_file, counts)

    # SQLite, initial load, local files: the next files are read and validated in a worker process.
    in_process = bulk and isinstance(zone, LocalStore) and reads_in_process(warehouse)
    with (
        read_ahead(
            _read_landing_files,
            zone.url if in_process else zone,
            engine_url(warehouse) if in_process else warehouse,
            landing_files_,
            known_ids,
            plausible_since,
            in_process=in_process,
            name="read-landing-files",
        ) as prepared_files,
        WriteBehind[LandingFile, SourceCounts]("landing", threaded=writes_behind(warehouse)) as writer,
    ):
        for landing_file, prepared in zip(landing_files_, prepared_files, strict=True):
            if isinstance(prepared, SourceCounts):
                writer.done(landing_file, prepared)
            else:
                writer.submit(
                    landing_file,
                    _store_landing_file,
                    warehouse,
                    prepared,
                    as_of,
                    source_db=source_db,
                    in_warehouse=in_warehouse,
                    bulk=bulk,
                )
            report(writer.completed())
        report(writer.results())
    return out


def _read_landing_files(
    zone: ObjectStore | str,
    warehouse: Engine | str,
    landing_files_: list[LandingFile],
    known_ids: dict[str, pd.Index],
    plausible_since: date,
) -> Iterator[SourceCounts | _ReadFile]:
    """`_read_landing_file` for each file in order (in a worker process: `zone` and `warehouse` by URL)."""
    zone = open_store(zone) if isinstance(zone, str) else zone
    warehouse = engine_of(warehouse)
    for landing_file in landing_files_:
        yield _read_landing_file(zone, warehouse, landing_file, known_ids, plausible_since)


@dataclass
class _ReadFile:
    """A landing file read and validated (or found unreadable), ready to be written (or rejected)."""

    landing_file: LandingFile
    result: ValidationResult | None
    manifest_row: dict
    changed: bool
    failure: str | None = None  # why the file is rejected (unreadable), instead of a result


def _reject(warehouse: Engine, manifest_row: dict, landing_file: LandingFile, reason: str) -> SourceCounts:
    error = f"{landing_file.key}: {reason}"
    log.error("landing file rejected: %s", error)
    with warehouse.begin() as conn:
        upsert(conn, landing_files, [{**manifest_row, "status": FileStatus.FAILED, "error": error}])
    return SourceCounts(
        source=f"file:{landing_file.key}", entity=landing_file.entity.name, status=SourceStatus.FAILED, error=error
    )


def _read_landing_file(
    zone: ObjectStore,
    warehouse: Engine,
    landing_file: LandingFile,
    known_ids: dict[str, pd.Index] | None,
    plausible_since: date,
) -> SourceCounts | _ReadFile:
    """The file's outcome when it needs no write (loaded or rejected before), else the file read: its rows
    validated, or why it is refused (`failure`: unreadable), which `_store_landing_file` puts on record."""
    entity = landing_file.entity
    source = f"file:{landing_file.key}"
    with warehouse.connect() as conn:
        seen = conn.execute(queries.manifest_entries(landing_file.key)).all()
    # The store says the bytes are those read before (same version and size): no need to read them again,
    # which would make every night read the whole landing history.
    unchanged = [
        row.status
        for row in seen
        if landing_file.version and row.version == landing_file.version and row.size_bytes == landing_file.size_bytes
    ]
    if FileStatus.LOADED in unchanged:
        return SourceCounts(source=source, entity=entity.name, status=SourceStatus.ALREADY_LOADED)
    if FileStatus.FAILED in unchanged:
        return SourceCounts(source=source, entity=entity.name, status=SourceStatus.ALREADY_REJECTED)
    data = zone.read_bytes(landing_file.key)
    checksum = file_checksum(data)
    for status, outcome in (
        (FileStatus.LOADED, SourceStatus.ALREADY_LOADED),
        (FileStatus.FAILED, SourceStatus.ALREADY_REJECTED),
    ):
        if any(row.checksum == checksum and row.status == status for row in seen):
            if landing_file.version:  # touched, not changed: remember the new version
                with warehouse.begin() as conn:
                    conn.execute(queries.remember_version(landing_file.key, checksum, landing_file.version))
            return SourceCounts(source=source, entity=entity.name, status=outcome)
    changed = any(row.checksum != checksum and row.status == FileStatus.LOADED for row in seen)

    manifest_row = {
        "file_key": landing_file.key,
        "checksum": checksum,
        "entity": entity.name,
        "business_date": landing_file.business_date,
        "size_bytes": len(data),
        "version": landing_file.version or None,
    }
    if known_ids is None:
        with warehouse.connect() as conn:
            known_ids = load_known_ids(conn, entity)
    try:
        parsed = parse_landing_file(data, landing_file)
        result = validate_frame(
            parsed.frame,
            entity,
            as_of=landing_file.business_date,  # a file's rows are judged on its day, whichever run reads it
            known_ids=known_ids,
            row_numbers=parsed.row_numbers,
            origin="csv" if entity.file_format == "csv" else "json",
            plausible_since=plausible_since,
            received=parsed.received,
        )
    except (MalformedFileError, MissingColumnsError) as exc:
        return _ReadFile(landing_file, None, manifest_row, changed, failure=str(exc))
    except Exception as exc:  # a bug on some input: that file is rejected by name, the night goes on
        log.exception("landing file %s could not be read", landing_file.key)
        reason = f"could not be read ({type(exc).__name__}: {one_line(exc, 200)}); a bug, see the run's logs"
        return _ReadFile(landing_file, None, manifest_row, changed, failure=reason)

    unreadable = parsed.unreadable
    if len(unreadable):
        unreadable = unreadable.assign(record_key=None, rule="malformed_row")
        result.rejected = pd.concat([unreadable[result.rejected.columns], result.rejected], ignore_index=True)
        result.rejected = result.rejected.sort_values("row_number", kind="stable", ignore_index=True)
    return _ReadFile(landing_file, result, manifest_row, changed)


def _store_landing_file(
    warehouse: Engine,
    read: _ReadFile,
    as_of: date,
    *,
    source_db: Engine | None,
    in_warehouse: dict[str, pd.Index] | None,
    bulk: bool,
) -> SourceCounts:
    """Write a file read by `_read_landing_file` in one transaction with its manifest entry (or reject it)."""
    landing_file, result, changed = read.landing_file, read.result, read.changed
    manifest_row = {**read.manifest_row, "as_of": as_of}
    if result is None:
        return _reject(warehouse, manifest_row, landing_file, read.failure or "could not be read")
    entity = landing_file.entity
    source = f"file:{landing_file.key}"
    bulk = bulk and not changed
    try:
        with warehouse.begin() as conn:
            if source_db is not None and in_warehouse is not None:
                pull_ahead_parents(source_db, conn, entity, result.valid, in_warehouse, as_of, bulk=bulk)
            loaded, duplicates = _record_batch(
                conn, entity, result, source=source, as_of=as_of, business_date=landing_file.business_date, bulk=bulk
            )
            upsert(conn, landing_files, [{**manifest_row, "status": FileStatus.LOADED, "error": None}])
    except Exception as exc:
        if not _is_data_error(exc):
            raise  # a lost connection is retried by the task; a bug fails loudly
        log.exception("landing file %s could not be stored", landing_file.key)
        return _reject(
            warehouse,
            manifest_row,
            landing_file,
            f"could not be stored ({one_line(exc, 200)}); a bug, see the run's logs",
        )
    if changed:
        log.warning(
            "landing file %s changed since it was loaded (new checksum %s): loaded its new rows",
            landing_file.key,
            manifest_row["checksum"][:12],
        )
    return SourceCounts(
        source=source,
        entity=entity.name,
        status=SourceStatus.CHANGED if changed else SourceStatus.LOADED,
        rows_read=result.rows_read,
        rows_loaded=loaded,
        rows_quarantined=len(result.rejected),
        rows_duplicate=duplicates,
    )


def _is_data_error(exc: BaseException) -> bool:
    """A value the database refused (SQLSTATE class 22, e.g. a string too long): the file's fault, not the server's."""
    if isinstance(exc, DataError):
        return True
    sqlstate = getattr(exc, "sqlstate", None) or getattr(getattr(exc, "orig", None), "sqlstate", None)
    return str(sqlstate or "").startswith("22")


def stored_key(key: str) -> str:
    """A landing key as `landing_files.file_key` holds it: valid UTF-8, at most `MAX_KEY_CHARS` (unique)."""
    text = key.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    if len(text) <= MAX_KEY_CHARS:
        return text
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    return f"{text[: MAX_KEY_CHARS - len(digest) - 1]}…{digest}"


def record_misplaced_files(
    zone: ObjectStore, warehouse: Engine, misplaced: list[MisplacedFile], as_of: date
) -> list[SourceCounts]:
    """Put files that break the naming contract on record (status `misplaced`) the first time a run sees them."""
    if not misplaced:
        return []
    with warehouse.connect() as conn:
        on_record = {(row.file_key, row.size_bytes) for row in conn.execute(queries.misplaced_entries())}
    landing = {e.name for e in LANDING_ENTITIES}
    out = []
    for item in misplaced:
        key = stored_key(item.key)
        if (key, item.size_bytes) in on_record:
            continue  # reported by the run that first saw it
        try:
            checksum = file_checksum(zone.read_bytes(item.key))
        except OSError:  # unreadable (permissions): still on record, under a checksum of its name
            checksum = "unreadable-" + hashlib.sha256(key.encode()).hexdigest()[:53]
        error = f"{key}: misplaced: {item.reason}"
        entity = item.folder if item.folder in landing else "unknown"
        row = {
            "file_key": key,
            "checksum": checksum,
            "entity": entity,
            "business_date": item.day or as_of,
            "size_bytes": item.size_bytes,
            "status": FileStatus.MISPLACED,
            "error": error,
            "as_of": as_of,
        }
        with warehouse.begin() as conn:
            upsert(conn, landing_files, [row])
        log.error("landing file misplaced: %s", error)
        out.append(SourceCounts(source=f"file:{key}", entity=entity, status=SourceStatus.MISPLACED, error=error))
    return out


def request_retry(warehouse: Engine, file_key: str) -> list[dict]:
    """Clear the rejection of a landing file so the next ingest reads it again; return what was cleared."""
    with warehouse.begin() as conn:
        cleared = [dict(row._mapping) for row in conn.execute(queries.rejected_entries(file_key))]
        if not cleared:
            raise OperatorError(
                f"no rejected or misplaced landing file {file_key!r} on record; "
                "give its path under the landing root as `crm report` or the ingest-summary shows it"
            )
        conn.execute(
            update(landing_files)
            .where(
                landing_files.c.file_key == file_key,
                landing_files.c.status.in_([FileStatus.FAILED, FileStatus.MISPLACED]),
            )
            .values(status=FileStatus.RETRY)
        )
    return cleared


def read_day_bounds(source: Engine, warehouse: Engine) -> tuple[date | None, date | None]:
    """The day of the source's newest change and the last business day ingested (None when there is none)."""
    with source.connect() as src:
        present = set(inspect(src).get_table_names())
        missing = [e.name for e in SOURCE_ENTITIES if e.name not in present]
        if missing:
            raise OperatorError(
                f"the source database has no table {', '.join(missing)}; check CRM_SOURCE_URL "
                "(it must be the back end's database, docs/landing-files.md lists its tables)"
            )
        newest = [src.execute(queries.newest_change(source_model.tables[e.name], e)).scalar() for e in SOURCE_ENTITIES]
    newest_day = max((_day(v) for v in newest if v is not None), default=None)
    with warehouse.connect() as conn:
        if not inspect(conn).has_table(ingest_batches.name):
            return newest_day, None  # a fresh warehouse, not migrated yet
        batches, files = conn.execute(queries.last_ingested_day()).one()
    last = max((_day(v) for v in (batches, files) if v is not None), default=None)
    return newest_day, last


def _day(value: date | datetime | str) -> date:
    if isinstance(value, str):  # SQLite aggregates may come back as text
        return datetime.fromisoformat(value).date()
    return value.date() if isinstance(value, datetime) else value


class DayRefused(OperatorError):
    """A business day the day guard will not ingest without `force`."""


def check_business_day(
    source: Engine, warehouse: Engine, as_of: date, *, max_gap_days: int, force: bool = False
) -> str | None:
    """Refuse (`DayRefused`) a day after the source's data or far beyond the last ingested day, unless `force`.

    Returns the reason it was forced past, or None when the day needed no force.
    """
    newest, last = read_day_bounds(source, warehouse)
    refusal = day_guard_refusal(as_of, newest, last, max_gap_days=max_gap_days)
    if refusal is None:
        return None
    if not force:
        raise DayRefused(f"refusing to ingest {as_of}: {refusal}; pass --force to ingest it anyway")
    return refusal


def quarantine_summary(conn: Connection, as_of: date, *, by_business_date: bool = False) -> pd.DataFrame:
    """Quarantined rows by source and rule, with one example reason each: those the run of `as_of` loaded,
    or (`by_business_date`) those belonging to `as_of` whichever run loaded them."""
    stmt = queries.quarantine_by_rule(as_of, by_business_date=by_business_date)
    return pd.DataFrame(conn.execute(stmt).all(), columns=["source", "rule", "rows", "example"])
