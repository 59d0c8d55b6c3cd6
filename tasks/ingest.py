"""Ingestion tasks: one per source table, one per landing-file entity, and the report."""

from __future__ import annotations

import threading
from datetime import date

import pandas as pd
from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.states import Completed, Failed, State

from crm.core.contracts import ENTITIES
from crm.core.db import refresh_statistics
from crm.core.errors import Finding
from crm.core.settings import get_settings, source_engine, warehouse_engine
from crm.core.storage import open_store
from crm.ingest import (
    COUNT_COLUMNS,
    FINDING_STATUSES,
    SourceStatus,
    build_missing_indexes,
    builds_indexes_alongside,
    counts_table,
    drop_secondary_indexes,
    entity_tables,
    ingest_summary_markdown,
    ingest_totals,
    is_initial_load,
    known_source_ids,
    list_landing_files,
    load_ingest_config,
    load_known_ids,
    load_landing_files,
    loading_in_bulk,
    measure_tables,
    pull_source_table,
    quarantine_summary,
    record_misplaced_files,
    rows_written,
)
from crm.quality import load_quality_config
from tasks.common import retry_transient


class FilesRejected(Finding):
    """A loading task rejected landing files: a finding (never retried); `rows` are every file's counts."""

    def __init__(self, message: str, rows: list[dict]) -> None:
        super().__init__(message)
        self.rows = rows


def loading_state(rows: list[dict], what: str, data: object = None) -> State | object:
    """The state a loading task ends in: `Failed` when it rejected a file (red where the fault is), a
    `Quarantined` completion when a source's quarantine share is above the warning share, else its rows.

    `data` (default: the rows) is the data of a completion; a failure carries `FilesRejected` with the rows
    (a finding, so `retry_transient` never retries it), so the flow still reports every source.
    """
    data = rows if data is None else data
    logger = get_run_logger()
    rejected = [r for r in rows if r["status"] in FINDING_STATUSES]
    share = load_quality_config().ingestion.quarantine_share_warning
    heavy = [r for r in rows if r["rows_read"] and r["rows_quarantined"] / r["rows_read"] > share]
    quarantined = "; ".join(
        f"{r['source']}: {r['rows_quarantined']:,} of {r['rows_read']:,} rows quarantined "
        f"({r['rows_quarantined'] / r['rows_read']:.2%})"
        for r in heavy
    )
    if rejected:
        names = ", ".join(r["source"].removeprefix("file:") for r in rejected)
        message = f"{what}: {len(rejected)} file(s) rejected: {names}" + (f"; {quarantined}" if heavy else "")
        return Failed(message=message[:1000], data=FilesRejected(message, rows))
    if heavy:
        message = f"{what}: quarantine above the warning share {share:.2%}: {quarantined}"
        logger.warning("%s", message)
        return Completed(name="Quarantined", message=message[:1000], data=data)
    return data


@task(
    name="pull-source-table",
    task_run_name="pull {entity_name} from source",
    retries=2,
    retry_delay_seconds=[10, 60],  # a retry resumes from the committed watermark
    retry_condition_fn=retry_transient,
    tags=["source-db"],
)
def pull_source_table_task(entity_name: str, as_of: date) -> dict:
    """Copy one source table's changes up to the end of `as_of` into its `stg_` table."""
    logger = get_run_logger()
    settings = get_settings()
    counts = pull_source_table(
        source_engine(settings),
        warehouse_engine(settings),
        ENTITIES[entity_name],
        as_of,
        chunk_rows=settings.source_chunk_rows,
        on_chunk=lambda n, rows: logger.info("%s: chunk %d committed, %d rows so far", entity_name, n, rows),
    )
    (logger.warning if counts.rows_quarantined else logger.info)(
        "%s: read %s, loaded %s, quarantined %s, duplicate %s",
        entity_name,
        f"{counts.rows_read:,}",
        f"{counts.rows_loaded:,}",
        f"{counts.rows_quarantined:,}",
        f"{counts.rows_duplicate:,}",
    )
    if counts.rows_without_watermark:
        logger.warning(
            "%s: %d source rows have no %s and are never pulled; stamp them in the back end",
            entity_name,
            counts.rows_without_watermark,
            ENTITIES[entity_name].updated_column,
        )
    return loading_state([counts.as_row()], f"pull {entity_name}", data=counts.as_row())


@task(
    name="find-landing-files",
    task_run_name="find landing files up to {as_of}",
    retries=2,
    retry_delay_seconds=[10, 60],  # a misplaced file is on record once per key and size: a retry never doubles
    retry_condition_fn=retry_transient,
    tags=["landing"],
)
def find_landing_files(as_of: date) -> dict:
    """Keys of the landing files dated up to `as_of` per entity; files outside the contract are put on record.

    Returns `files` (keys per entity) and `misplaced` (count rows of the misplaced files this run found).
    """
    settings = get_settings()
    zone = open_store(settings.landing)
    files, misplaced = list_landing_files(zone, as_of)
    found = record_misplaced_files(zone, warehouse_engine(settings), misplaced, as_of)
    for counts in found:
        get_run_logger().error("%s", counts.error)
    by_entity: dict[str, list[str]] = {}
    for f in files:
        by_entity.setdefault(f.entity.name, []).append(f.key)
    result = {"files": by_entity, "misplaced": [c.as_row() for c in found]}
    if found:  # not green where the fault is: the task that found them is named for it
        names = ", ".join(c.source.removeprefix("file:") for c in found)
        return Completed(
            name="Misplaced", message=f"{len(found)} misplaced landing file(s): {names}"[:1000], data=result
        )
    return result


@task(
    name="load-landing-files",
    task_run_name="load {entity_name} landing files",
    retries=2,
    retry_delay_seconds=[10, 60],  # a file is recorded in the manifest with its rows, so a retry never doubles
    retry_condition_fn=retry_transient,
    tags=["landing"],
)
def load_landing_files_task(entity_name: str, as_of: date) -> list[dict]:
    """Load every not-yet-loaded file of one entity dated up to `as_of`; a bad file never stops the others."""
    logger = get_run_logger()
    settings = get_settings()
    zone = open_store(settings.landing)
    engine = warehouse_engine(settings)
    files, _ = list_landing_files(zone, as_of)
    with engine.connect() as conn:
        in_warehouse = load_known_ids(conn, ENTITIES[entity_name])  # parents were loaded before the files
    source = source_engine(settings)
    known = known_source_ids(source, in_warehouse, as_of)
    plausible_since = load_ingest_config().plausible_since
    bulk = loading_in_bulk(engine)  # an initial load: the files' rows are copied straight into the tables

    def log_file(landing_file, counts) -> None:
        if counts.status == SourceStatus.FAILED:
            logger.error("%s", counts.error)
        elif counts.status == SourceStatus.ALREADY_REJECTED:
            logger.info("%s: rejected by an earlier run, not read again (crm landing retry)", landing_file.key)
        elif counts.status != SourceStatus.ALREADY_LOADED:
            (logger.warning if counts.rows_quarantined else logger.info)(
                "%s: %s, read %s, loaded %s, quarantined %s, duplicate %s",
                landing_file.key,
                counts.status,
                f"{counts.rows_read:,}",
                f"{counts.rows_loaded:,}",
                f"{counts.rows_quarantined:,}",
                f"{counts.rows_duplicate:,}",
            )

    # Each file in its own transaction; on PostgreSQL the next file is read and validated while one is written.
    loaded = load_landing_files(
        zone,
        engine,
        [f for f in files if f.entity.name == entity_name],
        as_of,
        known,
        source_db=source,
        in_warehouse=in_warehouse,
        plausible_since=plausible_since,
        bulk=bulk,
        on_file=log_file,
    )
    out = [counts.as_row() for counts in loaded]
    return loading_state(out, f"load {entity_name} landing files")


@task(name="prepare-initial-load", task_run_name="initial load: set indexes aside", retry_condition_fn=retry_transient)
def prepare_initial_load() -> list[str]:
    """On an empty warehouse, drop the secondary indexes of `stg_*` / `hist_*`: the history loads without them."""
    engine = warehouse_engine()
    if not is_initial_load(engine):
        return []
    dropped = drop_secondary_indexes(engine)
    get_run_logger().info(
        "initial load of an empty warehouse: %d secondary indexes set aside, built once the rows are in", len(dropped)
    )
    return dropped


_ONE_BUILD_AT_A_TIME = threading.Lock()


@task(
    name="build-entity-indexes",
    task_run_name="build indexes of {entity_name}",
    retries=2,
    retry_delay_seconds=[10, 60],
    retry_condition_fn=retry_transient,
)
def build_entity_indexes(entity_name: str) -> dict[str, list[str]]:
    """PostgreSQL, during an initial load: build the indexes of an entity's tables once it is loaded and measure
    them for the planner, on a second connection while the next entity loads (SQLite: nothing here,
    `build_indexes` builds them at the end). Returns the indexes built and the tables measured (`analyzed`)."""
    engine = warehouse_engine()
    if not builds_indexes_alongside(engine):
        return {"indexes": [], "analyzed": []}
    tables = entity_tables(entity_name)
    with _ONE_BUILD_AT_A_TIME:  # the server's other core serves the load
        built = build_missing_indexes(engine, tables=tables)
        analyzed = measure_tables(engine, tables)
    if built:
        get_run_logger().info("built %d indexes of %s while the load goes on", len(built), entity_name)
    return {"indexes": built, "analyzed": analyzed}


@task(
    name="build-indexes",
    task_run_name="build missing warehouse indexes",
    retries=2,
    retry_delay_seconds=[10, 60],  # an index built is kept; a retry builds the rest
    retry_condition_fn=retry_transient,
)
def build_indexes() -> list[str]:
    """Build the secondary indexes an initial load set aside (or one killed half way left missing)."""
    built = build_missing_indexes(warehouse_engine())
    if built:
        get_run_logger().info("built %d warehouse indexes: %s", len(built), ", ".join(built))
    return built


@task(
    name="refresh-statistics",
    task_run_name="refresh planner statistics",
    retries=2,
    retry_delay_seconds=[10, 60],
    retry_condition_fn=retry_transient,
)
def refresh_statistics_task(counts: list[dict], measured: list[str] | None = None) -> list[str]:
    """PostgreSQL: measure the tables this ingest grew by a tenth or more, before the night's steps plan on them
    (but those `measured` alongside an initial load, `build_entity_indexes`)."""
    analyzed = refresh_statistics(warehouse_engine(), rows_written(counts, measured=measured or ()))
    if analyzed:
        get_run_logger().info("refreshed planner statistics of %d tables: %s", len(analyzed), ", ".join(analyzed))
    return analyzed


@task(name="publish-ingest-report", task_run_name="publish ingest report {as_of}")
def publish_ingest_report(as_of: date, counts: list[dict]) -> dict:
    """Publish the day's counts and quarantine reasons as Prefect artifacts; return the totals.

    `failed_sources` names the files this run rejected or found misplaced (findings: the gate closes).
    """
    table = pd.DataFrame(counts, columns=COUNT_COLUMNS)
    shown = table[table["status"] != SourceStatus.ALREADY_LOADED]
    create_table_artifact(
        key="ingest-counts",
        table=counts_table(shown),
        description=f"Ingestion {as_of}: rows read, loaded, quarantined and duplicate per source (rejected first).",
    )
    with warehouse_engine().connect() as conn:
        reasons = quarantine_summary(conn, as_of)
    markdown = ingest_summary_markdown(as_of, table, reasons)
    create_markdown_artifact(key="ingest-summary", markdown=markdown, description=f"Ingestion summary {as_of}")
    failed = table[table["status"].isin(FINDING_STATUSES)]
    return {**ingest_totals(table), "failed_sources": failed["source"].tolist()}
