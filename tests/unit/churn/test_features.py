"""Churn features, eligibility and labels on tiny hand-built frames."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from crm.churn import (
    RECENCY_FEATURE,
    ChurnConfig,
    Frames,
    compute_features,
    compute_labels,
    feature_names,
    features_for_kinds,
)

AS_OF = date(2026, 6, 30)


def ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text)


def customers(*ids: int, technical: tuple[int, ...] = ()) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": list(ids),
            "registered_at": [ts("2026-01-01 10:00")] * len(ids),
            "signup_channel": ["online"] * len(ids),
            "is_technical": [i in technical for i in ids],
        }
    )


def loans(rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(
        rows, columns=["customer_id", "issued_at", "principal_minor", "due_on", "status", "closed_at"]
    ).astype({"issued_at": "datetime64[us]", "closed_at": "datetime64[us]", "due_on": "datetime64[us]"})


def orders(rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["customer_id", "ordered_at", "amount_minor", "status"]).astype(
        {"ordered_at": "datetime64[us]"}
    )


@pytest.fixture
def frames() -> Frames:
    return Frames(
        {
            "customers": customers(1, 2, 3, 4, 5, technical=(5,)),
            "loans": loans(
                [
                    # 1: holds an open loan (newbie with a loan)
                    (1, ts("2026-06-20"), 500_000, ts("2026-07-10"), "active", None),
                    # 2: repaid 20 days ago, 5 days late (active repeat)
                    (2, ts("2026-04-01"), 300_000, ts("2026-06-05"), "repaid", ts("2026-06-10 12:00")),
                    # 3: repaid 100 days ago: no longer active repeat
                    (3, ts("2026-02-01"), 300_000, ts("2026-03-25"), "repaid", ts("2026-03-20")),
                    # 5: technical account: never scored
                    (5, ts("2026-06-20"), 500_000, ts("2026-07-10"), "active", None),
                ]
            ),
            "orders": orders(
                [
                    (3, ts("2025-06-01"), 10_000, "completed"),  # over a year ago: not active retail
                    (4, ts("2026-06-02"), 250_000, "completed"),
                    (4, ts("2026-06-21"), 150_000, "completed"),
                    (4, ts("2026-07-02"), 999_999, "completed"),  # after as_of: never known then
                ]
            ),
        }
    )


def test_features_and_eligibility_from_what_was_known_at_the_end_of_the_day(frames):
    config = ChurnConfig()
    out = compute_features(frames, AS_OF, config)
    assert list(out.index) == [1, 2, 3, 4]  # the technical account is left out
    assert out["is_eligible"].to_dict() == {1: True, 2: True, 3: False, 4: True}
    assert out.loc[1, "has_open_loan"] == 1 and out.loc[2, "has_open_loan"] == 0
    assert out.loc[2, "max_days_late"] == 5
    assert out.loc[2, "days_since_last_repayment"] == pytest.approx(20.5)
    # Customer 4's order after as_of is not seen by any window.
    assert out.loc[4, "n_orders_30d"] == 2
    assert out.loc[4, "orders_amount_30d"] == 400_000
    assert out.loc[4, "mean_gap_orders_days"] == pytest.approx(19.0)
    assert out.loc[4, RECENCY_FEATURE] == pytest.approx(10.0)
    # No row of a kind: counts are 0, recencies unknown.
    assert out.loc[4, "n_loans_total"] == 0 and np.isnan(out.loc[4, "days_since_last_loans"])
    assert list(out.columns) == [*feature_names(config), "is_eligible"]


def test_a_retail_chain_without_loans_or_events_gets_features_not_an_error():
    config = ChurnConfig()
    retail = Frames({"customers": customers(1, 2), "orders": orders([(1, ts("2026-06-01"), 1000, "completed")])})
    out = compute_features(retail, AS_OF, config)
    assert out["is_eligible"].to_dict() == {1: True, 2: False}
    usable = features_for_kinds(config, retail.present())
    assert "n_orders_90d" in usable and RECENCY_FEATURE in usable
    assert not [f for f in usable if "loan" in f or "push" in f or "app_event" in f]


def test_no_customers_at_all_gives_an_empty_frame():
    out = compute_features(Frames({}), AS_OF, ChurnConfig())
    assert out.empty and "is_eligible" in out


def test_labels_count_only_activity_within_the_horizon_after_the_snapshot():
    config = ChurnConfig(horizon_days=60)
    later = Frames(
        {
            "orders": orders(
                [
                    (1, ts("2026-07-15"), 1, "completed"),  # inside: came back
                    (2, ts("2026-06-30 23:00"), 1, "completed"),  # on the snapshot day: not after it
                    (3, ts("2026-09-05"), 1, "completed"),  # after the horizon
                ]
            )
        }
    )
    labels = compute_labels(later, AS_OF, config, pd.Index([1, 2, 3, 4]))
    assert labels.to_dict() == {1: 0, 2: 1, 3: 1, 4: 1}


def test_purchases_do_not_count_when_the_config_says_only_loans_do():
    config = ChurnConfig(activity_kinds=["loan"])
    later = Frames({"orders": orders([(1, ts("2026-07-15"), 1, "completed")])})
    assert compute_labels(later, AS_OF, config, pd.Index([1])).to_dict() == {1: 1}
