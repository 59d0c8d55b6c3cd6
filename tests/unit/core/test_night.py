"""The night's DAG as data: a failed step stops what needs it and nothing else; the gate holds back sends."""

from __future__ import annotations

from datetime import date

import pytest

from crm.core.night import (
    NightStep,
    StepOutcome,
    StepStatus,
    blocker,
    key_figures,
    night_status,
    night_summary_markdown,
    parse_steps,
)

S = NightStep


def done(*steps: NightStep) -> dict[NightStep, StepOutcome]:
    return {s: StepOutcome(s, StepStatus.DONE, "Completed") for s in steps}


def test_steps_are_parsed_in_night_order_and_unknown_names_are_refused():
    assert parse_steps("loyalty, segments") == [S.SEGMENTS, S.LOYALTY]
    assert parse_steps(None) == list(NightStep) == parse_steps("")
    with pytest.raises(ValueError, match=r"unknown step.*loyality"):
        parse_steps("segments,loyality")


def test_a_failed_churn_step_blocks_nothing_and_loyalty_never_waits_for_it():
    outcomes = done(S.INGEST, S.QUALITY, S.RECONCILE, S.DELIVERY_REPORTS, S.SEGMENTS)
    outcomes[S.CHURN] = StepOutcome(S.CHURN, StepStatus.FAILED, "Failed", "boom")
    assert blocker(S.LOYALTY, outcomes, gate_open=True) is None
    assert blocker(S.CAMPAIGNS, outcomes, gate_open=True) is None


def test_a_failed_segments_step_skips_campaigns_and_then_dispatch():
    outcomes = done(S.INGEST, S.QUALITY, S.RECONCILE, S.DELIVERY_REPORTS)
    outcomes[S.SEGMENTS] = StepOutcome(S.SEGMENTS, StepStatus.FAILED, "Failed", "boom")
    assert blocker(S.CAMPAIGNS, outcomes, gate_open=True) == "needs segments, which failed"
    outcomes[S.CAMPAIGNS] = StepOutcome(S.CAMPAIGNS, StepStatus.SKIPPED, message="needs segments, which failed")
    assert blocker(S.DISPATCH, outcomes, gate_open=True) == "needs campaigns, which skipped"
    assert blocker(S.LOYALTY, outcomes, gate_open=True) is None


def test_a_closed_gate_holds_back_campaigns_and_dispatch_only():
    outcomes = done(S.INGEST, S.QUALITY, S.RECONCILE, S.DELIVERY_REPORTS, S.SEGMENTS)
    assert blocker(S.CAMPAIGNS, outcomes, gate_open=False) == "send gate closed"
    assert blocker(S.SEGMENTS, outcomes, gate_open=False) is None
    assert blocker(S.LOYALTY, outcomes, gate_open=False) is None


def test_steps_left_out_by_steps_count_as_done_from_an_earlier_run():
    assert blocker(S.CAMPAIGNS, {}, gate_open=True) is None  # segments not selected tonight


def test_the_summary_names_every_step_with_its_figures_or_reason():
    outcomes = [
        StepOutcome(S.INGEST, StepStatus.DONE, "Completed", "", 12.345, "r1", {"rows_loaded": 1234567}),
        StepOutcome(S.CHURN, StepStatus.SKIPPED, message="no champion model yet"),
        StepOutcome(S.LOYALTY, StepStatus.FAILED, "Failed", "ledger invariant broken", 3.0, "r2"),
    ]
    failed, skipped = night_status(outcomes)
    assert failed == ["loyalty failed: ledger invariant broken"] and skipped == ["churn (no champion model yet)"]
    text = night_summary_markdown(date(2026, 1, 5), "headline", outcomes, {"ingest": "[ingest](u)"})
    assert "rows loaded 1,234,567" in text and "12.3" in text and "[ingest](u)" in text
    assert "| churn | skipped |" in text and "no champion model yet" in text
    assert "| loyalty | failed |" in text and "ledger invariant broken" in text


def test_key_figures_keep_scalars_only():
    assert key_figures({"as_of": "x", "rows": 3, "nested": {"a": 1}, "names": [1], "gate_open": True}) == {
        "rows": 3,
        "gate_open": True,
    }
    assert key_figures("not a dict") == {}
