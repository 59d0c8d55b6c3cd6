"""Planning rules at their boundaries, on hand-built frames (no database)."""

from __future__ import annotations

from datetime import date, time, timedelta

import numpy as np
import pandas as pd
import pytest

from crm.campaigns import (
    Campaign,
    ContactBudget,
    QuietHours,
    apply_budget,
    assign_groups,
    birthday_in,
    cascade_candidates,
    decide_control_and_engagement,
    due_touches,
    holdout_draw,
    in_quiet_hours,
    load_campaign_file,
    load_campaigns,
    not_before_for,
    reachability,
    schedule_frame,
    send_window_for,
    timezone_of,
)
from crm.core.config import ConfigError

D = date(2026, 3, 10)


def _campaign(**overrides) -> Campaign:
    data = {
        "id": "test",
        "audience": {"trigger": "registered"},
        "steps": [{"day": 0, "cascade": ["push", "email", "sms"], "template_id": "t-1"}],
    } | overrides
    return Campaign.model_validate(data)


def _entries(*rows) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["campaign_id", "customer_id", "wave", "entered_on", "group"])


def _candidates(rows) -> pd.DataFrame:
    """Open candidates: (customer, campaign, priority, step, channel)."""
    frame = pd.DataFrame(rows, columns=["customer_id", "campaign_id", "priority", "step", "channel"])
    return frame.assign(touch=0, position=0, wave=1, group="treatment", decision="", reason="consented")


# --------------------------------------------------------------------------- control group


def test_control_membership_is_a_stable_hash_with_the_configured_share():
    ids = np.arange(1, 200_001)
    first = assign_groups(ids, "welcome", 0.1)
    assert (first == assign_groups(ids[::-1], "welcome", 0.1)[::-1]).all()  # order does not matter
    assert abs((first == "control").mean() - 0.1) < 0.005
    other = assign_groups(ids, "birthday", 0.1)
    assert 0.005 < ((first == "control") & (other == "control")).mean() < 0.015  # independent across campaigns
    assert ((holdout_draw(ids, "x") >= 0) & (holdout_draw(ids, "x") < 1)).all()
    assert (assign_groups(ids, "welcome", 0.0) == "treatment").all()


# --------------------------------------------------------------------------- the contact budget


def test_budget_last_slot_goes_to_the_higher_priority_campaign_the_rest_is_outranked_or_capped():
    budget = ContactBudget(messages=4, days=7, per_channel={"sms": 2}, per_day=5)
    used = pd.DataFrame({"customer_id": [1, 1, 2], "channel": ["email", "push", "email"], "messages": [2, 1, 4]})
    candidates = _candidates(
        [
            (1, "low", 90, 1, "email"),
            (1, "high", 10, 1, "push"),  # customer 1 has 3 of 4 used: this takes the last slot
            (2, "high", 10, 1, "push"),  # customer 2 used all 4 on earlier days
            (3, "a", 10, 1, "sms"),
            (3, "b", 20, 1, "sms"),
            (3, "c", 30, 1, "sms"),  # the third SMS of the day is over the SMS limit of 2
        ]
    )
    out = apply_budget(candidates, used, budget).set_index(["customer_id", "campaign_id"])
    assert out.loc[(1, "high"), "decision"] == "planned"
    assert tuple(out.loc[(1, "low"), ["decision", "reason"]]) == ("skipped", "outranked")
    assert tuple(out.loc[(2, "high"), ["decision", "reason"]]) == ("skipped", "capped")
    assert list(out.loc[3, "decision"]) == ["planned", "planned", "skipped"]
    assert out.loc[(3, "c"), "reason"] == "outranked"


def test_budget_exactly_full_and_one_below():
    budget = ContactBudget(messages=2, days=7, per_channel={}, per_day=10)
    for used_before, expected in ((1, ["planned", "skipped"]), (2, ["skipped", "skipped"]), (0, ["planned"] * 2)):
        used = pd.DataFrame({"customer_id": [7], "channel": ["push"], "messages": [used_before]})
        out = apply_budget(_candidates([(7, "a", 1, 1, "push"), (7, "b", 2, 1, "email")]), used, budget)
        assert list(out["decision"]) == expected


def test_per_day_limit():
    budget = ContactBudget(messages=10, days=7, per_channel={}, per_day=1)
    out = apply_budget(
        _candidates([(7, "a", 1, 1, "push"), (7, "b", 2, 1, "email")]),
        pd.DataFrame(columns=["customer_id", "channel", "messages"]),
        budget,
    )
    assert list(out["reason"]) == ["consented", "outranked"]


# --------------------------------------------------------------------------- cascades


def _reach(rows):
    contacts = pd.DataFrame(rows, columns=["customer_id", "channel", "address", "is_consented", "updated_at"])
    return contacts


def test_cascade_records_unreachable_channels_and_goes_straight_to_sms_without_a_free_channel():
    updated = pd.Timestamp("2026-01-01")
    contacts = _reach(
        [
            (1, "push", "tok1", True, updated),
            (1, "sms", "+380671", True, updated),
            (2, "email", "a@x", False, updated),  # no consent
            (2, "sms", "+380672", True, updated),
            (3, "email", "b@x", True, updated),
        ]
    )
    unsubscribes = pd.DataFrame({"customer_id": [3], "channel": ["email"], "occurred_at": [pd.Timestamp("2026-02-01")]})
    reach = reachability(np.array([1, 2, 3]), contacts, unsubscribes, ["push", "email", "sms"])
    due = due_touches(_entries(*[("test", k, 1, D, "treatment") for k in (1, 2, 3)]), schedule_frame([_campaign()]), D)
    out = cascade_candidates(due, reach).set_index(["customer_id", "channel"])
    assert tuple(out.loc[(1, "push"), ["decision", "reason"]]) == ("", "consented")
    assert tuple(out.loc[(1, "email"), ["decision", "reason"]]) == ("skipped", "no_address")
    assert (1, "sms") not in out.index  # a later touch of the cascade, not today
    assert tuple(out.loc[(2, "email"), ["decision", "reason"]]) == ("skipped", "no_consent")
    assert tuple(out.loc[(2, "sms"), ["decision", "reason"]]) == ("", "no_free_channel")
    assert tuple(out.loc[(3, "email"), ["decision", "reason"]]) == ("skipped", "unsubscribed")

    # The next day: customer 1's second reachable channel, unless the push was opened.
    due2 = due_touches(_entries(("test", 1, 1, D, "treatment")), schedule_frame([_campaign()]), D + timedelta(days=1))
    second = cascade_candidates(due2, reach)
    assert list(second["channel"]) == ["sms"] and list(second["touch"]) == [1]
    engaged = pd.DataFrame({"campaign_id": ["test"], "customer_id": [1], "wave": [1], "step": [1]})
    decided = decide_control_and_engagement(second, engaged)
    assert tuple(decided.iloc[0][["decision", "reason"]]) == ("skipped", "engaged_earlier")


def test_control_group_messages_are_skipped():
    due = due_touches(_entries(("test", 5, 1, D, "control")), schedule_frame([_campaign()]), D)
    reach = reachability(
        np.array([5]),
        _reach([(5, "push", "t", True, pd.Timestamp("2026-01-01"))]),
        pd.DataFrame(),
        ["push", "email", "sms"],
    )
    out = decide_control_and_engagement(cascade_candidates(due, reach), pd.DataFrame())
    assert tuple(out.set_index("channel").loc["push", ["decision", "reason"]]) == ("skipped", "control")


# --------------------------------------------------------------------------- calendar boundaries


def test_approval_cascade_runs_on_the_three_days_of_the_approval_and_not_the_fourth():
    campaign = load_campaign_file(_shipped("approved-not-taken"))
    entries = _entries(("approved-not-taken", 1, 1, D, "treatment"))
    touches = [
        due_touches(entries, schedule_frame([campaign]), D + timedelta(days=k))["touch"].tolist() for k in range(5)
    ]
    assert touches == [[0], [1], [2], [], []]
    assert campaign.max_days == 3  # and the entry expires on the fourth day (integration test)


def test_birthday_enters_exactly_33_days_before():
    births = pd.Series([date(1990, 4, 12), date(1985, 4, 11), date(1985, 4, 13), None])
    assert birthday_in(births, date(2026, 3, 10), 33).tolist() == [True, False, False, False]  # 10 Mar + 33 = 12 Apr
    leap = pd.Series([date(2000, 2, 29), date(2000, 2, 28)])
    assert birthday_in(leap, date(2027, 2, 28) - timedelta(days=33), 33).tolist() == [True, True]
    assert birthday_in(leap, date(2028, 2, 29) - timedelta(days=33), 33).tolist() == [True, False]


def test_birthday_steps_are_at_0_5_and_34_days():
    campaign = load_campaign_file(_shipped("birthday"))
    assert [s.day for s in campaign.steps] == [0, 5, 34]


def _run_chain(campaign: Campaign, reach: pd.DataFrame, budget: ContactBudget) -> list[tuple[int, str]]:
    """The messages one treated customer who opens nothing gets, day by day through the rules: (day, channel)."""
    sent: list[tuple[int, str]] = []
    entries = _entries((campaign.id, 1, 1, D, "treatment"))
    for k in range(campaign.max_days or campaign.last_day + 1):  # the entry expires on day `max_days`
        due = due_touches(entries, schedule_frame([campaign]), D + timedelta(days=k))
        if due.empty:
            continue
        window = [ch for day, ch in sent if k - budget.days < day < k]
        used = pd.DataFrame({"customer_id": 1, "channel": window}).groupby(["customer_id", "channel"], as_index=False)
        used = used.size().rename(columns={"size": "messages"})
        decided = apply_budget(cascade_candidates(due, reach), used, budget)
        sent += [(k, ch) for ch in decided.loc[decided["decision"] == "planned", "channel"]]
    return sent


def test_the_welcome_chain_is_domains_16_messages_in_30_days_10_email_and_6_sms():
    # DOMAIN.md: "welcome chain starting the day after registration (BNPL: 16 messages in 30 days, 10 e-mail + 6 SMS)"
    campaign = load_campaign_file(_shipped("welcome"))
    assert (campaign.audience.trigger, campaign.audience.days_after) == ("registered", 1)
    assert sum("email" in s.cascade for s in campaign.steps) == 10
    assert sum("sms" in s.cascade for s in campaign.steps) == 6  # SMS catch-ups the day after an unopened e-mail
    assert campaign.last_day < campaign.max_days == 30

    # Through the rules with the default contact budget: every message fits (none capped), in 30 days.
    both = reachability(
        np.array([1]),
        _reach(
            [(1, "email", "a@x", True, pd.Timestamp("2026-01-01")), (1, "sms", "+1", True, pd.Timestamp("2026-01-01"))]
        ),
        pd.DataFrame(columns=["customer_id", "channel", "occurred_at"]),
        ["push", "email", "sms"],
    )
    sent = _run_chain(campaign, both, ContactBudget())
    assert len(sent) == 16 and max(day for day, _ in sent) < 30
    assert sum(ch == "email" for _, ch in sent) == 10 and sum(ch == "sms" for _, ch in sent) == 6


def test_the_app_not_authorised_catch_up_is_a_push_the_morning_after_the_install():
    # DOMAIN.md's 15-minute chain needs intraday triggers (README): the nightly planner sends one push the next morning.
    campaign = load_campaign_file(_shipped("app-not-authorised"))
    assert (campaign.audience.trigger, campaign.audience.days_after) == ("app_not_authorised", 0)
    assert [(s.day, [str(c) for c in s.cascade]) for s in campaign.steps] == [(0, ["push"])]


# --------------------------------------------------------------------------- quiet hours in the customer's zone


def test_quiet_hours_edge_in_another_time_zone():
    quiet = QuietHours(start=time(21), end=time(9), send_at=time(0, 0))  # dispatch at 00:00 UTC
    zones = pd.Series(["Asia/Tokyo", "Europe/Kyiv", "America/New_York", "Asia/Kolkata"], index=[1, 2, 3, 4])
    out = not_before_for(zones, date(2026, 1, 14), quiet, "UTC")
    assert pd.isna(out[1])  # Tokyo: exactly 09:00, the quiet hours just ended
    assert out[2] == pd.Timestamp("2026-01-15 07:00")  # Kyiv: 02:00 local, waits until 09:00 local = 07:00 UTC
    assert pd.isna(out[3])  # New York: 19:00 local the evening before
    assert out[4] == pd.Timestamp("2026-01-15 03:30")  # Kolkata: 05:30 local, waits until 09:00 local
    one_minute_early = QuietHours(start=time(21), end=time(9), send_at=time(23, 59))
    edge = not_before_for(pd.Series(["Asia/Tokyo"], index=[1]), date(2026, 1, 13), one_minute_early, "UTC")
    assert edge[1] == pd.Timestamp("2026-01-15 00:00")  # 08:59 in Tokyo: waits one minute
    late = QuietHours(start=time(21), end=time(9), send_at=time(2))  # 21:00 in New York (winter): quiet
    ny = not_before_for(pd.Series(["America/New_York"], index=[3]), date(2026, 1, 14), late, "UTC")
    assert ny[3] == pd.Timestamp("2026-01-15 14:00")  # 09:00 the next morning in New York
    assert in_quiet_hours(time(20, 59), quiet) is False and in_quiet_hours(time(21), quiet) is True


def test_time_zone_from_the_phone_country_code():
    sms = pd.DataFrame({"customer_id": [1, 2], "address": ["+380671234567", "+14155550100"]})
    zones = timezone_of(np.array([1, 2, 3]), sms, {"+380": "Europe/Kyiv", "+1": "America/New_York"}, "UTC")
    assert zones.to_dict() == {1: "Europe/Kyiv", 2: "America/New_York", 3: "UTC"}


# --------------------------------------------------------------------------- configuration


def _shipped(name: str):
    from crm.campaigns import campaigns_dir

    return campaigns_dir() / f"{name}.yaml"


def test_shipped_campaigns_load():
    ids = {c.id for c in load_campaigns()}
    assert {"welcome", "abandoned-application", "approved-not-taken", "first-repayment", "birthday"} <= ids
    assert {"pre-churn", "churn", "deep-churn-purge", "loyalty-joined", "loyalty-tier-changed"} <= ids
    deep = load_campaign_file(_shipped("deep-churn-purge"))
    assert [s.day for s in deep.steps] == [0, 7, 21] and deep.purge is not None


def test_a_bad_campaign_file_names_the_file_and_the_field(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text(
        "id: broken\nholdout_share: 1.5\naudience: {trigger: registered}\nsteps: [{day: 0, cascade: [fax], template_id: x}]\n"
    )
    with pytest.raises(ConfigError) as info:
        load_campaign_file(path)
    text = str(info.value)
    assert str(path) in text and "holdout_share" in text and "steps.0.cascade.0" in text
    path.write_text("id: other\naudience: {trigger: registered}\nsteps: [{day: 0, cascade: [sms], template_id: x}]\n")
    with pytest.raises(ConfigError, match="id: must be the file's name"):
        load_campaign_file(path)


def test_a_special_event_raises_the_budget_on_its_days_only():
    budget = ContactBudget.model_validate(
        {"special_events": [{"name": "sale", "start": "2026-11-27", "end": "2026-11-30", "messages": 6, "per_day": 3}]}
    )
    assert budget.for_day(date(2026, 11, 26)).messages == 4
    assert (budget.for_day(date(2026, 11, 27)).messages, budget.for_day(date(2026, 11, 30)).per_day) == (6, 3)
    assert budget.for_day(date(2026, 12, 1)).per_day == 2


def test_the_send_window_closes_when_the_quiet_hours_begin_again_in_the_customers_zone():
    quiet = QuietHours(start=time(21), end=time(9), send_at=time(0, 0))  # dispatch at 00:00 UTC
    zones = pd.Series(["Asia/Tokyo", "Europe/Kyiv", "America/New_York"], index=[1, 2, 3])
    window = send_window_for(zones, date(2026, 1, 14), quiet, "UTC")
    # Tokyo: 09:00 local, open at once, until 21:00 local = 12:00 UTC
    assert pd.isna(window.loc[1, "not_before"]) and window.loc[1, "not_after"] == pd.Timestamp("2026-01-15 12:00")
    # Kyiv: 02:00 local, waits until 09:00 local (07:00 UTC), until 21:00 local (19:00 UTC)
    assert window.loc[2, "not_before"] == pd.Timestamp("2026-01-15 07:00")
    assert window.loc[2, "not_after"] == pd.Timestamp("2026-01-15 19:00")
    # New York: 19:00 local the evening before: two hours, until 21:00 local = 02:00 UTC
    assert pd.isna(window.loc[3, "not_before"]) and window.loc[3, "not_after"] == pd.Timestamp("2026-01-15 02:00")
    never_quiet = send_window_for(zones, date(2026, 1, 14), QuietHours(start=time(9), end=time(9)), "UTC")
    assert never_quiet.isna().all().all()
