"""Issue 14's end to end, over a simulated month: simulate -> ingest -> delivery reports -> send gate ->
segments -> campaigns -> dispatch to the file export -> the world reacts -> uplift and funnel reports.

The send gate is recorded open by the test (quality and reconciliation have their own flow tests;
running Great Expectations forty times would take minutes).

Checked from the provider's side (the lists the file export handed over, which the world reads):
no message reached a control-group customer (the hash, recomputed here) or a contact that had
unsubscribed or withdrawn consent before the day; the cascade sent fewer SMS than an SMS to
everyone reachable by SMS; the uplift's 95% interval covers the simulator's true effect.
"""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import pytest
from sqlalchemy import select

from crm.campaigns import (
    assign_groups,
    campaign_funnel,
    estimate_uplift,
    funnel_markdown,
    load_campaigns,
    plan_campaigns,
    read_conversions,
    sms_saving,
    uplift_frame,
)
from crm.core.db import read_frame
from crm.core.settings import make_engine, warehouse_engine
from crm.core.storage import open_store
from crm.segments import load_segments_config, refresh_segments
from crm.sending import (
    FileExportProvider,
    FileProviderConfig,
    apply_delivery_reports,
    default_export_url,
    dispatch_messages,
)
from crm.simulator import Reaction, SimulationConfig, read_received, simulate
from models import source as src
from models.campaigns import campaign_entries
from models.segments import segment_runs
from tests.campaigns import write_campaigns
from tests.sending import set_gate
from tests.simulated import START, ingest_days

UPLIFT = 0.30  # a delivered message makes the customer apply or buy within effect_days with this probability
HOLDOUT = 0.5
DAYS = 40
WINDOW = 16  # conversions from the day after entering: reaction next day + up to effect_days (14) later


def _world() -> SimulationConfig:
    reactions = [
        # The measured campaign: every channel delivered and converting alike; push and e-mail always
        # opened (so the cascade stops after the first reachable channel: one message per customer).
        Reaction(
            campaign="reactivate",
            channel="push",
            delivered=1.0,
            opened=1.0,
            clicked=0.5,
            unsubscribed=0.03,
            conversion_uplift=UPLIFT,
        ),
        Reaction(
            campaign="reactivate",
            channel="email",
            delivered=1.0,
            opened=1.0,
            clicked=0.5,
            unsubscribed=0.03,
            conversion_uplift=UPLIFT,
        ),
        Reaction(
            campaign="reactivate",
            channel="sms",
            delivered=1.0,
            opened=0.0,
            clicked=0.5,
            unsubscribed=0.03,
            conversion_uplift=UPLIFT,
        ),
        # A later nudge without effect: it would reach the contacts who unsubscribed, if planning let it.
        Reaction(campaign="nudge", delivered=1.0, opened=0.0, clicked=0.0, unsubscribed=0.0, conversion_uplift=0.0),
    ]
    return SimulationConfig(reactions=reactions)


@pytest.mark.slow
def test_a_simulated_month_of_campaigns_end_to_end(sqlite_backend, tmp_path):
    backend = sqlite_backend
    folder = write_campaigns(
        tmp_path / "campaigns",
        {
            "id": "reactivate",
            "priority": 10,
            "holdout_share": HOLDOUT,
            "audience": {"trigger": "registered", "days_after": 1},
            "exit_on": [],
            "steps": [{"day": 0, "cascade": ["push", "email", "sms"], "template_id": "reactivate-1"}],
        },
        {
            "id": "nudge",
            "priority": 20,
            "holdout_share": 0.2,
            "audience": {"trigger": "registered", "days_after": 4},
            "exit_on": [],
            "steps": [{"day": 0, "cascade": ["email", "sms"], "template_id": "nudge-1"}],
        },
    )
    campaigns = load_campaigns(folder)
    config = _world()
    source, landing = make_engine(backend.source_url), open_store(backend.landing_url)
    inbox = open_store(default_export_url())
    engine = warehouse_engine()
    provider = FileExportProvider("file-export", FileProviderConfig(), inbox)
    segments_config = load_segments_config()

    day = START
    for _ in range(DAYS):
        simulate(source, landing, customers=75, days=1, seed=11, start=START, config=config, inbox=inbox)
        ingest_days(day, day)
        apply_delivery_reports(engine, day)
        set_gate(engine, day)
        refresh_segments(engine, day, segments_config)
        plan_campaigns(engine, day, campaigns=campaigns)
        dispatch_messages(engine, provider, day, ["push", "email", "sms"], run_label="e2e")
        day += timedelta(days=1)
    last = day - timedelta(days=1)

    with engine.connect() as conn:
        assert len(read_frame(conn, select(segment_runs))) == DAYS  # segments ran every night before campaigns

    # --------------------------------------------------------------- from the provider's side
    received = pd.concat(
        [read_received(inbox, START + timedelta(days=i)).assign(day=START + timedelta(days=i)) for i in range(DAYS)],
        ignore_index=True,
    )
    assert len(received) > 500
    for campaign_id, share in (("reactivate", HOLDOUT), ("nudge", 0.2)):
        part = received[received["campaign_id"] == campaign_id]
        assert len(part) > 50
        assert (assign_groups(part["customer_id"], campaign_id, share) == "treatment").all(), (
            "a control customer was sent"
        )
    with source.connect() as conn:
        contacts = read_frame(conn, select(src.tables["customer_contacts"]))
        truth = read_frame(conn, select(src.simulated_reactions))
    withdrawn = contacts[~contacts["is_consented"].astype(bool)][["customer_id", "channel", "updated_at"]]
    hit = received.merge(withdrawn, on=["customer_id", "channel"])
    hit = hit[pd.to_datetime(hit["updated_at"]) < pd.to_datetime(hit["day"])]  # withdrawn before the planned day
    assert hit.empty, f"{len(hit)} messages reached a contact without consent"
    unsub = truth[truth["unsubscribed"].astype(bool)][["customer_id", "channel", "reacted_on"]]
    assert len(unsub) > 5
    again = received.merge(unsub, on=["customer_id", "channel"])
    assert again[pd.to_datetime(again["day"]) > pd.to_datetime(again["reacted_on"])].empty, (
        "an unsubscribed contact was sent"
    )

    # --------------------------------------------------------------- the cascade's SMS saving
    with engine.connect() as conn:
        saving = sms_saving(conn, START, last, 150)
        funnel = campaign_funnel(conn, START, last)
        entries = read_frame(conn, select(campaign_entries).where(campaign_entries.c.campaign_id == "reactivate"))
    sms_received = int((received["channel"] == "sms").sum())
    assert saving["cascade_sms"] >= sms_received  # planned >= what reached the provider
    assert sms_received < saving["baseline_sms"] and saving["saved_minor"] > 0
    report = funnel_markdown(START, last, funnel, saving, 150)
    assert "SMS the cascade saved" in report and f"{saving['saved_sms']:,} fewer" in report

    # --------------------------------------------------------------- uplift against the world's truth
    entries["entered_on"] = pd.to_datetime(entries["entered_on"])
    complete = entries[entries["entered_on"] <= pd.Timestamp(last - timedelta(days=WINDOW))]
    assert len(complete) > 800
    with engine.connect() as conn:
        events = read_conversions(conn, last, ["application", "loan", "order"], START)
    table_ = uplift_frame(
        complete, events[["customer_id", "at"]].assign(revenue_minor=0), events.assign(revenue_minor=0), WINDOW
    )
    estimate = estimate_uplift(table_, revenue=None)
    # The true effect: a treated customer who got a message converts with UPLIFT more, unless they would have anyway.
    sent = truth[truth["campaign_id"] == "reactivate"].drop_duplicates("customer_id")
    treated = complete[complete["group"] == "treatment"]
    reached_share = treated["customer_id"].isin(sent["customer_id"]).mean()
    true_effect = reached_share * config.expected_uplift(
        "reactivate", "push", "active", baseline_rate=estimate.control_rate
    )
    print(
        f"uplift {estimate.uplift:.4f} [{estimate.ci_low:.4f}, {estimate.ci_high:.4f}] true {true_effect:.4f} n={estimate.treated}/{estimate.control} saving={saving}"
    )
    assert estimate.ci_low <= true_effect <= estimate.ci_high, (estimate, true_effect)
    assert estimate.ci_low > 0  # and the campaign's effect is detected
