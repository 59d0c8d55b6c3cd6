"""Segments tasks: refresh a day's segments in the warehouse, publish sizes, transitions and the flows picture."""

from __future__ import annotations

from dataclasses import asdict
from datetime import date, timedelta

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from crm.core.settings import get_settings, warehouse_engine
from crm.segments import (
    RunMode,
    SegmentsConfig,
    flows_png,
    previous_positions,
    read_day,
    refresh_segments,
    sizes_artifact,
    summary_markdown,
    transition_matrix,
    transitions,
    write_report,
)
from tasks.common import retry_transient


@task(
    name="refresh-segments",
    task_run_name="refresh segments {as_of}",
    retries=1,
    retry_delay_seconds=30,
    retry_condition_fn=retry_transient,  # one transaction: a retry starts from a clean slate
    cache_policy=NO_CACHE,
)
def refresh_segments_task(as_of: date, config: SegmentsConfig, full: bool = False, rewrite: bool = False) -> dict:
    """Compute and store the day's segments (incremental after yesterday's run, else full; recheck for a stored day)."""
    logger = get_run_logger()
    run = refresh_segments(warehouse_engine(), as_of, config, full=full, rewrite=rewrite)
    outcome = asdict(run) | {"as_of": as_of.isoformat(), "mode": run.mode.value}
    if not run.gate_open:
        logger.warning("data suspect: the send gate of %s is closed (%s)", as_of, "; ".join(run.gate_reasons))
    logger.info(
        "%s %s: %d customers computed, %d changed, %d events%s",
        run.mode,
        as_of,
        run.customers_computed,
        run.customers_changed,
        run.events,
        "" if run.differences is None else f", {run.differences} differ from the stored day",
    )
    return outcome


@task(name="publish-segments-report", task_run_name="publish segments report {as_of}", cache_policy=NO_CACHE)
def publish_segments_report(as_of: date, run: dict) -> dict:
    """Publish sizes with the change since the day before, the transition matrix, and the flows PNG (linked)."""
    logger = get_run_logger()
    with warehouse_engine().connect() as conn:
        day = read_day(conn, as_of)
    moves = transitions(day["lifecycle_events"])
    matrix = transition_matrix(moves, previous_positions(day["sizes"], as_of - timedelta(days=1)))
    chart = None
    if run["mode"] != RunMode.RECHECK and not matrix.empty:
        try:
            chart = write_report(
                get_settings().reports, f"segments/{as_of}/lifecycle-flows.png", flows_png(matrix, as_of)
            )
        except Exception as exc:  # the figures matter more than their picture
            logger.error("the lifecycle flows picture could not be written: %s", exc)
    # Only segment names and counts: no customer data reaches the artifacts (recheck examples are ids).
    create_markdown_artifact(
        key="segments-summary",
        markdown=summary_markdown(run, day["sizes"], matrix, chart),
        description=f"Segments {as_of}: sizes, change since the day before, lifecycle transitions",
    )
    create_table_artifact(
        key="segments-sizes", table=sizes_artifact(day["sizes"], as_of), description=f"Segment sizes {as_of}"
    )
    return {"chart": chart, "transitions": int(moves["customers"].sum()) if len(moves) else 0}
