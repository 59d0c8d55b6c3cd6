"""`nightly`: the whole night for one business day, as subflows named like the business steps.

ingest -> quality and reconciliation (the send gate) -> delivery reports -> segments -> churn
scoring -> loyalty -> campaign planning -> dispatch (only when the gate is open) -> run summary.
What each step needs is `crm.core.night.NEEDS`: a failed step stops what depends on it and
nothing else.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import date

from prefect import flow, get_run_logger
from prefect.states import Completed, Failed

from crm.churn import NoChampion
from crm.core.errors import Finding, one_line
from crm.core.gate import gate_headline
from crm.core.night import (
    GATE_STEPS,
    NightStep,
    StepOutcome,
    StepStatus,
    blocker,
    key_figures,
    night_status,
    parse_steps,
)
from flows.campaigns import campaigns
from flows.churn import score_churn
from flows.ingest import ingest
from flows.loyalty import loyalty
from flows.quality import quality
from flows.reconcile import reconcile
from flows.segments import segments
from flows.sending import delivery_reports, dispatch
from tasks.common import check_preconditions, flow_failure, resolve_as_of, run_name
from tasks.nightly import churn_champion_missing, publish_night_summary, publish_send_gate, read_gate
from tasks.sending import ensure_missing_provider_limits

# A step whose failure is a finding (the step did its work and found something) counts as done.
FINDING_IS_DONE = frozenset({NightStep.INGEST})


def _run_step(step: NightStep, call: Callable, errors: dict) -> StepOutcome:
    started = time.perf_counter()
    state = call()
    seconds = time.perf_counter() - started
    result = state.result(raise_on_failure=False)
    run_id = str(state.state_details.flow_run_id or "")
    if state.is_failed() or state.is_crashed():
        if isinstance(result, NoChampion):  # a company before its first training: nothing to score yet
            return StepOutcome(step, StepStatus.SKIPPED, state.name, "no champion model yet (crm run train-churn)")
        if step in FINDING_IS_DONE and isinstance(result, Finding):
            return StepOutcome(step, StepStatus.DONE, state.name, one_line(result, 300), seconds, run_id)
        errors[step] = result
        return StepOutcome(step, StepStatus.FAILED, state.name, one_line(result, 500), seconds, run_id)
    message = state.message or ""
    return StepOutcome(step, StepStatus.DONE, state.name, message[:300], seconds, run_id, key_figures(result))


@flow(
    name="nightly",
    flow_run_name=run_name("nightly"),
    description=(
        "The whole night for one business day: ingest, quality and reconciliation (the send gate), "
        "segments, churn scoring, loyalty, campaign planning, dispatch when the gate is open, run summary."
    ),
)
def nightly(
    as_of: date | None = None,
    force: bool = False,
    steps: list[str] | None = None,
    send: bool = True,
    send_past_days: bool = False,
):
    """Run the night's steps for `as_of` as subflows and publish the send gate and the run summary.

    `steps` runs only those steps (e.g. `["segments", "loyalty"]` after a rule change; the others'
    stored output stands); `force` passes the day guard; `send=False` plans but does not dispatch
    (backfills pass it unless asked to send for past days); `send_past_days` lets dispatch send for
    a day older than the newest ingested one. A closed gate completes in a
    state named `GateClosed` (campaigns and dispatch skipped, the CLI exits 2); a failed step fails
    the night with one ERROR line naming it, after every step that does not depend on it has run.
    """
    as_of = resolve_as_of(as_of)
    chosen = parse_steps(steps)
    preconditions = check_preconditions("nightly", as_of, force=force, return_state=True)
    if preconditions.is_failed():
        return flow_failure(preconditions)
    logger = get_run_logger()
    calls: dict[NightStep, Callable] = {
        NightStep.INGEST: lambda: ingest(as_of=as_of, force=force, return_state=True),
        NightStep.QUALITY: lambda: quality(as_of=as_of, return_state=True),
        NightStep.RECONCILE: lambda: reconcile(as_of=as_of, return_state=True),
        NightStep.DELIVERY_REPORTS: lambda: delivery_reports(as_of=as_of, return_state=True),
        NightStep.SEGMENTS: lambda: segments(as_of=as_of, return_state=True),
        NightStep.CHURN: lambda: score_churn(as_of=as_of, return_state=True),
        NightStep.LOYALTY: lambda: loyalty(as_of=as_of, return_state=True),
        NightStep.CAMPAIGNS: lambda: campaigns(as_of=as_of, return_state=True),
        NightStep.DISPATCH: lambda: dispatch(as_of=as_of, send_past_days=send_past_days, return_state=True),
    }
    outcomes: dict[NightStep, StepOutcome] = {}
    errors: dict[NightStep, BaseException] = {}
    gate = None
    for step in chosen:
        checks = [s for s in chosen if s in GATE_STEPS]
        if gate is None and checks and step not in GATE_STEPS and all(s in outcomes for s in checks):
            gate = _publish_gate(as_of, outcomes)  # right after the checks, before anything reads the gate
        if gate is None and step in (NightStep.CAMPAIGNS, NightStep.DISPATCH):
            gate = read_gate(as_of)  # the checks were not selected: their stored verdicts decide
        why = blocker(step, outcomes, gate.is_open if gate else None)
        if why is None and step == NightStep.DISPATCH and not send:
            why = "a backfill does not send for past days (--send-past-days)"
        if why is None and step == NightStep.CHURN:
            why = churn_champion_missing()  # skipped, not red, until the first model is trained
        if why:
            outcomes[step] = StepOutcome(step, StepStatus.SKIPPED, message=why)
            logger.info("%s skipped: %s", step, why)
            continue
        if step == NightStep.DISPATCH:
            ensure_missing_provider_limits()
        outcomes[step] = _run_step(step, calls[step], errors)
        if outcomes[step].status == StepStatus.FAILED:  # the night goes on; its one ERROR line comes at the end
            logger.info("%s failed: %s", step, outcomes[step].message)
    if gate is None:
        gate = _publish_gate(as_of, outcomes) if any(s in chosen for s in GATE_STEPS) else read_gate(as_of)

    failed, skipped = night_status(outcomes.values())
    headline = gate_headline(gate)
    if failed:
        headline = f"nightly {as_of}: {'; '.join(failed)}" + (f"; skipped: {', '.join(skipped)}" if skipped else "")
    elif skipped:
        headline += f"; skipped: {', '.join(skipped)}"
    publish_night_summary(as_of, headline, [o.as_row() for o in outcomes.values()])
    outcome = {
        "as_of": as_of.isoformat(),
        "ingest": outcomes[NightStep.INGEST].state if NightStep.INGEST in outcomes else "not selected",
        "send_gate_open": gate.is_open,
        "reasons": gate.reasons,
        "steps": {o.step.value: o.status.value for o in outcomes.values()},
    }
    if failed:
        logger.error("%s", headline)  # one ERROR line for the night: every failed step, and what was skipped
        # The first failed step's own error, so the CLI's exit code says who must act (2, 3, 4 or 1).
        first = next(iter(errors.values()), None)
        return Failed(message=headline[:2000], data=first if isinstance(first, Exception) else RuntimeError(headline))
    if not gate.is_open:
        logger.warning("%s", headline)
        return Completed(name="GateClosed", message=headline[:500], data=outcome)
    logger.info("%s", headline)
    return Completed(message=headline[:500], data=outcome)


def _publish_gate(as_of: date, outcomes: dict[NightStep, StepOutcome]):
    jobs = {
        o.step.value: {"state": o.state or o.status.value, "run_id": o.run_id}
        for o in outcomes.values()
        if o.step in (NightStep.INGEST, *GATE_STEPS)
    }
    return publish_send_gate(as_of, jobs)


if __name__ == "__main__":
    import sys

    nightly(date.fromisoformat(sys.argv[1]) if len(sys.argv) > 1 else None)
