"""Backfill tasks: one deployment run per day, and the backfill's summary."""

from __future__ import annotations

from datetime import date

from prefect import task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.deployments import run_deployment
from sqlalchemy import delete, select

from crm.core.db import upsert
from crm.core.gate import backfill_headline, gate_of
from crm.core.markdown import markdown_table
from crm.core.settings import warehouse_engine
from models.gate import backfill_days
from tasks.nightly import run_link, ui_url


@task(name="run-deployment-day", task_run_name="run {deployment} for {day}", cache_policy=NO_CACHE)
def run_day_of_deployment(deployment: str, day: date, extra: dict | None = None) -> dict:
    """Create (once per day: idempotency key) and wait for a run of `deployment` for `day`, as a top-level
    run of the deployment (it shows in its Runs tab and survives "Hide subflows")."""
    extra = extra or {}
    suffix = f":{','.join(extra['steps'])}" if extra.get("steps") else ""
    run = run_deployment(
        name=deployment,
        parameters={"as_of": day.isoformat(), **extra},
        idempotency_key=f"backfill:{deployment}:{day}{suffix}",
        as_subflow=False,
    )
    state = run.state
    return {"as_of": day.isoformat(), "state": state.name if state else "unknown", "run": str(run.id)}


@task(name="publish-backfill-summary", task_run_name="publish backfill summary {job} {start}..{end}")
def publish_backfill_summary(job: str, start: date, end: date, outcomes: list[dict], planned: int | None = None) -> str:
    """The `backfill-<job>` artifact: days done of those planned, gates open and closed, a link to every day's run."""
    base = ui_url()
    headline = backfill_headline(job, planned or len(outcomes), outcomes)
    rows = [
        {
            "as_of": o["as_of"],
            "state": o["state"],
            "gate": gate_of(job, o["state"]),
            "run": run_link(o["run"], f"{job} {o['as_of']}", base) if o["run"] else "",
        }
        for o in outcomes
    ]
    lines = [f"# Backfill {job} {start}..{end}: {headline}", ""]
    lines += markdown_table(rows, ["as_of", "state", "gate", "run"])
    create_markdown_artifact(key=f"backfill-{job}", markdown="\n".join(lines), description=headline)
    return headline


@task(name="read-backfill-progress", task_run_name="read progress of backfill {backfill}")
def read_backfill_progress(backfill: str, restart: bool = False) -> dict[str, dict]:
    """The days this backfill completed before (by its identity), so it resumes after them; `restart` forgets them."""
    with warehouse_engine().begin() as conn:
        if restart:
            conn.execute(delete(backfill_days).where(backfill_days.c.backfill == backfill))
            return {}
        rows = conn.execute(select(backfill_days).where(backfill_days.c.backfill == backfill)).mappings().all()
    return {r["as_of"].isoformat(): {"state": r["state"], "run": r["run_id"] or ""} for r in rows}


@task(name="record-backfill-day", task_run_name="record backfill {backfill} {day}")
def record_backfill_day(backfill: str, day: date, state: str, run_id: str) -> None:
    """Put a completed day on record (after its run ended: a day killed half way is run again)."""
    with warehouse_engine().begin() as conn:
        upsert(conn, backfill_days, [{"backfill": backfill, "as_of": day, "state": state, "run_id": run_id}])
