"""Segment rules on hand-built warehouse rows, SQLite and PostgreSQL: unsubscribe on the day, technical accounts,
the 60-day crossing found by the incremental refresh without new input, rechecks and rewrites."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pandas as pd
from sqlalchemy import func, insert, select, update

from crm.core.contracts import CUSTOMER_CONTACTS, CUSTOMERS, LOANS
from crm.core.db import read_frame
from crm.core.migrations import upgrade_warehouse
from crm.core.settings import make_engine
from crm.ingest import record_versions
from crm.segments import RunMode, SegmentsConfig, refresh_segments, segment_changes, segment_snapshot
from models.campaigns import purged_customers
from models.ingest import staging
from models.segments import segment_aggregates, segment_memberships, segment_runs, segment_sizes

D0 = date(2026, 3, 1)
CONFIG = SegmentsConfig()


def at(day: date, hour: int = 12) -> datetime:
    return datetime.combine(day, datetime.min.time()) + timedelta(hours=hour)


def versions(conn, entity, rows: list[dict], ingested: date) -> None:
    record_versions(conn, entity, pd.DataFrame(rows), ingested)


def customer(cid: int, technical: bool = False) -> dict:
    return {
        "customer_id": cid,
        "registered_at": at(D0 - timedelta(days=100)),
        "birth_date": None,
        "signup_channel": "online",
        "is_technical": technical,
        "updated_at": at(D0 - timedelta(days=100)),
    }


def contact(cid: int, channel: str, consented: bool, updated: datetime) -> dict:
    return {
        "customer_id": cid,
        "channel": channel,
        "address": f"addr-{cid}-{channel}",
        "is_consented": consented,
        "updated_at": updated,
    }


def loan(loan_id: int, cid: int, status: str, closed: datetime | None, updated: datetime) -> dict:
    return {
        "loan_id": loan_id,
        "application_id": loan_id,
        "customer_id": cid,
        "issued_at": at(D0 - timedelta(days=80)),
        "principal_minor": 500_000,
        "daily_rate_bp": 100,
        "term_days": 14,
        "due_on": D0 - timedelta(days=66),
        "status": status,
        "closed_at": closed,
        "updated_at": updated,
    }


def unsubscribe(event_id: str, cid: int, channel: str, when: datetime, ingested: date) -> dict:
    return {
        "event_id": event_id,
        "message_id": "m-" + event_id,
        "customer_id": cid,
        "channel": channel,
        "event_type": "unsubscribed",
        "occurred_at": when,
        "campaign_id": None,
        "provider": "p",
        "ingested_on": ingested,
    }


def snapshot(engine, day: date) -> pd.DataFrame:
    with engine.connect() as conn:
        return read_frame(conn, segment_snapshot(day)).set_index("customer_id")


def test_rules_on_hand_built_rows_full_incremental_recheck_and_rewrite(backend):
    engine = make_engine(backend.warehouse_url)
    upgrade_warehouse(engine)
    repaid_on = D0 - timedelta(days=58)  # pre-churn on D0 and D0+1, churn from D0+2 (the 60th day)
    with engine.begin() as conn:
        versions(conn, CUSTOMERS, [customer(1), customer(2), customer(3, technical=True)], D0)
        versions(
            conn,
            CUSTOMER_CONTACTS,
            [
                contact(1, "email", True, at(D0 - timedelta(days=50))),
                contact(1, "sms", False, at(D0 - timedelta(days=50))),
                contact(2, "push", True, at(D0 - timedelta(days=50))),
                contact(3, "sms", True, at(D0 - timedelta(days=50))),
            ],
            D0,
        )
        versions(conn, LOANS, [loan(10, 2, "repaid", at(repaid_on, 9), at(repaid_on, 9))], D0)
    first = refresh_segments(engine, D0, CONFIG)
    # The first day is the baseline: memberships start there, nobody "entered" (no launch-night campaign blast).
    assert (first.mode, first.baseline, first.events) == (RunMode.FULL, True, 0)
    with engine.connect() as conn:
        assert conn.execute(segment_changes(D0, "lifecycle_substate", "pre_churn")).all() == []
        first_sizes = dict(
            conn.execute(
                select(segment_sizes.c.segment, segment_sizes.c.customers).where(
                    segment_sizes.c.as_of == D0, segment_sizes.c.kind == "lifecycle_substate"
                )
            ).all()
        )
    assert first_sizes["pre_churn"] == 1

    # D0+1: customer 1 unsubscribes from e-mail at 15:00; the back end has not caught up (no new contact row).
    d1 = D0 + timedelta(days=1)
    with engine.begin() as conn:
        conn.execute(insert(staging["message_events"]), [unsubscribe("u1", 1, "email", at(d1, 15), d1)])
    assert refresh_segments(engine, d1, CONFIG).mode == RunMode.INCREMENTAL
    d2 = D0 + timedelta(days=2)
    run = refresh_segments(engine, d2, CONFIG)  # no input at all: the 60-day threshold alone moves customer 2
    assert (run.mode, run.customers_computed, run.customers_changed) == (RunMode.INCREMENTAL, 1, 1)

    s0, s1, s2 = snapshot(engine, D0), snapshot(engine, d1), snapshot(engine, d2)
    assert s0.loc[1, "reachable_email"] and not s1.loc[1, "reachable_email"]  # unsubscribed on the day
    assert not s0.loc[1, "reachable_sms"]  # no consent
    assert not s0.loc[3, "reachable_sms"] and s0.loc[3, "is_technical"]  # technical accounts are never reachable
    assert s0.loc[2, "reachable_push"]
    assert (s0.loc[2, "lifecycle_substate"], s1.loc[2, "lifecycle_substate"], s2.loc[2, "lifecycle_substate"]) == (
        "pre_churn",
        "pre_churn",
        "churn",
    )
    assert s2.loc[1, "lifecycle_state"] == "lead"
    with engine.connect() as conn:
        left_email = conn.execute(segment_changes(d1, "reachable", "email", "left")).all()
        entered_churn = conn.execute(segment_changes(d2, "lifecycle_substate", "churn")).all()
        sizes = dict(
            conn.execute(
                select(segment_sizes.c.segment, segment_sizes.c.customers).where(
                    segment_sizes.c.as_of == d2, segment_sizes.c.kind == "lifecycle_substate"
                )
            ).all()
        )
    assert [r.customer_id for r in left_email] == [1]
    assert [(r.customer_id, r.rule) for r in entered_churn] == [
        (2, "repeat: no open loan, last repayment 60 days ago or more")
    ]
    assert sizes == {"churn": 1, "never_authorised": 2, "pre_churn": 0}

    # A past day recomputed from the history as of it equals what was stored; nothing is written.
    with engine.connect() as conn:
        rows_before = conn.execute(select(func.count()).select_from(segment_memberships)).scalar()
    recheck = refresh_segments(engine, d1, CONFIG)
    assert (recheck.mode, recheck.differences) == (RunMode.RECHECK, 0)
    # Rewriting from D0+1 replays that day in full; the next day then continues incrementally.
    rewritten = refresh_segments(engine, d1, CONFIG, rewrite=True)
    assert (rewritten.mode, rewritten.baseline) == (RunMode.REWRITE, False) and rewritten.events > 0
    assert refresh_segments(engine, d2, CONFIG).mode == RunMode.INCREMENTAL
    with engine.connect() as conn:
        rows_after = conn.execute(select(func.count()).select_from(segment_memberships)).scalar()
        modes = [r[0] for r in conn.execute(select(segment_runs.c.mode).order_by(segment_runs.c.run_id))]
    assert rows_after == rows_before
    assert modes == ["full", "rewrite", "incremental"]  # the rewrite forgot the runs of the days it replaced
    pd.testing.assert_frame_equal(snapshot(engine, d2), s2)
    pd.testing.assert_frame_equal(snapshot(engine, d1), s1)

    # A correction loaded later (customer 2 withdrew push consent on D0+1) makes the recheck differ.
    with engine.begin() as conn:
        versions(conn, CUSTOMER_CONTACTS, [contact(2, "push", False, at(d1, 8))], d2)
    recheck = refresh_segments(engine, d1, CONFIG)
    assert (recheck.mode, recheck.differences, recheck.difference_examples) == (RunMode.RECHECK, 1, [2])
    # Rewriting the first day makes it the baseline again (what that night recorded: no entries).
    again = refresh_segments(engine, D0, CONFIG, rewrite=True)
    assert (again.mode, again.baseline, again.events) == (RunMode.REWRITE, True, 0)


def test_a_changed_threshold_moves_customers_with_a_rule_that_names_it(backend):
    engine = make_engine(backend.warehouse_url)
    upgrade_warehouse(engine)
    repaid_on = D0 - timedelta(days=40)
    with engine.begin() as conn:
        versions(conn, CUSTOMERS, [customer(1)], D0)
        versions(conn, LOANS, [loan(10, 1, "repaid", at(repaid_on, 9), at(repaid_on, 9))], D0)
    refresh_segments(engine, D0, CONFIG)
    d1 = D0 + timedelta(days=1)
    shorter = CONFIG.model_copy(update={"pre_churn_days": 30})
    assert refresh_segments(engine, d1, shorter, full=True).mode == RunMode.FULL
    with engine.connect() as conn:
        moved = conn.execute(segment_changes(d1, "lifecycle_substate", "churn")).all()
    assert snapshot(engine, D0).loc[1, "lifecycle_substate"] == "pre_churn"
    assert [(r.customer_id, r.rule) for r in moved] == [(1, "repeat: no open loan, last repayment 30 days ago or more")]


def test_a_purged_customer_leaves_every_segment_the_next_day_and_a_restored_one_comes_back(backend):
    engine = make_engine(backend.warehouse_url)
    upgrade_warehouse(engine)
    repaid_on = D0 - timedelta(days=40)
    with engine.begin() as conn:
        versions(conn, CUSTOMERS, [customer(1), customer(2)], D0)
        versions(conn, CUSTOMER_CONTACTS, [contact(c, "email", True, at(D0 - timedelta(days=50))) for c in (1, 2)], D0)
        versions(conn, LOANS, [loan(10 + c, c, "repaid", at(repaid_on, 9), at(repaid_on, 9)) for c in (1, 2)], D0)
    refresh_segments(engine, D0, CONFIG)
    # D0's campaign planning (after segments) purges customer 1; segments see it from D0+1.
    with engine.begin() as conn:
        conn.execute(
            insert(purged_customers),
            [{"customer_id": 1, "purged_on": D0, "reason": "deep_churn_no_response", "archive_key": "a"}],
        )
    d1, d2, d3 = (D0 + timedelta(days=n) for n in (1, 2, 3))
    recheck = refresh_segments(engine, D0, CONFIG)  # re-running D0 after its purge gives what the night gave
    assert (recheck.mode, recheck.differences) == (RunMode.RECHECK, 0)
    run = refresh_segments(engine, d1, CONFIG)
    assert (run.mode, run.customers_changed) == (RunMode.INCREMENTAL, 1)
    s1 = snapshot(engine, d1)
    assert s1.loc[1, "lifecycle_state"] == "purged"
    assert pd.isna(s1.loc[1, "lifecycle_substate"]) and pd.isna(s1.loc[1, "rfm_cell"])
    assert not s1.loc[1, "reachable_email"] and s1.loc[2, "reachable_email"]
    assert s1.loc[2, "lifecycle_substate"] == "pre_churn"
    # Restored during D0+1 ("back in the base from" that day): segments see it from D0+2.
    with engine.begin() as conn:
        conn.execute(update(purged_customers).where(purged_customers.c.customer_id == 1).values(restored_on=d1))
    assert refresh_segments(engine, d1, CONFIG).differences == 0
    refresh_segments(engine, d2, CONFIG)
    s2 = snapshot(engine, d2)
    assert (s2.loc[1, "lifecycle_substate"], bool(s2.loc[1, "reachable_email"])) == ("pre_churn", True)
    with engine.connect() as conn:
        sizes = dict(
            conn.execute(
                select(segment_sizes.c.segment, segment_sizes.c.customers).where(
                    segment_sizes.c.as_of == d1, segment_sizes.c.kind == "lifecycle"
                )
            ).all()
        )
        left = conn.execute(segment_changes(d1, "reachable", "email", "left")).all()
    assert sizes["purged"] == 1 and sizes["repeat"] == 1
    assert [r.customer_id for r in left] == [1]
    # A full recompute of the next day agrees with the incremental nights.
    assert refresh_segments(engine, d3, CONFIG, full=True).mode == RunMode.FULL
    with engine.connect() as conn:
        assert conn.execute(segment_changes(d3, "lifecycle", "purged", "entered")).all() == []
    pd.testing.assert_frame_equal(snapshot(engine, d1), s1)


def test_an_activity_leaving_the_rfm_window_is_counted_again_and_a_threshold_alone_reuses_the_stored_counts(backend):
    engine = make_engine(backend.warehouse_url)
    upgrade_warehouse(engine)
    month = CONFIG.model_copy(update={"rfm": CONFIG.rfm.model_copy(update={"window_days": 30})})
    old = {
        **loan(10, 1, "repaid", at(D0 - timedelta(days=20)), at(D0 - timedelta(days=20))),
        "issued_at": at(D0 - timedelta(days=29)),
    }
    recent = {**loan(11, 1, "active", None, at(D0 - timedelta(days=5))), "issued_at": at(D0 - timedelta(days=5))}
    churning = loan(12, 2, "repaid", at(D0 - timedelta(days=59), 9), at(D0 - timedelta(days=59), 9))  # churn on D0+1
    with engine.begin() as conn:
        versions(conn, CUSTOMERS, [customer(1), customer(2)], D0)
        versions(conn, LOANS, [old, recent, churning], D0)
    refresh_segments(engine, D0, month)
    d1 = D0 + timedelta(days=1)
    run = refresh_segments(engine, d1, month)  # no input: loan 10 (day D0-29) leaves the 30-day window on D0+1
    assert (run.mode, run.customers_computed) == (RunMode.INCREMENTAL, 2)
    with engine.connect() as conn:
        g = segment_aggregates.c
        rows = {
            r.customer_id: r
            for r in conn.execute(select(g.customer_id, g.window_loans, g.first_window_activity_on, g.loans_repaid))
        }
    assert (rows[1].window_loans, rows[1].first_window_activity_on) == (1, D0 - timedelta(days=5))
    assert (rows[2].window_loans, rows[2].loans_repaid) == (0, 1)
    assert snapshot(engine, d1).loc[2, "lifecycle_substate"] == "churn"
    # The incremental night stored what a full recompute of the day gives.
    assert refresh_segments(engine, d1, month).differences == 0
    incremental = snapshot(engine, d1)
    refresh_segments(engine, d1, month, rewrite=True)
    pd.testing.assert_frame_equal(snapshot(engine, d1), incremental)
