"""The segment snapshot of a day on SQLite and PostgreSQL: intervals, churn deciles and loyalty tiers when present."""

from __future__ import annotations

from datetime import date

from sqlalchemy import insert

from crm.core.db import read_frame
from crm.core.migrations import upgrade_warehouse
from crm.core.settings import make_engine
from crm.segments import SNAPSHOT_COLUMNS, segment_changes, segment_snapshot
from models.churn import churn_scores
from models.loyalty import loyalty_tiers
from models.segments import segment_events, segment_memberships

D1, D2, D3 = date(2026, 1, 10), date(2026, 1, 11), date(2026, 1, 12)


def member(customer_id, kind, segment, valid_from, valid_to=None):
    return {
        "customer_id": customer_id,
        "kind": kind,
        "segment": segment,
        "valid_from": valid_from,
        "valid_to": valid_to,
        "rule": f"{kind}={segment}",
    }


def test_the_snapshot_of_a_day_pivots_the_memberships_valid_then(backend):
    engine = make_engine(backend.warehouse_url)
    upgrade_warehouse(engine)
    rows = [
        member(1, "lifecycle", "repeat", D1),
        member(1, "lifecycle_substate", "active", D1, D2),
        member(1, "lifecycle_substate", "pre_churn", D2),
        member(1, "rfm", "r5f3m2", D1),
        member(1, "rfm_cell", "champions", D1),
        member(1, "reachable", "push", D1),
        member(1, "reachable", "sms", D1, D2),
        member(1, "preferred_channel", "push", D1),
        member(2, "lifecycle", "lead", D1),
        member(2, "technical", "technical", D1),
        member(3, "lifecycle", "lead", D2),
    ]
    with engine.begin() as conn:
        conn.execute(insert(segment_memberships), rows)
        conn.execute(
            insert(segment_events),
            [
                {
                    "as_of": D2,
                    "kind": "lifecycle_substate",
                    "segment": "pre_churn",
                    "customer_id": 1,
                    "change": "entered",
                    "rule": "r",
                }
            ],
        )
    with engine.connect() as conn:
        first = read_frame(conn, segment_snapshot(D1))
        second = read_frame(conn, segment_snapshot(D2))
        entered = conn.execute(segment_changes(D2, "lifecycle_substate", "pre_churn")).all()
    assert list(first.columns) == list(SNAPSHOT_COLUMNS)
    assert first["customer_id"].tolist() == [1, 2]
    one = first.iloc[0].to_dict()
    assert (one["lifecycle_state"], one["lifecycle_substate"], one["rfm_cell"]) == ("repeat", "active", "champions")
    assert (one["rfm_recency"], one["rfm_frequency"], one["rfm_monetary"]) == (5, 3, 2)
    assert (one["reachable_push"], one["reachable_email"], one["reachable_sms"]) == (True, False, True)
    assert one["churn_decile"] is None and one["loyalty_tier"] is None
    assert bool(first.iloc[1]["is_technical"]) and not bool(one["is_technical"])
    assert second["customer_id"].tolist() == [1, 2, 3]
    assert second.iloc[0]["lifecycle_substate"] == "pre_churn" and not second.iloc[0]["reachable_sms"]
    assert [tuple(r) for r in entered] == [(1, "r")]

    with engine.begin() as conn:
        conn.execute(
            insert(churn_scores),
            [{"as_of": D2, "customer_id": 1, "probability": 0.7, "decile": 2, "model_version": "m"}],
        )
        conn.execute(
            insert(loyalty_tiers),
            [
                {"customer_id": 1, "valid_from": D1, "valid_to": D2, "tier": "silver", "rule": "r"},
                {"customer_id": 1, "valid_from": D2, "valid_to": None, "tier": "gold", "rule": "r"},
            ],
        )
    with engine.connect() as conn:
        second = read_frame(conn, segment_snapshot(D2))
        third = read_frame(conn, segment_snapshot(D3))
    assert (second.iloc[0]["churn_decile"], second.iloc[0]["loyalty_tier"]) == (2, "gold")
    assert third.iloc[0]["churn_decile"] is None or third["churn_decile"].isna().iloc[0]
