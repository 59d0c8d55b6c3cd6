"""`nightly`: the night's chain for one business day: ingest, then quality and reconciliation (the send gate)."""

from __future__ import annotations

from datetime import date

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.states import Completed

from crm.core.errors import Finding
from crm.core.gate import read_send_gate
from crm.core.settings import warehouse_engine
from flows.ingest import ingest
from flows.quality import quality
from flows.reconcile import reconcile
from tasks.common import check_preconditions, flow_failure, resolve_as_of


@flow(name="nightly", flow_run_name="nightly {as_of}", description=__doc__)
def nightly(as_of: date | None = None, force: bool = False):
    """Run ingest, quality and reconcile for `as_of` as subflows and publish the send gate.

    Settings, connections and the day guard are checked first (`force` passes the guard). A
    rejected or misplaced landing file fails `ingest` as a finding: the checks still run and close
    the gate. A closed gate completes in a state named `GateClosed` (the CLI exits 2). If `ingest`
    fails otherwise (a bug, a server gone), the night stops there with that error: no verdict is
    recorded, so the gate stays closed.
    """
    as_of = resolve_as_of(as_of)
    preconditions = check_preconditions("nightly", as_of, force=force, return_state=True)
    if preconditions.is_failed():
        return flow_failure(preconditions)
    ingested = ingest(as_of=as_of, force=force, return_state=True)
    if ingested.is_failed() and not isinstance(ingested.result(raise_on_failure=False), Finding):
        return ingested
    checked = quality(as_of=as_of)
    reconciled = reconcile(as_of=as_of)
    with warehouse_engine().connect() as conn:
        gate = read_send_gate(conn, as_of)
    lines = [f"# Send gate {as_of}: {'OPEN' if gate.is_open else 'CLOSED'}", ""]
    lines += [f"- {reason}" for reason in gate.reasons] or ["Every check passed: the day's data may drive sends."]
    lines += [
        "",
        f"- ingest: {ingested.name}",
        f"- quality: {checked['summary']}",
        f"- reconciliation: {reconciled['summary']}",
    ]
    create_markdown_artifact(key="send-gate", markdown="\n".join(lines), description=f"Send gate {as_of}")
    outcome = {
        "as_of": as_of.isoformat(),
        "ingest": ingested.name,
        "send_gate_open": gate.is_open,
        "reasons": gate.reasons,
    }
    if not gate.is_open:
        get_run_logger().warning("send gate closed for %s: %s", as_of, "; ".join(gate.reasons))
        return Completed(name="GateClosed", message="; ".join(gate.reasons)[:500], data=outcome)
    return outcome


if __name__ == "__main__":
    import sys

    nightly(date.fromisoformat(sys.argv[1]) if len(sys.argv) > 1 else None)
