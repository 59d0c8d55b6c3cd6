"""`loyalty`: post the business day into the cashback ledger, recompute tiers and events, check, report."""

from __future__ import annotations

from datetime import date

from prefect import flow

from crm.loyalty import load_loyalty_config
from tasks.common import check_preconditions, flow_failure, migrate_warehouse, resolve_as_of
from tasks.loyalty import check_ledger_invariants, plan_loyalty_days, post_loyalty_day_task, publish_loyalty_report


@flow(name="loyalty", flow_run_name="loyalty {as_of}", description=__doc__)
def loyalty(as_of: date | None = None) -> dict:
    """Post one business day (and any day missed since the last run) into the append-only ledger.

    Re-running a day adds nothing (entries are keyed by their cause). A broken invariant fails
    the run (a finding, exit 2) after the day's rows are written, so they can be inspected.
    `nightly` runs it after segments (the lead wires it); it reads the warehouse only.
    """
    as_of = resolve_as_of(as_of)
    checked = check_preconditions("loyalty", as_of, return_state=True)
    if checked.is_failed():
        return flow_failure(checked)
    config = load_loyalty_config()
    migrate_warehouse()
    results = []
    for day in plan_loyalty_days(as_of):
        result = post_loyalty_day_task(day, config)
        check_ledger_invariants(day, result)
        results.append(result)
    report = publish_loyalty_report(as_of, config, results[-1])
    return {
        "as_of": as_of.isoformat(),
        "days": [r["as_of"].isoformat() for r in results],
        "entries_added": sum(r["entries_added"] for r in results),
        "tier_changes": sum(r["tier_changes"] for r in results),
        "events": sum(r["events"] for r in results),
        **report,
    }


if __name__ == "__main__":
    import sys

    loyalty(date.fromisoformat(sys.argv[1]) if len(sys.argv) > 1 else None)
