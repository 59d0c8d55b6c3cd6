"""The campaign reports' figures are counted in the warehouse (a month of decisions is millions of rows at
1M customers): on hand-built decisions and entries, each count at its boundary, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date

import pandas as pd

from crm.campaigns import campaign_funnel, sms_saving
from crm.core.db import write_frame
from crm.core.migrations import upgrade_warehouse
from crm.core.settings import warehouse_engine
from models.campaigns import campaign_decisions, campaign_entries

START, END = date(2026, 3, 1), date(2026, 3, 3)
COLUMNS = ["as_of", "campaign_id", "customer_id", "wave", "step", "channel", "touch", "group", "decision", "reason"]
DECISIONS = [
    # c1 step 1: customer 1 pushed, then the cascade's SMS; customer 2 in control; customer 3 SMS at once.
    ("2026-03-01", "c1", 1, 1, 1, "push", 0, "treatment", "planned", "consented", True),
    ("2026-03-01", "c1", 1, 1, 1, "sms", 1, "treatment", "planned", "consented", True),
    ("2026-03-01", "c1", 2, 1, 1, "push", 0, "control", "skipped", "control", True),
    ("2026-03-02", "c1", 3, 1, 1, "sms", 0, "treatment", "planned", "consented", True),
    ("2026-02-28", "c1", 4, 1, 1, "push", 0, "treatment", "planned", "consented", True),  # the day before: out
    ("2026-03-04", "c1", 4, 1, 1, "push", 0, "treatment", "planned", "consented", True),  # the day after: out
    # c1 step 2: customer 1 capped, not reachable by SMS.
    ("2026-03-03", "c1", 1, 1, 2, "email", 0, "treatment", "skipped", "capped", False),
    # c2: customer 5's second wave decided on two days (one entry, two SMS-baseline touches).
    ("2026-03-01", "c2", 5, 2, 1, "email", 0, "treatment", "planned", "consented", True),
    ("2026-03-02", "c2", 5, 2, 1, "email", 0, "treatment", "planned", "consented", True),
]
ENTRIES = [
    ("c1", 1, 1, "2026-03-01", "treatment", "2026-03-03", "converted"),  # last day of the window: counted
    ("c1", 2, 1, "2026-03-01", "control", "2026-03-02", "converted"),  # control: not a campaign's conversion
    ("c1", 3, 1, "2026-03-02", "treatment", None, None),
    ("c2", 5, 2, "2026-03-01", "treatment", "2026-03-04", "converted"),  # after the window: out
    ("c2", 6, 1, "2026-02-20", "treatment", "2026-02-28", "converted"),  # before the window: out
]


def _load(engine) -> None:
    decisions = pd.DataFrame(DECISIONS, columns=[*COLUMNS, "sms_reachable"])
    decisions["as_of"] = pd.to_datetime(decisions["as_of"])
    entries = pd.DataFrame(
        ENTRIES, columns=["campaign_id", "customer_id", "wave", "entered_on", "group", "exited_on", "exit_reason"]
    )
    for column in ("entered_on", "exited_on"):
        entries[column] = pd.to_datetime(entries[column])
    with engine.begin() as conn:
        write_frame(conn, campaign_decisions, decisions, on_conflict="error")
        write_frame(conn, campaign_entries, entries.assign(campaign_version=1), on_conflict="error")


def test_funnel_counts_entries_control_skips_plans_and_conversions_of_the_window(backend):
    engine = warehouse_engine()
    upgrade_warehouse(engine)
    _load(engine)
    with engine.connect() as conn:
        funnel = campaign_funnel(conn, START, END).set_index(["campaign_id", "step"])
    c1 = funnel.loc[("c1", 1)]
    assert (c1["entered"], c1["control"]) == (3, 1)
    assert (c1["planned_push"], c1["planned_sms"], c1["skipped_control"]) == (1, 2, 1)
    assert c1["converted"] == 1
    c1_step2 = funnel.loc[("c1", 2)]
    assert (c1_step2["entered"], c1_step2["control"], c1_step2["skipped_capped"], c1_step2["planned_push"]) == (
        1,
        0,
        1,
        0,
    )
    c2 = funnel.loc[("c2", 1)]
    assert (c2["entered"], c2["planned_email"], c2["converted"]) == (1, 2, 0)
    assert list(funnel.index) == [("c1", 1), ("c1", 2), ("c2", 1)]


def test_sms_saving_counts_treated_reachable_first_touches_against_the_cascades_sms(backend):
    engine = warehouse_engine()
    upgrade_warehouse(engine)
    _load(engine)
    with engine.connect() as conn:
        saving = sms_saving(conn, START, END, 150)
        nothing = sms_saving(conn, date(2025, 1, 1), date(2025, 1, 31), 150)
    assert saving == {
        "baseline_sms": 4,
        "cascade_sms": 2,
        "saved_sms": 2,
        "saved_minor": 300,
        "saving_share": 0.5,
    }
    assert nothing["baseline_sms"] == 0 and nothing["saving_share"] is None


def test_many_customers_are_read_through_a_temporary_table_with_the_same_rows_as_in_lists(backend, monkeypatch):
    from sqlalchemy import select

    import crm.campaigns.io as campaigns_io

    engine = warehouse_engine()
    upgrade_warehouse(engine)
    _load(engine)
    wanted = [1, 2, 5, 5, 99]  # a repeated id and an unknown one
    with engine.connect() as conn:
        in_lists = campaigns_io._read_for(conn, select(campaign_entries), wanted)
        monkeypatch.setattr(campaigns_io, "_IDS_PER_QUERY", 2)
        joined = campaigns_io._read_for(conn, select(campaign_entries), wanted)
        none = campaigns_io._read_for(conn, select(campaign_entries), [])
    key = ["campaign_id", "customer_id", "wave"]
    assert sorted(in_lists["customer_id"]) == [1, 2, 5]
    pd.testing.assert_frame_equal(
        joined.sort_values(key, ignore_index=True), in_lists.sort_values(key, ignore_index=True)
    )
    assert none.empty and list(none.columns) == list(in_lists.columns)
