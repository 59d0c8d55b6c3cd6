"""`quality`: validate a business day's data with the expectation suites, decide whether it may drive
sends (the quality half of the send gate), publish Data Docs and the integrations' health."""

from __future__ import annotations

import json
from datetime import date

from prefect import flow, get_run_logger
from prefect.states import Completed

from tasks.common import check_preconditions, flow_failure, migrate_warehouse, resolve_as_of, run_name
from tasks.quality import check_integration_health, publish_quality_report, save_quality_results, validate_day


@flow(name="quality", flow_run_name=run_name("quality"), description=__doc__)
def quality(as_of: date | None = None):
    """Validate the day's batch with every suite, store one row per expectation, record the verdict.

    Failed expectations are findings, not errors: the run completes, and a failed `critical`
    expectation closes the send gate for `as_of` (warnings do not): the run then completes in a
    state named `GateClosed` with the reasons as its message and one WARNING line.
    """
    as_of = resolve_as_of(as_of)
    checked = check_preconditions("quality", as_of, return_state=True)
    if checked.is_failed():
        return flow_failure(checked)  # bad settings or an unreachable warehouse: one line, no retries
    migrate_warehouse()
    validation = validate_day(as_of)
    rows = validation["results"]
    verdict = save_quality_results(as_of, rows)
    publish_quality_report(as_of, rows, verdict, validation["data_docs"])
    health = check_integration_health(as_of)
    failures = [
        {
            "suite": r["suite"],
            "rule": r["rule"],
            "expectation": r["expectation"],
            "column": r["column_name"],
            "severity": r["severity"],
            "unexpected_count": r["unexpected_count"],
            "examples": json.loads(r["unexpected_examples"] or "[]"),
        }
        for r in rows
        if not r["success"]
    ]
    outcome = {
        "as_of": as_of.isoformat(),
        "fit_for_sending": verdict["fit_for_sending"],
        "summary": verdict["summary"],
        "expectations": len(rows),
        "critical_failures": verdict["critical_failures"],
        "warning_failures": verdict["warning_failures"],
        "failures": failures,
        "data_docs": validation["data_docs"],
        "integration_health": health,
    }
    if verdict["fit_for_sending"]:
        return outcome
    # Completed, named `GateClosed` like reconcile's `Diverged`: a finding, visible in the run list.
    message = f"send gate closed for {as_of}: {verdict['summary']}"
    get_run_logger().warning("%s; see the quality-summary artifact", message)
    return Completed(name="GateClosed", message=message[:500], data=outcome)


if __name__ == "__main__":
    import sys

    quality(date.fromisoformat(sys.argv[1]) if len(sys.argv) > 1 else None)
