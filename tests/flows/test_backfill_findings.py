"""Issue 9: a backfill's summary names each day's outcome as its job's run did.

A stored segments day that recomputes differently (`Differs`) is a finding: the backfill counts it
done and goes on. A loyalty day whose invariants broke failed its run: the backfill stops there
with that error, and never calls the day `FilesRejected` or a closed gate (those are ingest's and
the checks' words). The jobs are stand-ins with the real jobs' names and end states, so the test
is about the backfill's reading of them, not about computing segments or a ledger.
"""

from __future__ import annotations

from datetime import date

import pytest
from prefect import flow
from prefect.states import Completed

import flows.backfill as backfill_module
from crm.core.errors import crm_error
from crm.loyalty.invariants import LedgerInvariantViolated
from flows.backfill import backfill
from tests.flows.test_ui import _artifacts

START, END = date(2026, 1, 5), date(2026, 1, 6)


@flow(name="segments", flow_run_name="segments {as_of}")
def segments_that_differ(as_of: date | None = None):
    return Completed(name="Differs", message=f"segments of {as_of} recomputed: 3 customers differ")


@flow(name="loyalty", flow_run_name="loyalty {as_of}")
def loyalty_with_a_broken_invariant(as_of: date | None = None):
    raise LedgerInvariantViolated(f"loyalty ledger {as_of}: invariants violated: balance below zero")


def test_a_segments_day_that_differs_is_a_finding_and_the_backfill_goes_on(sqlite_backend, monkeypatch):
    monkeypatch.setitem(backfill_module.JOBS, "segments", segments_that_differ)
    state = backfill(job="segments", start=START, end=END, return_state=True)
    assert state.is_completed() and state.message == "2 of 2 days"
    assert [o["state"] for o in state.result()] == ["Differs", "Differs"]
    card = _artifacts(state.state_details.flow_run_id)["backfill-segments"]
    assert card.description == "2 of 2 days" and "CLOSED" not in card.data


def test_a_broken_loyalty_invariant_stops_the_backfill_with_its_own_error(sqlite_backend, monkeypatch):
    monkeypatch.setitem(backfill_module.JOBS, "loyalty", loyalty_with_a_broken_invariant)
    state = backfill(job="loyalty", start=START, end=END, return_state=True)
    assert state.is_failed() and state.message.startswith(f"0 of 2 days; stopped at {START}"), state.message
    with pytest.raises(Exception) as raised:
        state.result()
    assert isinstance(crm_error(raised.value), LedgerInvariantViolated)
    card = _artifacts(state.state_details.flow_run_id)["backfill-loyalty"]
    assert "FilesRejected" not in card.data and "CLOSED" not in card.data and "| Failed |" in card.data
