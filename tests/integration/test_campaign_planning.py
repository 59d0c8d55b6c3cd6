"""Planning rules against a hand-built warehouse: the purge and restore, the approval's three days, the gate."""

from __future__ import annotations

import io
import json
from datetime import date, timedelta

import pandas as pd
from sqlalchemy import select

from crm.campaigns import ARCHIVE_PREFIX, artifacts_url, load_campaigns, plan_campaigns, restore_customers
from crm.core.storage import open_store
from models.campaigns import campaign_decisions, campaign_entries, campaign_runs, purged_customers
from models.ingest import staging
from models.sending import outbox
from tests.campaigns import plan_days, seed_customers, seed_entity, table, write_campaigns
from tests.sending import set_gate, warehouse

D0 = date(2026, 3, 1)


def _campaign(id_, trigger: dict, **extra) -> dict:
    return {
        "id": id_,
        "holdout_share": 0.0,
        "audience": trigger,
        "steps": [{"day": 0, "cascade": ["email"], "template_id": f"{id_}-1"}],
    } | extra


def test_a_purged_customer_is_archived_never_planned_then_restored_and_planned_again(backend, tmp_path):
    engine = warehouse(backend.warehouse_url)
    # Birthdays 33 days after D0 + 4: the birthday campaign fires on D0 + 4.
    birthday = D0 + timedelta(days=4 + 33)
    seed_customers(engine, [1, 2], registered_at="2026-03-01 10:00", birth_date=f"1990-{birthday:%m-%d}", day=D0)
    folder = write_campaigns(
        tmp_path / "campaigns",
        _campaign(
            "deep",
            {"trigger": "registered"},
            exit_on=["application"],
            purge={"after_days": 2, "rejected_applicants": False},
        ),
        _campaign("bday", {"trigger": "birthday", "days_before": 33}),
    )
    campaigns = load_campaigns(folder)
    plan_days(engine, D0, D0 + timedelta(days=2), campaigns=campaigns)

    purged = table(engine, purged_customers)
    assert sorted(purged["customer_id"]) == [1, 2] and set(purged["reason"]) == {"deep_churn_no_response"}
    key = f"{ARCHIVE_PREFIX}/{D0 + timedelta(days=2)}.csv"
    archive = pd.read_csv(io.BytesIO(open_store(artifacts_url()).read_bytes(key)))
    assert sorted(archive["customer_id"]) == [1, 2] and (archive["entry_campaign_id"] == "deep").all()
    assert set(table(engine, campaign_entries)["exit_reason"]) == {"purged"}

    assert restore_customers(engine, D0 + timedelta(days=3), customer_ids=[1]) == 1
    plan_days(engine, D0 + timedelta(days=3), D0 + timedelta(days=4), campaigns=campaigns)
    decisions = table(engine, campaign_decisions)
    greeted = decisions[(decisions["campaign_id"] == "bday") & (decisions["decision"] == "planned")]
    assert greeted["customer_id"].tolist() == [1]  # restored: planned again; 2 stays out of the active base
    purged = table(engine, purged_customers).set_index("customer_id")
    assert pd.isna(purged.loc[2, "restored_on"]) and len(purged) == 2  # nothing was deleted

    # Restoring by archive file brings back the rest of that archive.
    assert restore_customers(engine, D0 + timedelta(days=5), archive_key=key) == 1


def test_a_restored_rejected_applicant_stays_in_the_base_until_a_new_application_is_rejected(backend, tmp_path):
    engine = warehouse(backend.warehouse_url)
    seed_customers(engine, [3], registered_at="2026-02-01 10:00", day=D0)

    def rejected(application_id: int, created_at: str, day: date) -> None:
        seed_entity(
            engine,
            "loan_applications",
            [
                {
                    "application_id": application_id,
                    "customer_id": 3,
                    "created_at": created_at,
                    "requested_amount_minor": 100000,
                    "status": "rejected",
                    "updated_at": created_at,
                }
            ],
            ingested_on=day,
        )

    rejected(30, "2026-02-20 09:00", D0)
    folder = write_campaigns(
        tmp_path / "campaigns",
        _campaign("deep", {"trigger": "registered"}, purge={"after_days": 60, "rejected_after_days": 5}),
    )
    campaigns = load_campaigns(folder)
    plan_days(engine, D0, D0, campaigns=campaigns)
    assert table(engine, purged_customers)["purged_on"].map(pd.Timestamp).tolist() == [pd.Timestamp(D0)]

    assert restore_customers(engine, D0 + timedelta(days=1), customer_ids=[3]) == 1
    plan_days(engine, D0 + timedelta(days=1), D0 + timedelta(days=3), campaigns=campaigns)
    assert len(table(engine, purged_customers)) == 1  # the same old rejection does not purge a restored customer

    rejected(31, "2026-03-04 09:00", D0 + timedelta(days=3))  # a new application, rejected too
    plan_days(engine, D0 + timedelta(days=8), D0 + timedelta(days=9), campaigns=campaigns)
    purged = table(engine, purged_customers).sort_values("purged_on")
    assert purged["purged_on"].map(pd.Timestamp).tolist() == [pd.Timestamp(D0), pd.Timestamp(D0 + timedelta(days=9))]


def test_the_app_not_authorised_push_goes_to_installs_of_the_day_without_a_login_by_its_end(backend):
    engine = warehouse(backend.warehouse_url)
    seed_customers(engine, [1, 2, 3, 4], registered_at="2026-02-28 10:00", day=D0)

    def event(event_id: str, customer_id: int, kind: str, at: str) -> dict:
        row = {"event_id": event_id, "customer_id": customer_id, "event_type": kind, "occurred_at": at}
        return row | {"platform": "android"}

    seed_entity(
        engine,
        "app_events",
        [
            event("i1", 1, "app_install", "2026-03-01 00:00"),  # installed today, never logged in
            event("i2", 2, "app_install", "2026-03-01 12:00"),
            event("l2", 2, "login", "2026-03-01 23:59"),  # logged in before the end of the day
            event("i3", 3, "app_install", "2026-02-28 23:59"),  # yesterday's install
            event("i4", 4, "app_install", "2026-03-01 23:59"),
        ],
        ingested_on=D0,
    )
    seed_entity(engine, "app_events", [event("l4", 4, "login", "2026-03-02 00:00")], ingested_on=D0 + timedelta(days=1))
    campaigns = [c.model_copy(update={"holdout_share": 0.0}) for c in load_campaigns() if c.id == "app-not-authorised"]
    plan_days(engine, D0, D0 + timedelta(days=1), campaigns=campaigns)
    planned = table(engine, outbox)
    assert sorted(planned["customer_id"]) == [1, 4] and set(planned["channel"]) == {"push"}
    assert (pd.to_datetime(planned["as_of"]) == pd.Timestamp(D0)).all()  # once: the next morning's push


def test_the_approval_cascade_stops_when_the_three_days_are_over(backend, tmp_path):
    engine = warehouse(backend.warehouse_url)
    seed_customers(engine, [7], registered_at="2026-02-01 10:00", day=D0)
    application = {
        "application_id": 70,
        "customer_id": 7,
        "created_at": "2026-03-01 09:00",
        "requested_amount_minor": 500000,
    }
    seed_entity(
        engine,
        "loan_applications",
        [application | {"status": "approved", "updated_at": "2026-03-01 11:00"}],
        ingested_on=D0,
    )
    seed_entity(
        engine,
        "application_status_changes",
        [{"change_id": 1, "application_id": 70, "status": "approved", "changed_at": "2026-03-01 11:00"}],
        ingested_on=D0,
    )
    campaigns = [c for c in load_campaigns() if c.id == "approved-not-taken"]
    plan_days(
        engine, D0, D0 + timedelta(days=4), campaigns=[c.model_copy(update={"holdout_share": 0.0}) for c in campaigns]
    )
    decisions = table(engine, campaign_decisions).sort_values("as_of")
    planned = decisions[decisions["decision"] == "planned"]
    assert [(pd.Timestamp(d).date(), ch) for d, ch in zip(planned["as_of"], planned["channel"], strict=True)] == [
        (D0, "push"),
        (D0 + timedelta(days=1), "email"),
        (D0 + timedelta(days=2), "sms"),
    ]
    entry = table(engine, campaign_entries).iloc[0]
    assert entry["exit_reason"] == "expired" and pd.Timestamp(entry["exited_on"]).date() == D0 + timedelta(days=3)


def test_a_closed_gate_plans_nothing_unless_forced_and_the_force_is_recorded(backend, tmp_path):
    engine = warehouse(backend.warehouse_url)
    seed_customers(engine, [1, 2, 3], registered_at="2026-03-01 10:00", day=D0)
    campaigns = load_campaigns(write_campaigns(tmp_path / "c", _campaign("hello", {"trigger": "registered"})))
    set_gate(engine, D0, fit=False)
    refused = plan_campaigns(engine, D0, campaigns=campaigns)
    assert refused.refused and refused.planned == 0
    assert table(engine, outbox).empty and table(engine, campaign_entries).empty
    forced = plan_campaigns(engine, D0, campaigns=campaigns, force=True)
    assert forced.forced and not forced.refused and forced.planned == 3
    runs = table(engine, campaign_runs).sort_values("started_at")
    assert runs["refused"].tolist() == [True, False] and runs["forced"].tolist() == [False, True]
    with engine.connect() as conn:
        assert len(conn.execute(select(outbox.c.message_id)).all()) == 3


def test_loyalty_campaigns_read_loyalty_events_when_the_table_exists_and_a_backfill_keeps_the_waves(backend, tmp_path):
    from sqlalchemy import BigInteger, Column, Date, MetaData, String, Table

    engine = warehouse(backend.warehouse_url)
    seed_customers(engine, [1, 2], registered_at="2026-02-01 10:00", day=D0)
    campaign = _campaign(
        "joined",
        {"trigger": "loyalty_event", "loyalty_events": ["joined"]},
        max_days=1,
        reentry_after_days=1,
        exit_on=[],
    )
    campaigns = load_campaigns(write_campaigns(tmp_path / "c", campaign))
    plan_days(engine, D0, D0, campaigns=campaigns)  # loyalty not installed: nobody, no error
    assert table(engine, campaign_entries).empty

    # The loyalty capability's table, as its branch defines it (created here when it is not merged yet).
    events = Table(
        "loyalty_events",
        MetaData(),
        Column("as_of", Date, primary_key=True),
        Column("customer_id", BigInteger, primary_key=True, autoincrement=False),
        Column("event", String(32), primary_key=True),
        Column("detail", String(256)),
        Column("amount_minor", BigInteger),
    )
    events.create(engine, checkfirst=True)
    with engine.begin() as conn:
        conn.execute(
            events.insert(),
            [
                {
                    "as_of": D0 + timedelta(days=1),
                    "customer_id": 1,
                    "event": "joined",
                    "detail": "silver",
                    "amount_minor": 5000,
                },
                {
                    "as_of": D0 + timedelta(days=1),
                    "customer_id": 2,
                    "event": "tier_changed",
                    "detail": "gold",
                    "amount_minor": None,
                },
                {
                    "as_of": D0 + timedelta(days=4),
                    "customer_id": 1,
                    "event": "joined",
                    "detail": "silver",
                    "amount_minor": None,
                },
            ],
        )
    plan_days(engine, D0 + timedelta(days=1), D0 + timedelta(days=5), campaigns=campaigns)
    first = table(engine, outbox).sort_values("as_of").iloc[0]
    assert json.loads(first["params"]) == {"event": "joined", "detail": "silver", "amount_minor": 5000}
    entries = table(engine, campaign_entries).sort_values("wave")
    assert entries["customer_id"].tolist() == [1, 1] and entries["wave"].tolist() == [1, 2]
    before = entries.reset_index(drop=True)
    plan_days(engine, D0 + timedelta(days=1), D0 + timedelta(days=1), campaigns=campaigns)  # a backfill of day 1
    after = table(engine, campaign_entries).sort_values("wave").reset_index(drop=True)
    pd.testing.assert_frame_equal(before[["customer_id", "wave", "group"]], after[["customer_id", "wave", "group"]])


def test_audience_filters_read_the_segment_snapshot_and_churn_deciles(backend, tmp_path):
    from crm.core.db import read_frame
    from crm.segments import load_segments_config, refresh_segments, segment_snapshot
    from models.churn import churn_scores
    from tests.simulated import START, ingest_days, simulate_company

    summary = simulate_company(backend.source_url, backend.landing_url, customers=300, days=8)
    ingest_days(START, summary.last_day)
    engine = warehouse(backend.warehouse_url)
    day, config = START, load_segments_config()
    while day <= summary.last_day:
        set_gate(engine, day)
        refresh_segments(engine, day, config)
        day += timedelta(days=1)
    last = summary.last_day
    with engine.begin() as conn:  # churn scores of the day: decile by customer id, 1 for ids ending in 0
        ids = read_frame(conn, select(staging["customers"].c.customer_id))["customer_id"].astype(int)
        conn.execute(
            churn_scores.insert(),
            [
                {
                    "as_of": last,
                    "customer_id": int(i),
                    "probability": 0.5,
                    "decile": 1 if i % 10 == 0 else 5,
                    "model_version": "t",
                }
                for i in ids
            ],
        )
    folder = write_campaigns(
        tmp_path / "c",
        _campaign("leads", {"trigger": "registered", "days_after": 1, "lifecycle_states": ["lead"]}),
        _campaign("everyone", {"trigger": "registered", "days_after": 1}),
        _campaign("risky", {"trigger": "registered", "days_after": 1, "churn_deciles": [1]}),
    )
    plan_campaigns(engine, last, campaigns=load_campaigns(folder))
    entries = table(engine, campaign_entries)
    everyone = set(entries.loc[entries["campaign_id"] == "everyone", "customer_id"])
    leads = set(entries.loc[entries["campaign_id"] == "leads", "customer_id"])
    risky = set(entries.loc[entries["campaign_id"] == "risky", "customer_id"])
    assert len(everyone) > 5
    with engine.connect() as conn:
        snapshot = read_frame(conn, segment_snapshot(last)).set_index("customer_id")
    assert leads and leads == {c for c in everyone if snapshot.loc[c, "lifecycle_state"] == "lead"}
    assert risky == {c for c in everyone if c % 10 == 0}
