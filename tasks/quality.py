"""Quality tasks: validate the day's batch, save results and verdict, publish reports, rate integrations."""

from __future__ import annotations

import shutil
from dataclasses import asdict
from datetime import date

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from crm.core.contracts import ENTITIES
from crm.core.gate import Check, record_verdict
from crm.core.settings import get_settings, warehouse_engine
from crm.quality import (
    QualityVerdict,
    classify_integrations,
    integration_health_markdown,
    load_quality_config,
    new_docs_dir,
    quality_markdown,
    quality_verdict,
    read_health_inputs,
    read_volume_history,
    replace_quality_results,
    suite_table,
    upload_data_docs,
    validate_suites,
    volume_bands,
)
from tasks.common import retry_transient


def artifact_key(suite: str) -> str:
    """The Prefect artifact key of a suite's table (keys allow lowercase letters, digits and dashes)."""
    return f"quality-{suite.replace('_', '-')}"


@task(name="validate-day", task_run_name="validate {as_of}")
def validate_day(as_of: date) -> dict:
    """Run every expectation suite on the day's batch and publish Great Expectations Data Docs.

    Returns the result rows and where the Data Docs' index is (None if they could not be written).
    """
    from expectations import SuiteContext, build_suites  # cheap; the suite modules import GX when built

    logger = get_run_logger()
    settings = get_settings()
    config = load_quality_config()
    engine = warehouse_engine(settings)
    with engine.connect() as conn:
        history = read_volume_history(conn, as_of, config.volume.history_days)
    bands = volume_bands(history, ENTITIES, config.volume)
    if not bands:
        logger.info("fewer than %d ingested days before %s: no volume band yet", config.volume.min_history_days, as_of)
    context = SuiteContext(as_of=as_of, dialect=engine.dialect.name, config=config, volume_bands=bands)
    docs_dir = new_docs_dir()
    try:
        rows = validate_suites(
            settings.warehouse,
            build_suites(context),
            examples=config.examples,
            docs_dir=docs_dir,
            run_name=f"quality-{as_of}",
        )
        try:
            docs = upload_data_docs(docs_dir, settings.reports, f"data-docs/{as_of}")
        except Exception as exc:  # the findings matter more than their HTML rendering
            logger.error("Data Docs could not be written to %s: %s", settings.reports, exc)
            docs = None
    finally:
        shutil.rmtree(docs_dir, ignore_errors=True)
    failed = [r for r in rows if not r["success"]]
    logger.info("%d expectations, %d failed; Data Docs: %s", len(rows), len(failed), docs)
    return {"results": rows, "data_docs": docs}


@task(
    name="save-quality-results",
    task_run_name="save quality results {as_of}",
    retries=2,
    retry_delay_seconds=[5, 30],
    retry_condition_fn=retry_transient,
)
def save_quality_results(as_of: date, rows: list[dict]) -> dict:
    """Replace the day's `quality_results` and record the gate verdict, in one transaction."""
    verdict = quality_verdict(rows, as_of)
    with warehouse_engine().begin() as conn:
        replace_quality_results(conn, as_of, rows)
        record_verdict(conn, as_of, Check.QUALITY, fit_for_sending=verdict.fit_for_sending, summary=verdict.summary)
    get_run_logger().info("quality verdict %s: %s", as_of, verdict.summary)
    return asdict(verdict)


@task(name="publish-quality-report", task_run_name="publish quality report {as_of}")
def publish_quality_report(as_of: date, rows: list[dict], verdict: dict, data_docs: str | None) -> None:
    """One table artifact per suite and a markdown summary of the day's quality."""
    for suite in dict.fromkeys(r["suite"] for r in rows):
        table = suite_table(rows, suite)
        failed = sum(1 for r in table if r["outcome"] == "FAILED")
        create_table_artifact(
            key=artifact_key(suite),
            table=table,
            description=f"Quality {as_of}, suite {suite}: {len(table):,} expectations, {failed:,} failed (examples masked).",
        )
    create_markdown_artifact(
        key="quality-summary",
        markdown=quality_markdown(rows, QualityVerdict(**verdict), as_of, data_docs),
        description=f"Data quality {as_of}",
    )


@task(name="check-integration-health", task_run_name="check integration health {as_of}")
def check_integration_health(as_of: date) -> list[dict]:
    """Rate every integration ok / problems / many errors and publish the `integration-health` artifact."""
    config = load_quality_config()
    with warehouse_engine().connect() as conn:
        inputs = read_health_inputs(conn, as_of, config.health.history_days)
    health = classify_integrations(inputs, config.health)
    create_markdown_artifact(
        key="integration-health",
        markdown=integration_health_markdown(health, as_of),
        description=f"Integration health {as_of}",
    )
    return [
        {
            "integration": r["integration"],
            "status": r["status"],
            "rows_read": int(r["rows_read"]),
            "rows_loaded": int(r["rows_loaded"]),
            "rows_quarantined": int(r["rows_quarantined"]),
            "rows_duplicate": int(r["rows_duplicate"]),
            "files_failed": int(r["files_failed"]),
            "error_share": float(r["error_share"]),
            "top_reasons": list(r["top_reasons"]),
        }
        for r in health.to_dict("records")
    ]
