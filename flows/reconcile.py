"""`reconcile`: compare the source of truth with the warehouse for a business day and decide the send gate."""

from __future__ import annotations

from datetime import date

from prefect import flow, get_run_logger
from prefect.states import Completed

from crm.reconcile import entities_to_diff, load_reconciliation_config
from tasks.common import check_preconditions, flow_failure, migrate_warehouse, resolve_as_of, run_name
from tasks.reconcile import compare_figures, diff_ids, publish_reconciliation_report, record_reconciliation_task


@flow(name="reconcile", flow_run_name=run_name("reconcile"), description=__doc__)
def reconcile(as_of: date | None = None) -> dict:
    """Reconcile one business day: figures on both sides, id diffs where they diverge, verdict, artifacts.

    Divergence is a finding, not a crash: the run completes in a state named `Diverged`, records
    the verdict (the send gate closes) and returns `fit_for_sending=False`. It fails only when
    something could not be read or written. Re-running a day replaces that day's results and
    leaves other days alone.
    """
    as_of = resolve_as_of(as_of)
    checked = check_preconditions("reconcile", as_of, return_state=True)
    if checked.is_failed():
        return flow_failure(checked)  # bad settings or an unreachable database: one line, no retries
    config = load_reconciliation_config()
    migrate_warehouse()
    compared = compare_figures(as_of, config)
    figures, in_flight = compared["figures"], dict(compared["in_flight"])
    diffs = {name: diff_ids(name, as_of, config) for name in entities_to_diff(figures, config.diff_when)}
    verdict = record_reconciliation_task(as_of, config, figures, diffs, in_flight)
    publish_reconciliation_report(as_of, config, figures, diffs, verdict)
    failed = figures[~figures["passed"]]
    outcome = {
        "as_of": as_of.isoformat(),
        "fit_for_sending": verdict["fit_for_sending"],
        "figures": len(figures),
        "failed_figures": [f"{r.entity} {r.metric} ({r.scope})" for r in failed.itertuples()],
        "mismatches": {entity: {k: n for k, n in d["counts"].items() if n} for entity, d in diffs.items()},
        "summary": verdict["summary"],
    }
    if verdict["fit_for_sending"]:
        return outcome
    message = f"send gate closed for {as_of}: {len(failed)} figure(s) diverge in {', '.join(dict.fromkeys(failed['entity'])) or 'no entity'}"
    get_run_logger().warning("%s; see the reconciliation-summary artifact", message)
    # Completed, named `Diverged`: a finding is not a crash, yet the UI shows it and an automation
    # can alert the CRM manager on the `prefect.flow-run.Diverged` event. Callers still get `outcome`.
    return Completed(name="Diverged", message=message, data=outcome)


if __name__ == "__main__":
    import sys

    reconcile(date.fromisoformat(sys.argv[1]) if len(sys.argv) > 1 else None)
