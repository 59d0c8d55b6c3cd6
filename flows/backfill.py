"""`backfill`: run a daily job for every business day of a range, oldest first."""

from __future__ import annotations

from datetime import date

from prefect import flow, get_run_logger
from prefect.states import Completed, Failed

from crm.core.dates import days_between
from crm.core.errors import Finding, InfrastructureError, OperatorError, crm_error
from crm.core.gate import FINDING_STATES, backfill_headline
from flows.ingest import ingest
from flows.loyalty import loyalty
from flows.nightly import nightly
from flows.quality import quality
from flows.reconcile import reconcile
from flows.segments import segments
from tasks.backfill import publish_backfill_summary, read_backfill_progress, record_backfill_day, run_day_of_deployment
from tasks.common import migrate_warehouse

JOBS = {
    "nightly": nightly,
    "ingest": ingest,
    "quality": quality,
    "reconcile": reconcile,
    "segments": segments,
    "loyalty": loyalty,
}


FINDINGS = FINDING_STATES
NOT_FINISHED = ("Scheduled", "Pending", "Running", "Late", "AwaitingRetry", "Retrying")


@flow(
    name="backfill",
    flow_run_name="backfill {job} {start}..{end}",
    description="Run a daily job (nightly, ingest, quality, reconcile, segments, loyalty) for every day of a range, "
    "oldest first; resumes after the last completed day.",
)
def backfill(
    job: str,
    start: date,
    end: date,
    deployment: str | None = None,
    force: bool = False,
    steps: list[str] | None = None,
    restart: bool = False,
    send_past_days: bool = False,
):
    """Run `job` for each day from `start` to `end`, oldest first; with `deployment`, each day is a run of that
    deployment (listed in its Runs tab, not a subflow), created once per day even if the backfill is re-run.

    Resumable: every completed day is put on record under the backfill's identity (job, range and
    steps); running the same backfill again skips those days and starts at the first day not
    completed (`restart` forgets the record). A day that fails stops the backfill there, since later
    days build on it (segments and loyalty are incremental). `steps` (nightly only) re-runs a chosen
    set of steps, e.g. `["segments", "loyalty"]` after a rule change. Messages are never sent for
    these past days unless `send_past_days` is set. A day with a finding (`Diverged`, `GateClosed`,
    `FilesRejected`, a segments day that `Differs`) is not a failure; a failed run's finding of another
    job (a loyalty invariant broken) stops the backfill like a failure, with its own error (exit 2). The backfill publishes a `backfill-<job>` summary and ends
    with a state message like `3 of 3 days, 3 gates closed`.
    """
    if job not in JOBS:
        raise OperatorError(f"unknown job {job!r}; known: {', '.join(JOBS)}")
    if steps and job != "nightly":
        raise OperatorError("--steps chooses steps of the nightly job only")
    days = days_between(start, end)
    logger = get_run_logger()
    identity = f"{job}:{start}..{end}" + (f":{','.join(steps)}" if steps else "")
    migrate_warehouse()
    done_before = read_backfill_progress(identity, restart)
    extra = {}
    if job == "nightly":
        extra = {"send": send_past_days, "send_past_days": send_past_days} | ({"steps": steps} if steps else {})
    outcomes = []
    stopped, stop_error = None, None
    for day in days:
        if day.isoformat() in done_before:
            previous = done_before[day.isoformat()]
            outcomes.append({"as_of": day.isoformat(), "state": previous["state"], "run": previous["run"]})
            logger.info("%s %s: completed by an earlier run of this backfill (%s)", job, day, previous["state"])
            continue
        if deployment:
            outcome = run_day_of_deployment(deployment, day, extra)
        else:
            kwargs = {"force": force} if job in ("nightly", "ingest") else {}
            state = JOBS[job](as_of=day, return_state=True, **kwargs, **extra)
            name = state.name
            if state.is_failed():
                raised = state.result(raise_on_failure=False)
                error = crm_error(raised) if isinstance(raised, BaseException) else None
                if isinstance(error, OperatorError | InfrastructureError):
                    return state  # every later day would fail the same way: stop, with that one line
                if isinstance(error, Finding) and job == "ingest":
                    name = "FilesRejected"  # landing files rejected or misplaced: the run did its work
                stop_error = error or raised  # a bug's own exception, not a vaguer one
            elif not state.is_completed() and name not in NOT_FINISHED:
                stop_error = RuntimeError(  # crashed or cancelled: say how, and what Prefect said
                    f"backfill {job} stopped at {day}: the day's run ended {name}: {state.message or 'no message'}"
                )
            run_id = state.state_details.flow_run_id
            outcome = {"as_of": day.isoformat(), "state": name, "run": str(run_id) if run_id else ""}
        outcomes.append(outcome)
        logger.info("%s %s: %s", job, day, outcome["state"])
        if outcome["state"] in ("Completed", *FINDINGS):
            record_backfill_day(identity, day, outcome["state"], outcome["run"])
        elif outcome["state"] in NOT_FINISHED:
            continue  # a deployment run still queued or running: not on record, a re-run looks at it again
        else:
            stopped = day  # later days build on this one: a re-run resumes here
            break
    publish_backfill_summary(job, start, end, outcomes, len(days))
    headline = backfill_headline(job, len(days), outcomes)
    if stopped:
        error = (
            stop_error
            if isinstance(stop_error, Exception)
            else RuntimeError(f"backfill {job} stopped at {stopped}: the day did not complete; run it again to resume")
        )
        return Failed(message=f"{headline}; stopped at {stopped} (run again to resume)"[:2000], data=error)
    logger.info("%s", headline)
    return Completed(message=headline, data=outcomes)
