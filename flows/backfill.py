"""`backfill`: run a daily job for every business day of a range, oldest first."""

from __future__ import annotations

from datetime import date

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact
from prefect.deployments import run_deployment

from crm.core.dates import days_between
from flows.ingest import ingest
from flows.nightly import nightly
from flows.quality import quality
from flows.reconcile import reconcile

JOBS = {"nightly": nightly, "ingest": ingest, "quality": quality, "reconcile": reconcile}


@flow(name="backfill", flow_run_name="backfill {job} {start}..{end}")
def backfill(job: str, start: date, end: date, deployment: str | None = None) -> list[dict]:
    """Run `job` for each day from `start` to `end`; with `deployment`, each day is its own deployment
    run, created once per day even if the backfill itself is re-run (idempotency key)."""
    if job not in JOBS:
        raise ValueError(f"unknown job {job!r}; known: {', '.join(JOBS)}")
    logger = get_run_logger()
    outcomes = []
    for day in days_between(start, end):
        if deployment:
            run = run_deployment(
                name=deployment,
                parameters={"as_of": day.isoformat()},
                idempotency_key=f"backfill:{deployment}:{day}",
            )
            state = run.state
            outcomes.append({"as_of": day.isoformat(), "state": state.name if state else "unknown", "run": str(run.id)})
        else:
            state = JOBS[job](as_of=day, return_state=True)
            outcomes.append({"as_of": day.isoformat(), "state": state.name, "run": ""})
        logger.info("%s %s: %s", job, day, outcomes[-1]["state"])
    create_table_artifact(key=f"backfill-{job}", table=outcomes, description=f"Backfill of {job} {start}..{end}")
    # Diverged / GateClosed are completed runs with findings, not failures of the backfill.
    failed = [o["as_of"] for o in outcomes if o["state"] not in ("Completed", "Diverged", "GateClosed")]
    if failed:
        raise RuntimeError(f"backfill {job}: {len(failed)} day(s) did not complete: {', '.join(failed)}")
    return outcomes
