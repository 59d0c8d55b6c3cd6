"""`backfill`: run a daily job for every business day of a range, oldest first."""

from __future__ import annotations

from datetime import date

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact
from prefect.deployments import run_deployment

from crm.core.dates import days_between
from crm.core.errors import Finding, InfrastructureError, OperatorError, crm_error
from flows.ingest import ingest
from flows.nightly import nightly
from flows.quality import quality
from flows.reconcile import reconcile

JOBS = {"nightly": nightly, "ingest": ingest, "quality": quality, "reconcile": reconcile}


FINDINGS = ("Diverged", "GateClosed", "FilesRejected")


@flow(name="backfill", flow_run_name="backfill {job} {start}..{end}")
def backfill(job: str, start: date, end: date, deployment: str | None = None, force: bool = False):
    """Run `job` for each day from `start` to `end`; with `deployment`, each day is its own deployment
    run, created once per day even if the backfill itself is re-run (idempotency key).

    A day with a finding (`Diverged`, `GateClosed`, `FilesRejected`) is not a failure of the
    backfill; `force` passes the day guard of ingesting jobs run in this process."""
    if job not in JOBS:
        raise OperatorError(f"unknown job {job!r}; known: {', '.join(JOBS)}")
    days = days_between(start, end)
    logger = get_run_logger()
    outcomes = []
    for day in days:
        if deployment:
            run = run_deployment(
                name=deployment,
                parameters={"as_of": day.isoformat()},
                idempotency_key=f"backfill:{deployment}:{day}",
            )
            state = run.state
            outcomes.append({"as_of": day.isoformat(), "state": state.name if state else "unknown", "run": str(run.id)})
        else:
            extra = {"force": force} if job in ("nightly", "ingest") else {}
            state = JOBS[job](as_of=day, return_state=True, **extra)
            name = state.name
            if state.is_failed():
                error = crm_error(state.result(raise_on_failure=False))
                if isinstance(error, OperatorError | InfrastructureError):
                    return state  # every later day would fail the same way: stop, with that one line
                if isinstance(error, Finding):
                    name = "FilesRejected"  # landing files rejected or misplaced: the run did its work
            outcomes.append({"as_of": day.isoformat(), "state": name, "run": ""})
        logger.info("%s %s: %s", job, day, outcomes[-1]["state"])
    create_table_artifact(key=f"backfill-{job}", table=outcomes, description=f"Backfill of {job} {start}..{end}")
    # Findings are runs that did their work and found something, not failures of the backfill.
    failed = [o["as_of"] for o in outcomes if o["state"] not in ("Completed", *FINDINGS)]
    if failed:
        raise RuntimeError(f"backfill {job}: {len(failed)} day(s) did not complete: {', '.join(failed)}")
    return outcomes
