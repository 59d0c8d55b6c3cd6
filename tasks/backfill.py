"""Backfill tasks: one deployment run per day, and the backfill's summary."""

from __future__ import annotations

from datetime import date

from prefect import task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.deployments import run_deployment

from crm.core.gate import backfill_headline, gate_of
from crm.core.markdown import markdown_table
from tasks.nightly import run_link, ui_url


@task(name="run-deployment-day", task_run_name="run {deployment} for {day}", cache_policy=NO_CACHE)
def run_day_of_deployment(deployment: str, day: date) -> dict:
    """Create (once per day: idempotency key) and wait for a run of `deployment` for `day`, as a top-level
    run of the deployment (it shows in its Runs tab and survives "Hide subflows")."""
    run = run_deployment(
        name=deployment,
        parameters={"as_of": day.isoformat()},
        idempotency_key=f"backfill:{deployment}:{day}",
        as_subflow=False,
    )
    state = run.state
    return {"as_of": day.isoformat(), "state": state.name if state else "unknown", "run": str(run.id)}


@task(name="publish-backfill-summary", task_run_name="publish backfill summary {job} {start}..{end}")
def publish_backfill_summary(job: str, start: date, end: date, outcomes: list[dict]) -> str:
    """The `backfill-<job>` artifact: days done, gates open and closed, a link to every day's run."""
    base = ui_url()
    headline = backfill_headline(job, len(outcomes), outcomes)
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
