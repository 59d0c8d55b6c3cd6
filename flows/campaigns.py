"""`campaigns`: plan a business day's campaign messages into the outbox (dispatch sends them), and report."""

from __future__ import annotations

from datetime import date

from prefect import flow, get_run_logger
from prefect.states import Completed

from tasks.campaigns import plan_campaigns_task, publish_campaign_reports
from tasks.common import check_preconditions, flow_failure, migrate_warehouse, resolve_as_of


@flow(name="campaigns", flow_run_name="campaigns {as_of}", description=__doc__)
def campaigns(as_of: date | None = None, force: bool = False):
    """Who enters each campaign, who is due for which step, a decision and its reason per candidate message.

    Refuses (state `Refused`, nothing planned) when the day's send gate is closed, unless `force`
    (recorded in `campaign_runs`). Runs in `nightly` after segments and scoring, before dispatch.
    """
    as_of = resolve_as_of(as_of)
    checked = check_preconditions("campaigns", as_of, return_state=True)
    if checked.is_failed():
        return flow_failure(checked)
    migrate_warehouse()
    result = plan_campaigns_task(as_of, force)
    outcome = result.as_dict()
    if result.refused:
        message = f"campaigns {as_of} refused: send gate closed: " + "; ".join(result.gate_reasons)
        get_run_logger().warning("%s", message)  # a named state and a WARNING line, like quality's GateClosed
        return Completed(name="Refused", message=message[:500], data=outcome)
    outcome["reports"] = publish_campaign_reports(as_of)
    return outcome


if __name__ == "__main__":
    import sys

    campaigns(date.fromisoformat(sys.argv[1]) if len(sys.argv) > 1 else None)
