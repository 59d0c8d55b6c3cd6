"""The send-gate card and headline (issue 9): OPEN or CLOSED and why, once."""

from __future__ import annotations

from datetime import date

from crm.core.gate import SendGate, backfill_headline, gate_headline, gate_of, send_gate_markdown

DAY = date(2026, 1, 5)


def test_a_closed_gate_says_closed_and_lists_each_reason_once():
    gate = SendGate(DAY, False, ["quality: 1 critical expectation(s) failed", "reconciliation: loans diverge"])
    assert gate_headline(gate) == (
        "send gate CLOSED for 2026-01-05: quality: 1 critical expectation(s) failed; reconciliation: loans diverge"
    )
    runs = [{"job": "quality", "state": "GateClosed", "run": "`abc`", "artifacts": ["`quality-summary`"]}]
    card = send_gate_markdown(gate, runs)
    assert card.startswith("# Send gate 2026-01-05: CLOSED")
    assert card.count("loans diverge") == 1 and "quality-summary" in card and "GateClosed" in card


def test_an_open_gate_says_open():
    gate = SendGate(DAY, True, [])
    assert gate_headline(gate).startswith("send gate OPEN for 2026-01-05")
    assert "OPEN" in send_gate_markdown(gate, [])


def test_the_backfill_headline_counts_days_and_gates():
    outcomes = [{"state": "GateClosed"}, {"state": "GateClosed"}, {"state": "GateClosed"}]
    assert backfill_headline("nightly", 3, outcomes) == "3 of 3 days, 3 gates closed"
    mixed = [{"state": "Completed"}, {"state": "Failed"}]
    assert backfill_headline("nightly", 2, mixed) == "1 of 2 days, 0 gates closed, 1 open"
    assert backfill_headline("ingest", 1, [{"state": "Completed"}]) == "1 of 1 days"
    assert gate_of("reconcile", "Diverged") == "CLOSED" and gate_of("ingest", "Completed") == ""


def test_a_segments_day_that_differs_counts_as_done_without_a_gate():
    assert backfill_headline("segments", 2, [{"state": "Differs"}, {"state": "Completed"}]) == "2 of 2 days"
    assert gate_of("segments", "Differs") == "" and gate_of("loyalty", "Failed") == ""
