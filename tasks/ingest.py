"""Ingestion tasks: one per source table, one per landing-file entity, and the report."""

from __future__ import annotations

from datetime import date

import pandas as pd
from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from crm.contracts import ENTITIES
from crm.ingest import SourceCounts, known_source_ids, load_known_ids, load_landing_file, pull_source_table, quarantine_summary
from crm.landing import list_landing_files, open_landing_zone
from crm.privacy import mask_contacts
from crm.settings import get_settings, source_engine, warehouse_engine

COUNT_COLUMNS = ["source", "entity", "status", "rows_read", "rows_loaded", "rows_quarantined", "rows_duplicate", "error"]


@task(
    name="pull-source-table",
    task_run_name="pull {entity_name} from source",
    retries=2,
    retry_delay_seconds=[10, 60],  # a retry resumes from the committed watermark
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
    logger.info(
        "%s: read %d, loaded %d, quarantined %d, duplicate %d",
        entity_name, counts.rows_read, counts.rows_loaded, counts.rows_quarantined, counts.rows_duplicate,
    )
    return counts.as_row()


@task(name="find-landing-files")
def find_landing_files(as_of: date) -> dict:
    """Keys of the landing files dated up to `as_of` per entity, and keys that break the naming contract."""
    files, misnamed = list_landing_files(open_landing_zone(get_settings().landing), as_of)
    by_entity: dict[str, list[str]] = {}
    for f in files:
        by_entity.setdefault(f.entity.name, []).append(f.key)
    return {"files": by_entity, "misnamed": misnamed}


@task(
    name="load-landing-files",
    task_run_name="load {entity_name} landing files",
    retries=2,
    retry_delay_seconds=[10, 60],  # a file is recorded in the manifest with its rows, so a retry never doubles
    tags=["landing"],
)
def load_landing_files_task(entity_name: str, as_of: date) -> list[dict]:
    """Load every not-yet-loaded file of one entity dated up to `as_of`; a bad file never stops the others."""
    logger = get_run_logger()
    settings = get_settings()
    zone = open_landing_zone(settings.landing)
    engine = warehouse_engine(settings)
    files, _ = list_landing_files(zone, as_of)
    with engine.connect() as conn:
        in_warehouse = load_known_ids(conn, ENTITIES[entity_name])  # parents were loaded before the files
    source = source_engine(settings)
    known = known_source_ids(source, in_warehouse, as_of)
    out = []
    for landing_file in (f for f in files if f.entity.name == entity_name):
        counts = load_landing_file(zone, engine, landing_file, as_of, known_ids=known, source_db=source, in_warehouse=in_warehouse)
        if counts.status == "failed":
            logger.error("%s", counts.error)
        elif counts.status != "already_loaded":
            logger.info(
                "%s: %s, read %d, loaded %d, quarantined %d, duplicate %d",
                landing_file.key, counts.status, counts.rows_read, counts.rows_loaded,
                counts.rows_quarantined, counts.rows_duplicate,
            )
        out.append(counts.as_row())
    return out


@task(name="publish-ingest-report")
def publish_ingest_report(as_of: date, counts: list[dict], misnamed: list[str]) -> dict:
    """Publish the day's counts and quarantine reasons as Prefect artifacts; return the totals."""
    rows = counts + [
        SourceCounts(source=f"file:{key}", entity="?", status="failed", error=f"{key}: name breaks the landing-file contract").as_row()
        for key in misnamed
    ]
    table = pd.DataFrame(rows, columns=COUNT_COLUMNS)
    shown = table[table["status"] != "already_loaded"]
    create_table_artifact(
        key="ingest-counts",
        table=shown.fillna("").to_dict("records"),
        description=f"Ingestion {as_of}: rows read, loaded, quarantined and duplicate per source.",
    )
    with warehouse_engine().connect() as conn:
        reasons = quarantine_summary(conn, as_of)
    totals = {k: int(table[k].sum()) for k in ("rows_read", "rows_loaded", "rows_quarantined", "rows_duplicate")}
    failed = table[table["status"] == "failed"]
    files = table[table["source"].str.startswith("file:")]
    lines = [
        f"# Ingestion {as_of}",
        "",
        f"- rows read: **{totals['rows_read']:,}**, loaded: **{totals['rows_loaded']:,}**, "
        f"quarantined: **{totals['rows_quarantined']:,}**, duplicates: **{totals['rows_duplicate']:,}**",
        f"- landing files loaded: {int(files['status'].isin(['loaded', 'changed']).sum())}, "
        f"already loaded before: {int((files['status'] == 'already_loaded').sum())}, "
        f"changed since loaded: {int((files['status'] == 'changed').sum())}, failed: {len(failed)}",
    ]
    if len(failed):
        lines += ["", "## Failed files", ""] + [f"- {mask_contacts(str(e))}" for e in failed["error"]]
    if len(reasons):
        lines += ["", "## Quarantined rows by rule", "", "| source | rule | rows | example |", "|---|---|---:|---|"]
        lines += [f"| {r.source} | {r.rule} | {r.rows:,} | {mask_contacts(str(r.example))} |" for r in reasons.itertuples()]
    create_markdown_artifact(key="ingest-summary", markdown="\n".join(lines), description=f"Ingestion summary {as_of}")
    return {**totals, "failed_sources": failed["source"].tolist()}
