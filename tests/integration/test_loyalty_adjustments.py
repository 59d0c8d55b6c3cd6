"""Operator adjustments of the cashback ledger (`crm loyalty adjust`), on SQLite and PostgreSQL: one traceable
entry keyed by the operator's reference, idempotent, on the newest posted day, never a negative balance."""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd
import pytest
from typer.testing import CliRunner

from cli import app
from crm.loyalty import (
    AdjustmentRefused,
    LoyaltyConfig,
    check_invariants,
    ledger_snapshot,
    post_adjustment,
    post_loyalty_day,
)
from tests.campaigns import seed_entity
from tests.sending import warehouse

D0 = date(2026, 3, 2)
CONFIG = LoyaltyConfig(welcome_bonus_minor={"online": 5_000, "offline": 3_000})


def _members(engine) -> None:
    rows = [
        {
            "customer_id": i,
            "registered_at": "2026-03-02 10:00",
            "birth_date": None,
            "signup_channel": "online",
            "is_technical": False,
            "updated_at": "2026-03-02 10:00",
        }
        for i in (1, 2)
    ]
    seed_entity(engine, "customers", rows, ingested_on=D0)


def test_an_adjustment_is_one_traceable_idempotent_entry_and_never_makes_a_balance_negative(backend):
    engine = warehouse(backend.warehouse_url)
    _members(engine)
    post_loyalty_day(engine, engine, D0, CONFIG)  # welcome bonus: 5,000 each

    def adjust(amount: int, reference: str, *, customer: int = 1, day: date = D0):
        return post_adjustment(engine, day, customer, amount, "goodwill after a complaint", reference, CONFIG)

    for day in (D0 - timedelta(days=1), D0 + timedelta(days=1)):  # only the newest posted day
        with pytest.raises(AdjustmentRefused, match="newest posted loyalty day"):
            adjust(100, "T-0", day=day)
    with pytest.raises(AdjustmentRefused, match="not a member"):
        adjust(100, "T-0", customer=99)

    credit = adjust(700, "T-1")
    assert credit.added and credit.balance_minor == 5_700
    before = ledger_snapshot(engine)
    again = adjust(700, "T-1")  # a re-run of the same command
    assert not again.added and again.entry_id == credit.entry_id and again.balance_minor == 5_700
    for name, frame in ledger_snapshot(engine).items():
        pd.testing.assert_frame_equal(frame, before[name], obj=name)
    with pytest.raises(AdjustmentRefused, match="another amount"):
        adjust(800, "T-1")
    with pytest.raises(AdjustmentRefused, match="another customer"):
        adjust(700, "T-1", customer=2)

    with pytest.raises(AdjustmentRefused, match="negative"):
        adjust(-5_701, "T-2")  # one more than the balance
    debit = adjust(-5_700, "T-2")  # exactly the balance: down to 0, the welcome lot first, then the credit
    assert debit.balance_minor == 0

    ledger = ledger_snapshot(engine)
    entries, allocations = ledger["loyalty_ledger"], ledger["loyalty_allocations"]
    assert check_invariants(entries, allocations) == []
    mine = entries[entries["kind"] == "adjustment"].set_index("source_key")
    assert mine.loc["T-1", "amount_minor"] == 700 and mine.loc["T-2", "amount_minor"] == -5_700
    assert set(mine["source_kind"]) == {"rule"} and mine["rule"].str.contains("goodwill").all()
    assert mine.loc["T-1", "expires_on"] is not None and pd.isna(mine.loc["T-2", "expires_on"])
    taken = allocations[allocations["debit_entry_id"] == mine.loc["T-2", "entry_id"]]
    assert sorted(taken["amount_minor"]) == [700, 5_000]

    # The nights go on: the next one sees the adjustments, a re-run of D0 adds nothing.
    assert post_loyalty_day(engine, engine, D0 + timedelta(days=1), CONFIG).violations == []
    rerun = post_loyalty_day(engine, engine, D0, CONFIG)
    assert rerun.entries_added == 0 and rerun.violations == []


def test_crm_loyalty_adjust_posts_once_and_refuses_bad_input_with_exit_3(backend):
    engine = warehouse(backend.warehouse_url)
    _members(engine)
    post_loyalty_day(engine, engine, D0, CONFIG)
    args = ["loyalty", "adjust", "--as-of", D0.isoformat(), "--customer", "2", "--reason", "migration fix"]
    done = CliRunner().invoke(app, [*args, "--amount", "250", "--reference", "MIG-7"])
    assert done.exit_code == 0 and "posted" in done.output and "5,250" in done.output, done.output
    twice = CliRunner().invoke(app, [*args, "--amount", "250", "--reference", "MIG-7"])
    assert twice.exit_code == 0 and "nothing added" in twice.output, twice.output
    refused = CliRunner().invoke(app, [*args, "--amount", "-6000", "--reference", "MIG-8"])
    assert refused.exit_code == 3 and "negative" in refused.output, refused.output
