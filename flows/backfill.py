"""`backfill`: run a daily job for every business day of a range, oldest first."""

from __future__ import annotations

from datetime import date

from prefect import flow, get_run_logger
from prefect.states import Completed, Failed

from crm.core.dates import days_between
from crm.core.errors import Finding, InfrastructureError, OperatorError, crm_error
from crm.core.gate import backfill_headline
from flows.ingest import ingest
from flows.nightly import nightly
from flows.quality import quality
from flows.reconcile import reconcile
from tasks.backfill import publish_backfill_summary, run_day_of_deployment

JOBS = {"nightly": nightly, "ingest": ingest, "quality": quality, "reconcile": reconcile}


FINDINGS = ("Diverged", "GateClosed", "FilesRejected")


@flow(
    name="backfill",
    flow_run_name="backfill {job} {start}..{end}",
    description="Run a daily job (nightly, ingest, quality, reconcile) for every day of a range, oldest first.",
)
def backfill(job: str, start: date, end: date, deployment: str | None = None, force: bool = False):
    """Run `job` for each day from `start` to `end`; with `deployment`, each day is a run of that deployment
    (listed in its Runs tab, not a subflow), created once per day even if the backfill is re-run.

    A day with a finding (`Diverged`, `GateClosed`, `FilesRejected`) is not a failure of the
    backfill; `force` passes the day guard of ingesting jobs run in this process. The backfill
    publishes a `backfill-<job>` summary (days done, gates open and closed, links to the runs) and
    ends with a state message like `3 of 3 days, 3 gates closed`.
    """
    if job not in JOBS:
        raise OperatorError(f"unknown job {job!r}; known: {', '.join(JOBS)}")
    days = days_between(start, end)
    logger = get_run_logger()
    outcomes = []
    for day in days:
        if deployment:
            outcomes.append(run_day_of_deployment(deployment, day))
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
            run_id = state.state_details.flow_run_id
            outcomes.append({"as_of": day.isoformat(), "state": name, "run": str(run_id) if run_id else ""})
        logger.info("%s %s: %s", job, day, outcomes[-1]["state"])
    publish_backfill_summary(job, start, end, outcomes)
    headline = backfill_headline(job, len(days), outcomes)
    # Findings are runs that did their work and found something, not failures of the backfill.
    failed = [o["as_of"] for o in outcomes if o["state"] not in ("Completed", *FINDINGS)]
    if failed:
        error = RuntimeError(f"backfill {job}: {len(failed)} day(s) did not complete: {', '.join(failed)}")
        return Failed(message=f"{headline}; did not complete: {', '.join(failed)}"[:2000], data=error)
    logger.info("%s", headline)
    return Completed(message=headline, data=outcomes)
