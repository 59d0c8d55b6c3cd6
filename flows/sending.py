"""`dispatch`: send the messages planned for a business day through each channel's provider, exactly once."""

from __future__ import annotations

from datetime import date

from prefect import flow, get_run_logger
from prefect.states import Completed

from crm.sending import load_sending_config
from tasks.common import migrate_warehouse, resolve_as_of
from tasks.sending import apply_delivery_reports_task, check_dispatch_task, dispatch_provider, publish_dispatch_report


class DispatchFailed(RuntimeError):
    """A provider's dispatch failed after its retries; its unsent messages wait for the next run (same ids)."""


@flow(name="dispatch", flow_run_name="dispatch {as_of}", description=__doc__)
def dispatch(as_of: date | None = None, force_closed_gate: bool = False, send_past_days: bool = False) -> dict:
    """Apply the day's delivery reports, then send the day's planned messages if the day may send.

    Refuses (completes in a state named `Refused`, nothing sent) when the send gate of `as_of` is
    closed, unless `force_closed_gate` (recorded in `dispatch_runs`), and when `as_of` is older than
    the newest ingested day, unless `send_past_days`: a backfill never sends by accident. Providers
    run side by side, each under its Prefect concurrency limit `provider-<name>`.
    """
    as_of = resolve_as_of(as_of)
    migrate_warehouse()
    reports = apply_delivery_reports_task(as_of)
    decision = check_dispatch_task(as_of, force_closed_gate, send_past_days)
    outcome = {
        "as_of": as_of.isoformat(),
        "sent": 0,
        "failed": 0,
        "skipped": 0,
        "refused": str(decision.refusal) if decision.refusal else None,
        "reasons": decision.reasons,
        "forced_closed_gate": decision.forced_closed_gate,
        "reports": reports,
        "providers": {},
    }
    if not decision.allowed:
        publish_dispatch_report(as_of, decision, [])
        message = f"dispatch {as_of} refused ({decision.refusal}): " + "; ".join(decision.reasons)
        get_run_logger().warning("%s", message)  # a named state and a WARNING line, like quality's GateClosed
        return Completed(name="Refused", message=message[:500], data=outcome)
    futures = {name: dispatch_provider.submit(name, as_of, decision) for name in load_sending_config().used_providers()}
    runs, failed = [], []
    for name, future in futures.items():
        future.wait()
        state = future.state
        if state.is_completed():
            runs.append(future.result())
        else:
            error = future.result(raise_on_failure=False)  # the cause reaches the flow's message: one line to act on
            failed.append(f"{name} ({error})" if isinstance(error, BaseException) else name)
    publish_dispatch_report(as_of, decision, runs)
    outcome |= {
        "sent": sum(r["sent"] for r in runs),
        "failed": sum(r["failed"] for r in runs),
        "skipped": sum(sum(r["skipped"].values()) for r in runs),
        "providers": {r["provider"]: r for r in runs},
    }
    if failed:
        raise DispatchFailed(
            f"dispatch {as_of}: provider(s) {'; '.join(failed)} failed; the next run re-sends their messages"
        )
    get_run_logger().info(
        "dispatch %s: %d sent, %d failed, %d skipped", as_of, outcome["sent"], outcome["failed"], outcome["skipped"]
    )
    return outcome


@flow(
    name="delivery-reports",
    flow_run_name="delivery reports {as_of}",
    description="Apply the providers' delivery reports ingested for a day to the outbox.",
)
def delivery_reports(as_of: date | None = None, since: date | None = None) -> dict:
    """Move outbox states forward from the delivery reports ingested from `since` (default `as_of`) to `as_of`.

    Runs in `nightly` after ingestion and before campaigns plan (cascades skip the later channels
    of customers who opened or clicked); `dispatch` applies the day's reports too (idempotent).
    """
    as_of = resolve_as_of(as_of)
    migrate_warehouse()
    return apply_delivery_reports_task(as_of, since)


if __name__ == "__main__":
    import sys

    dispatch(date.fromisoformat(sys.argv[1]) if len(sys.argv) > 1 else None)
