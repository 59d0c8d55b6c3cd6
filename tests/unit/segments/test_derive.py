"""Segment rules at their boundaries, on one-row hand-built aggregates (no database)."""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd
import pytest

from crm.core.config import ConfigError, load_config
from crm.segments import (
    AGGREGATE_COLUMNS,
    SegmentsConfig,
    add_fact_deltas,
    derive_segments,
    diff_memberships,
    memberships,
    recheck_on,
    typed_aggregates,
)

D = date(2026, 6, 30)
CONFIG = SegmentsConfig()


def days_ago(n: int) -> date:
    return D - timedelta(days=n)


def agg(**values) -> pd.DataFrame:
    row = dict.fromkeys(AGGREGATE_COLUMNS)
    row.update(customer_id=1, registered_on=days_ago(400))
    row.update(values)
    return typed_aggregates(pd.DataFrame([row]))


def segment(**values) -> dict:
    return derive_segments(agg(**values), D, CONFIG).iloc[0].to_dict()


def state(**values) -> tuple:
    s = segment(**values)
    return s["lifecycle_state"], s["lifecycle_substate"]


REPEAT = {"loans": 1, "loans_repaid": 1, "last_loan_on": days_ago(800)}


def test_pre_churn_until_the_60th_day_after_the_last_repayment_then_churn():
    assert state(**REPEAT, last_repaid_on=days_ago(0)) == ("repeat", "pre_churn")
    assert state(**REPEAT, last_repaid_on=days_ago(59)) == ("repeat", "pre_churn")
    assert state(**REPEAT, last_repaid_on=days_ago(60)) == ("repeat", "churn")
    assert state(**{**REPEAT, "loans": 2, "loans_open": 1}, last_repaid_on=days_ago(200)) == ("repeat", "active")


def test_deep_churn_after_two_years_without_a_loan_or_a_reaction():
    assert state(**REPEAT, last_repaid_on=days_ago(729)) == ("repeat", "churn")
    assert state(**REPEAT, last_repaid_on=days_ago(730)) == ("repeat", "deep_churn")
    assert state(**REPEAT, last_repaid_on=days_ago(730), last_reaction_on=days_ago(729)) == ("repeat", "churn")
    assert state(**REPEAT, last_repaid_on=days_ago(730), last_reaction_on=days_ago(730)) == ("repeat", "deep_churn")


def test_an_approval_is_valid_three_days_the_day_of_approval_included():
    approved = {"apps": 1}
    assert state(**approved, last_approved_on=days_ago(0)) == ("newbie", "approved_not_taken")
    assert state(**approved, last_approved_on=days_ago(2)) == ("newbie", "approved_not_taken")
    assert state(**approved, last_approved_on=days_ago(3)) == ("newbie", "approval_expired")
    assert state(**approved, last_expired_on=days_ago(1)) == ("newbie", "approval_expired")


def test_newbies_leads_rejected_and_retail():
    assert state() == ("lead", "never_authorised")
    assert state(has_login=True) == ("lead", "never_applied")
    assert state(apps=1, apps_pending=1) == ("newbie", "applying")
    assert state(apps=2, apps_rejected=1, apps_pending=1) == ("newbie", "applying")
    assert state(apps=2, apps_rejected=2) == ("rejected", None)
    assert state(apps=2, apps_rejected=1, last_abandoned_on=days_ago(5)) == ("newbie", "abandoned_application")
    assert state(apps=2, last_abandoned_on=days_ago(5), last_expired_on=days_ago(2)) == ("newbie", "approval_expired")
    assert state(apps=1, apps_issued=1, loans=1, loans_open=1, last_loan_on=days_ago(3)) == ("newbie", "first_loan")
    assert state(orders=1, last_order_on=days_ago(364)) == ("retail", "active_base")
    assert state(orders=1, last_order_on=days_ago(365)) == ("retail", "lapsed")


def test_retail_active_base_and_intersection():
    s = segment(orders=1, last_order_on=days_ago(10), loans=1, loans_open=1, last_loan_on=days_ago(400))
    assert (s["retail_active"], s["is_intersection"]) == (True, True)
    s = segment(orders=1, last_order_on=days_ago(10), loans=1, last_loan_on=days_ago(365))
    assert (s["retail_active"], s["is_intersection"]) == (True, False)
    assert segment(orders=1, last_order_on=days_ago(365))["retail_active"] is False


def test_reachability_needs_an_open_contact_and_never_a_technical_account():
    s = segment(contact_push=True, contact_sms=True)
    assert (s["reachable_push"], s["reachable_email"], s["reachable_sms"]) == (True, False, True)
    s = segment(contact_push=True, contact_email=True, contact_sms=True, is_technical=True)
    assert (s["reachable_push"], s["reachable_email"], s["reachable_sms"], s["is_technical"]) == (
        False,
        False,
        False,
        True,
    )


def test_preferred_channel_is_the_best_reaction_rate_ties_to_the_cheaper():
    assert segment()["preferred_channel"] is None
    assert segment(delivered_email=10, delivered_sms=10)["preferred_channel"] is None  # no reaction anywhere
    assert (
        segment(delivered_email=10, reactions_email=2, delivered_sms=2, reactions_sms=1)["preferred_channel"] == "sms"
    )
    assert (
        segment(delivered_push=4, reactions_push=1, delivered_email=8, reactions_email=2)["preferred_channel"] == "push"
    )


def test_rfm_scores_at_their_boundaries_and_cells():
    none = segment()
    assert pd.isna(none["rfm_recency"]) and none["rfm_cell"] is None
    new = segment(loans=1, loans_open=1, last_loan_on=days_ago(30), window_loans=1, window_interest_minor=49_999)
    assert (new["rfm_recency"], new["rfm_frequency"], new["rfm_monetary"], new["rfm_cell"]) == (
        5,
        1,
        1,
        "new_customers",
    )
    best = segment(orders=8, last_order_on=days_ago(31), window_orders=8, window_order_minor=1_500_000)
    assert (best["rfm_recency"], best["rfm_frequency"], best["rfm_monetary"], best["rfm_cell"]) == (
        4,
        5,
        5,
        "champions",
    )
    old = segment(orders=3, last_order_on=days_ago(366), window_orders=0)
    assert (old["rfm_recency"], old["rfm_frequency"], old["rfm_cell"]) == (1, 1, "lost")
    codes = memberships(derive_segments(agg(orders=8, last_order_on=days_ago(31), window_orders=8), D, CONFIG), CONFIG)
    assert codes.set_index("kind").loc["rfm", "segment"] == "r4f5m1"
    risk = segment(orders=5, last_order_on=days_ago(181), window_orders=5, window_order_minor=200_000)
    assert (risk["rfm_recency"], risk["rfm_frequency"], risk["rfm_monetary"], risk["rfm_cell"]) == (2, 4, 3, "at_risk")


def test_recheck_day_is_the_first_threshold_ahead():
    frame = agg(**REPEAT, last_repaid_on=days_ago(10))
    # The recency score of the last loan (800 days ago) no longer moves; pre-churn ends in 50 days.
    assert recheck_on(frame, D, CONFIG).iloc[0] == pd.Timestamp(D + timedelta(days=50))
    frame = agg(apps=1, last_approved_on=days_ago(0))
    assert recheck_on(frame, D, CONFIG).iloc[0] == pd.Timestamp(D + timedelta(days=3))
    frame = agg(orders=1, last_order_on=days_ago(0), window_orders=1, first_window_activity_on=days_ago(0))
    assert recheck_on(frame, D, CONFIG).iloc[0] == pd.Timestamp(D + timedelta(days=31))  # recency 5 -> 4
    assert pd.isna(recheck_on(agg(), D, CONFIG).iloc[0])


def test_memberships_and_their_diff_name_the_rule_that_moved_the_customer():
    before = memberships(
        derive_segments(agg(**REPEAT, last_repaid_on=days_ago(60)), D - timedelta(days=1), CONFIG), CONFIG
    )
    after = memberships(derive_segments(agg(**REPEAT, last_repaid_on=days_ago(60)), D, CONFIG), CONFIG)
    current = before.assign(valid_from=pd.Timestamp(days_ago(59)))
    intervals, events, changed = diff_memberships(current, after, D)
    moved = events[events["kind"] == "lifecycle_substate"].set_index("change")
    assert moved.loc["left", "segment"] == "pre_churn" and moved.loc["entered", "segment"] == "churn"
    assert moved.loc["entered", "rule"] == "repeat: no open loan, last repayment 60 days ago or more"
    assert moved.loc["left", "rule"] == moved.loc["entered", "rule"]
    assert changed.tolist() == [1]
    closed = intervals[intervals["valid_to"].notna()]
    assert closed[["segment", "valid_from", "valid_to"]].values.tolist() == [
        ["pre_churn", pd.Timestamp(days_ago(59)), pd.Timestamp(D)]
    ]
    assert set(intervals.loc[intervals["valid_to"].isna(), "segment"]) == {"churn"}


def test_config_defaults_match_the_committed_file_and_mistakes_name_the_field(tmp_path, monkeypatch):
    assert load_config("segments", SegmentsConfig) == SegmentsConfig()
    monkeypatch.setenv("CRM_CONFIG_DIR", str(tmp_path))
    (tmp_path / "segments.yaml").write_text("pre_churn_days: -1\n")
    with pytest.raises(ConfigError, match=r"segments.yaml: pre_churn_days: .*\(got -1\)"):
        load_config("segments", SegmentsConfig)
    (tmp_path / "segments.yaml").write_text("rfm:\n  cells:\n    - {name: all, recency: [2, 5], frequency: [1, 5]}\n")
    with pytest.raises(ConfigError, match=r"rfm: .*no cell covers r1f1"):
        load_config("segments", SegmentsConfig)
    (tmp_path / "segments.yaml").write_text("rfm:\n  recency_days: [30, 20, 180, 365]\n")
    with pytest.raises(ConfigError, match=r"rfm.recency_days: .*strictly increasing"):
        load_config("segments", SegmentsConfig)


def test_a_days_facts_add_to_the_stored_aggregates_counts_add_latest_and_earliest_times_move_logins_or():
    stored = pd.concat(
        [
            agg(customer_id=1, delivered_email=2, reactions_email=1, last_reaction_on=days_ago(10)),
            agg(customer_id=2, window_interest_minor=500, first_window_activity_on=days_ago(30), has_login=True),
            agg(customer_id=3, delivered_sms=1),
        ],
        ignore_index=True,
    )
    messages = pd.DataFrame(
        {
            "customer_id": [1, 2],
            "delivered_push": [0, 1],
            "delivered_email": [3, 0],
            "delivered_sms": [0, 0],
            "reactions_push": [0, 1],
            "reactions_email": [2, 0],
            "reactions_sms": [0, 0],
            "last_reaction_on": ["2026-06-30 08:15:00", "2026-06-30 23:59:59"],  # raw, as SQLite gives it
        }
    )
    logins = pd.DataFrame({"customer_id": [1, 2]})
    interest = pd.DataFrame(
        {"customer_id": [2, 3], "window_interest_minor": [250, 100], "first_window_activity_on": [None, None]}
    )
    interest["first_window_activity_on"] = ["2026-06-30 10:00:00", "2026-06-29 10:00:00"]
    out = add_fact_deltas(stored, messages, logins, interest).set_index("customer_id")
    assert list(out.columns) == list(AGGREGATE_COLUMNS[1:])
    assert (out.loc[1, "delivered_email"], out.loc[1, "reactions_email"]) == (5, 3)
    assert out.loc[1, "last_reaction_on"] == pd.Timestamp(D)  # a reaction today is the latest
    assert out.loc[2, "last_reaction_on"] == pd.Timestamp(D)  # none before: today's
    assert pd.isna(out.loc[3, "last_reaction_on"])
    assert out["has_login"].tolist() == [True, True, False]
    assert out.loc[2, "window_interest_minor"] == 750
    assert out.loc[2, "first_window_activity_on"] == pd.Timestamp(days_ago(30))  # the earlier stays
    assert out.loc[3, "first_window_activity_on"] == pd.Timestamp(days_ago(1))  # none before: the day's
    assert out.loc[3, "delivered_sms"] == 1 and out.loc[3, "delivered_push"] == 0
    pd.testing.assert_frame_equal(
        add_fact_deltas(stored, messages.iloc[:0], logins.iloc[:0], interest.iloc[:0]), stored
    )
