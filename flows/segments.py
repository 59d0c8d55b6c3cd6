"""`segments`: lifecycle states, RFM, reachability and channel preference of every customer for a business day."""

from __future__ import annotations

from datetime import date

from prefect import flow, get_run_logger
from prefect.states import Completed

from crm.segments import load_segments_config
from tasks.common import check_preconditions, flow_failure, migrate_warehouse, resolve_as_of
from tasks.segments import publish_segments_report, refresh_segments_task


@flow(name="segments", flow_run_name="segments {as_of}", description=__doc__)
def segments(as_of: date | None = None, full: bool = False, rewrite: bool = False) -> dict:
    """Compute the day's segments and publish the report.

    The night after yesterday's run refreshes incrementally (customers whose inputs changed or
    whose dates crossed a threshold); `full` recomputes everyone. A day already stored is
    rechecked (recomputed from the history as of that day and compared; nothing written), or
    with `rewrite` its history from that day on is replaced. Runs on a closed send gate too: the
    artifact then says the data is suspect.
    """
    as_of = resolve_as_of(as_of)
    checked = check_preconditions("segments", as_of, return_state=True)
    if checked.is_failed():
        return flow_failure(checked)
    config = load_segments_config()
    migrate_warehouse()
    run = refresh_segments_task(as_of, config, full=full, rewrite=rewrite)
    report = publish_segments_report(as_of, run)
    outcome = {**run, "chart": report["chart"]}
    if run["differences"]:
        message = f"segments of {as_of} recomputed: {run['differences']} customers differ from the stored night"
        get_run_logger().warning("%s; see the segments-summary artifact", message)
        return Completed(name="Differs", message=message, data=outcome)
    return outcome


if __name__ == "__main__":
    import sys

    segments(date.fromisoformat(sys.argv[1]) if len(sys.argv) > 1 else None)
