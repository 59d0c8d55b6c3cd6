"""Campaign planning over a simulated month, on SQLite and PostgreSQL: the invariants of issue 13.

Checked from the stored rows, independently of the planning code: consent and unsubscribes from
the contact history and the providers' reports, the control group from the hash, the contact
budget from the outbox, quiet hours in the customer's zone from the phone's country code. The shipped
campaigns run as they are, except that the purge takes rejected applicants after 5 days instead of 60, so
that a month purges some customers (and one is restored with `crm campaigns restore`).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from typer.testing import CliRunner

from cli import app
from crm.campaigns import (
    Campaign,
    assign_groups,
    in_quiet_hours,
    load_campaigns,
    load_campaigns_config,
    plan_campaigns,
)
from crm.core.settings import warehouse_engine
from models.campaigns import campaign_decisions, campaign_entries, purged_customers
from models.ingest import history, staging
from models.sending import outbox
from tests.campaigns import plan_days, table
from tests.simulated import START, ingest_days, simulate_company


def _most(counts: pd.Series) -> int:
    return int(counts.max()) if len(counts) else 0


def _shipped_with_a_quick_purge() -> list[Campaign]:
    """The shipped campaigns; the purge's rejected applicants after 5 days (a simulated month has no 60)."""
    campaigns = []
    for campaign in load_campaigns():
        if campaign.purge is not None:
            quick = campaign.purge.model_copy(update={"rejected_after_days": 5})
            campaign = campaign.model_copy(update={"purge": quick})
        campaigns.append(campaign)
    return campaigns


def _probe(customer_id: int, days_after: int) -> Campaign:
    """A campaign whose trigger fires for whoever registered `days_after` days before: `customer_id`, among others."""
    return Campaign.model_validate(
        {
            "id": f"probe-{customer_id}",
            "holdout_share": 0.0,
            "audience": {"trigger": "registered", "days_after": days_after},
            "steps": [{"day": 0, "cascade": ["push", "email", "sms"], "template_id": "probe"}],
        }
    )


@pytest.mark.slow
def test_a_month_of_planning_keeps_every_invariant(backend):
    summary = simulate_company(backend.source_url, backend.landing_url, customers=600, days=30)
    ingest_days(START, summary.last_day)
    engine = warehouse_engine()
    campaigns = _shipped_with_a_quick_purge()
    plan_days(engine, START, summary.last_day, campaigns=campaigns)

    decisions = table(engine, campaign_decisions)
    entries = table(engine, campaign_entries)
    messages = table(engine, outbox)
    planned = decisions[decisions["decision"] == "planned"]
    assert len(planned) > 500 and len(entries) > 300
    assert set(planned["message_id"]) == set(messages["message_id"])

    # 1. never planned on a channel without consent, without an address, or after a provider's unsubscribe
    hist = table(engine, history["customer_contacts"])
    unsub = table(engine, staging["message_events"])
    unsub = unsub[unsub["event_type"] == "unsubscribed"]
    for day, part in planned.groupby("as_of"):
        end = pd.Timestamp(day) + pd.Timedelta(days=1)
        valid = hist[(hist["valid_from"] < end) & (hist["valid_to"].isna() | (hist["valid_to"] >= end))]
        merged = part.merge(valid, on=["customer_id", "channel"], how="left")
        assert merged["is_consented"].fillna(False).astype(bool).all(), f"{day}: planned without consent"
        assert merged["address"].notna().all()
        known = unsub[unsub["occurred_at"] < end].merge(valid, on=["customer_id", "channel"])
        after = known[known["occurred_at"] > known["updated_at"]]
        hit = part.merge(after[["customer_id", "channel"]], on=["customer_id", "channel"])
        assert hit.empty, f"{day}: planned to an unsubscribed contact"

    # 2. the control group never gets a message
    groups = entries.set_index(["campaign_id", "customer_id", "wave"])["group"]
    keyed = messages.assign(step=messages["step"] // 10).set_index(["campaign_id", "customer_id", "wave"])
    assert (groups.reindex(keyed.index) == "treatment").all()
    assert len(entries[entries["group"] == "control"]) > 20

    # 3. nobody over the contact budget (window, day, SMS)
    budget = load_campaigns_config().budget
    sent = messages[messages["state"] != "skipped"].assign(as_of=lambda f: pd.to_datetime(f["as_of"]))
    days = pd.date_range(START, summary.last_day)
    for day in days:
        window = sent[(sent["as_of"] > day - pd.Timedelta(days=budget.days)) & (sent["as_of"] <= day)]
        assert window.groupby("customer_id").size().pipe(_most) <= budget.messages
        sms = window[window["channel"] == "sms"]
        assert sms.groupby("customer_id").size().pipe(_most) <= budget.per_channel["sms"]
        assert sent[sent["as_of"] == day].groupby("customer_id").size().pipe(_most) <= budget.per_day

    # 4. control membership: the hash, the same after a re-run and a backfill of part of the month
    for campaign_id, part in entries.groupby("campaign_id"):
        share = next(c.holdout_share for c in load_campaigns() if c.id == campaign_id)
        assert (assign_groups(part["customer_id"], campaign_id, share) == part["group"].to_numpy()).all()
    before_entries = entries.sort_values(["campaign_id", "customer_id", "wave"], ignore_index=True)
    before_messages = set(messages["message_id"])
    before_purged = table(engine, purged_customers).sort_values(["customer_id", "purged_on"], ignore_index=True)
    plan_campaigns(engine, summary.last_day, campaigns=campaigns)  # a re-run of the last day
    plan_days(engine, START + timedelta(days=10), START + timedelta(days=15), campaigns=campaigns)  # a backfill
    after_entries = table(engine, campaign_entries).sort_values(
        ["campaign_id", "customer_id", "wave"], ignore_index=True
    )
    pd.testing.assert_frame_equal(
        before_entries[["campaign_id", "customer_id", "wave", "group"]],
        after_entries[["campaign_id", "customer_id", "wave", "group"]],
    )
    assert set(table(engine, outbox)["message_id"]) == before_messages
    after_purged = table(engine, purged_customers).sort_values(["customer_id", "purged_on"], ignore_index=True)
    pd.testing.assert_frame_equal(before_purged, after_purged)

    # 5. nothing planned in quiet hours, in the customer's zone (+380: Kyiv)
    config = load_campaigns_config()
    sms_numbers = hist[hist["channel"] == "sms"].drop_duplicates("customer_id", keep="last").set_index("customer_id")
    closes = table(engine, outbox).set_index("message_id")["not_after"]
    for row in planned.itertuples():
        zone = "Europe/Kyiv" if str(sms_numbers["address"].get(row.customer_id, "")).startswith("+380") else "UTC"
        at = (
            row.not_before
            if pd.notna(row.not_before)
            else datetime.combine(pd.Timestamp(row.as_of).date() + timedelta(days=1), config.quiet_hours.send_at)
        )
        local = pd.Timestamp(at).to_pydatetime().replace(tzinfo=ZoneInfo("UTC")).astimezone(ZoneInfo(zone))
        assert not in_quiet_hours(local.time().replace(tzinfo=None), config.quiet_hours), (row.customer_id, at, zone)
        # the send window closes exactly when the quiet hours begin again in that zone
        close = pd.Timestamp(closes[row.message_id]).to_pydatetime().replace(tzinfo=ZoneInfo("UTC"))
        assert close.replace(tzinfo=None) > pd.Timestamp(at).to_pydatetime()
        last_minute = (close - timedelta(minutes=1)).astimezone(ZoneInfo(zone)).time()
        assert not in_quiet_hours(last_minute, config.quiet_hours), (row.customer_id, close, zone)
        assert in_quiet_hours(close.astimezone(ZoneInfo(zone)).time(), config.quiet_hours), (row.customer_id, close)
    assert planned["not_before"].notna().any()  # Kyiv customers wait for the morning

    # 6. every candidate has its reason; planned ones have their message, skipped ones none
    reasons = set(decisions["reason"])
    assert {"consented", "control", "no_address"} <= reasons
    assert reasons <= {
        "consented",
        "no_free_channel",
        "control",
        "no_address",
        "no_consent",
        "unsubscribed",
        "engaged_earlier",
        "capped",
        "outranked",
    }
    assert decisions.loc[decisions["decision"] == "skipped", "message_id"].isna().all()

    # 7. a purged customer is never planned; one restored with the one command enters and is planned again
    purged = table(engine, purged_customers)
    assert len(purged) >= 2 and purged["restored_on"].isna().all()
    assert set(purged["reason"]) <= {"rejected_applicant", "deep_churn_no_response"}
    while_purged = planned.merge(purged, on="customer_id")
    assert (pd.to_datetime(while_purged["as_of"]) < pd.to_datetime(while_purged["purged_on"])).all()

    day = summary.last_day + timedelta(days=1)
    end = pd.Timestamp(day) + pd.Timedelta(days=1)
    valid = hist[(hist["valid_from"] < end) & (hist["valid_to"].isna() | (hist["valid_to"] >= end))]
    reachable = set(valid.loc[valid["is_consented"].astype(bool) & valid["address"].notna(), "customer_id"])
    reachable -= set(unsub["customer_id"])
    quiet_for_a_week = purged[pd.to_datetime(purged["purged_on"]) <= pd.Timestamp(day - timedelta(days=budget.days))]
    restored = int(quiet_for_a_week[quiet_for_a_week["customer_id"].isin(reachable)]["customer_id"].min())
    still_out = int(purged.loc[purged["customer_id"] != restored, "customer_id"].min())
    registered = table(engine, staging["customers"]).set_index("customer_id")["registered_at"]

    done = CliRunner().invoke(app, ["campaigns", "restore", "--as-of", day.isoformat(), "--customer", str(restored)])
    assert done.exit_code == 0 and "restored 1 customer" in done.output, done.output
    probes = [_probe(c, (day - pd.Timestamp(registered[c]).date()).days) for c in (restored, still_out)]
    plan_days(engine, day, day, campaigns=[*campaigns, *probes])

    now_purged = table(engine, purged_customers)
    assert restored not in set(now_purged.loc[now_purged["restored_on"].isna(), "customer_id"])  # not purged again
    decisions = table(engine, campaign_decisions)
    today = decisions[pd.to_datetime(decisions["as_of"]) == pd.Timestamp(day)]
    mine = today[(today["customer_id"] == restored) & (today["campaign_id"] == f"probe-{restored}")]
    assert (mine["decision"] == "planned").any(), mine  # the audience says so: planned again
    assert today[today["customer_id"] == still_out].empty  # its trigger fired too, but it is still out of the base
    sent_after = table(engine, outbox).merge(purged[purged["customer_id"] == still_out], on="customer_id")
    assert (pd.to_datetime(sent_after["as_of"]) < pd.to_datetime(sent_after["purged_on"])).all()
