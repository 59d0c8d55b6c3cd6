"""`nightly`: the night's chain for one business day: ingest, then quality and reconciliation (the send gate)."""

from __future__ import annotations

from datetime import date

from prefect import flow, get_run_logger
from prefect.states import Completed, Failed

from crm.core.errors import Finding, one_line
from crm.core.gate import gate_headline
from flows.ingest import ingest
from flows.quality import quality
from flows.reconcile import reconcile
from tasks.common import check_preconditions, flow_failure, resolve_as_of, run_name
from tasks.nightly import publish_send_gate


@flow(
    name="nightly",
    flow_run_name=run_name("nightly"),
    description="Ingest, quality and reconcile one business day, then publish the send gate (OPEN / CLOSED).",
)
def nightly(as_of: date | None = None, force: bool = False):
    """Run ingest, quality and reconcile for `as_of` as subflows and publish the send gate.

    Settings, connections and the day guard are checked first (`force` passes the guard). A
    rejected or misplaced landing file fails `ingest` as a finding: the checks still run and close
    the gate. The run's state message and the `send-gate` artifact say OPEN or CLOSED and why; a
    closed gate completes in a state named `GateClosed` (the CLI exits 2). If a job fails otherwise
    (a bug, a server gone), the night stops there with one ERROR line naming the job and the error
    (its traceback stays in that job's own run): no verdict is recorded, so the gate stays closed.
    """
    as_of = resolve_as_of(as_of)
    preconditions = check_preconditions("nightly", as_of, force=force, return_state=True)
    if preconditions.is_failed():
        return flow_failure(preconditions)
    logger = get_run_logger()
    states = {}
    for job, run in (
        ("ingest", lambda: ingest(as_of=as_of, force=force, return_state=True)),
        ("quality", lambda: quality(as_of=as_of, return_state=True)),
        ("reconcile", lambda: reconcile(as_of=as_of, return_state=True)),
    ):
        state = run()
        states[job] = state
        if state.is_failed():
            error = state.result(raise_on_failure=False)
            if job == "ingest" and isinstance(error, Finding):
                continue  # rejected or misplaced files: the checks run and close the gate
            message = f"nightly {as_of} stopped: {job} failed: {one_line(error, 1000)}"
            logger.error("%s", message)
            return Failed(message=message[:2000], data=error)
    jobs = {
        job: {"state": state.name, "run_id": str(state.state_details.flow_run_id or "")}
        for job, state in states.items()
    }
    gate = publish_send_gate(as_of, jobs)
    headline = gate_headline(gate)
    outcome = {
        "as_of": as_of.isoformat(),
        "ingest": states["ingest"].name,
        "send_gate_open": gate.is_open,
        "reasons": gate.reasons,
    }
    if not gate.is_open:
        logger.warning("%s", headline)
        return Completed(name="GateClosed", message=headline[:500], data=outcome)
    logger.info("%s", headline)
    return Completed(message=headline[:500], data=outcome)


if __name__ == "__main__":
    import sys

    nightly(date.fromisoformat(sys.argv[1]) if len(sys.argv) > 1 else None)
