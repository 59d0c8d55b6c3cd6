"""Reconciliation tasks: compare the figures, diff the ids of diverging entities, record, report."""

from __future__ import annotations

from datetime import date

import pandas as pd
from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from crm.core.contracts import ENTITIES
from crm.core.settings import get_settings, source_engine, warehouse_engine
from crm.reconcile import (
    FIGURE_COLUMNS,
    MISMATCH_COLUMNS,
    MISMATCH_KINDS,
    ReconciliationConfig,
    diff_entity_ids,
    figures_table,
    read_divergence_history,
    read_entity_figures,
    record_reconciliation,
    summary_markdown,
    trend_markdown,
    verdict_summary,
)
from tasks.common import retry_transient

# Reads only (the source is never written): safe to retry. NO_CACHE: a new run must re-read both sides.
_READ = {
    "retries": 2,
    "retry_delay_seconds": [10, 60],
    "retry_condition_fn": retry_transient,
    "cache_policy": NO_CACHE,
    "tags": ["source-db"],
}


@task(name="compare-figures", task_run_name="compare figures {as_of}", **_READ)
def compare_figures(as_of: date, config: ReconciliationConfig) -> dict:
    """Aggregate every configured entity on the source and in the warehouse and compare the figures."""
    logger = get_run_logger()
    settings = get_settings()
    source, warehouse = source_engine(settings), warehouse_engine(settings)
    frames, in_flight = [], {}
    for entity, check in config.checked():
        result = read_entity_figures(source, warehouse, entity, check, as_of, config.threshold)
        frames.append(result.figures)
        if result.in_flight:
            in_flight[entity.name] = result.in_flight
        failed = int((~result.figures["passed"]).sum())
        logger.info("%s: %d figures, %d beyond the threshold", entity.name, len(result.figures), failed)
    figures = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=FIGURE_COLUMNS)
    if in_flight:
        logger.info("left out, changed in the source after %s and not ingested yet: %s", as_of, in_flight)
    return {"figures": figures, "in_flight": in_flight}


@task(name="diff-ids", task_run_name="diff {entity_name} ids", **_READ)
def diff_ids(entity_name: str, as_of: date, config: ReconciliationConfig) -> dict:
    """Walk one entity's ids on both sides in key order and classify every mismatch (ids stored up to the cap)."""
    logger = get_run_logger()
    settings = get_settings()
    result = diff_entity_ids(
        source_engine(settings),
        warehouse_engine(settings),
        ENTITIES[entity_name],
        config.entities[entity_name],
        as_of,
        chunk_rows=config.chunk_rows,
        max_stored_ids=config.max_stored_ids,
    )
    logger.info(
        "%s: %d source rows vs %d warehouse rows; mismatching ids: %s",
        entity_name,
        result.source_rows,
        result.warehouse_rows,
        ", ".join(f"{kind} {n}" for kind, n in result.counts.items() if n) or "none",
    )
    return {"counts": result.counts, "mismatches": result.mismatches, "in_flight": result.in_flight}


@task(
    name="record-reconciliation",
    task_run_name="record reconciliation {as_of}",
    retries=1,
    retry_delay_seconds=10,
    retry_condition_fn=retry_transient,
    cache_policy=NO_CACHE,
)
def record_reconciliation_task(
    as_of: date, config: ReconciliationConfig, figures: pd.DataFrame, diffs: dict[str, dict], in_flight: dict[str, int]
) -> dict:
    """Replace the day's figures, mismatching ids and send-gate verdict in one warehouse transaction."""
    counts = {entity: d["counts"] for entity, d in diffs.items()}
    frames = [d["mismatches"] for d in diffs.values() if len(d["mismatches"])]
    mismatches = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=MISMATCH_COLUMNS)
    fit = bool(len(figures)) and bool(figures["passed"].all())
    summary = verdict_summary(as_of, figures, counts, config.threshold, in_flight=in_flight)
    record_reconciliation(warehouse_engine(), as_of, figures, mismatches, fit_for_sending=fit, summary=summary)
    logger = get_run_logger()
    (logger.info if fit else logger.warning)("%s", summary)
    return {"fit_for_sending": fit, "summary": summary, "stored_ids": len(mismatches)}


@task(
    name="publish-reconciliation-report", task_run_name="publish reconciliation report {as_of}", cache_policy=NO_CACHE
)
def publish_reconciliation_report(
    as_of: date, config: ReconciliationConfig, figures: pd.DataFrame, diffs: dict[str, dict], verdict: dict
) -> None:
    """Publish the figures table, the summary with mismatch examples and the divergence trend as artifacts."""
    create_table_artifact(
        key="reconciliation-figures",
        table=figures_table(figures),
        description=f"Reconciliation {as_of}: every figure, source vs warehouse (threshold {config.threshold:.2%}).",
    )
    counts = {entity: d["counts"] for entity, d in diffs.items()}
    examples = {
        entity: pd.concat(
            [d["mismatches"][d["mismatches"]["kind"] == kind].head(config.examples) for kind in MISMATCH_KINDS],
            ignore_index=True,
        )
        for entity, d in diffs.items()
    }
    markdown = summary_markdown(
        as_of,
        verdict["fit_for_sending"],
        verdict["summary"],
        figures,
        counts,
        examples,
        stored_cap=config.max_stored_ids,
    )
    # Only keys, closed-list statuses and amounts are ever read (the config forbids free text), so no
    # contact can appear here; mask_contacts would also mangle dates and large amounts.
    create_markdown_artifact(key="reconciliation-summary", markdown=markdown, description=f"Reconciliation {as_of}")
    with warehouse_engine().connect() as conn:
        history = read_divergence_history(conn, as_of, config.trend_days)
    create_markdown_artifact(
        key="reconciliation-trend",
        markdown=trend_markdown(history, as_of, config.trend_days, config.threshold),
        description=f"Largest divergence per entity, {config.trend_days} days to {as_of}",
    )
