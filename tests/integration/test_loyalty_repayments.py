"""Cashback paying part of a loan repayment through the nightly code, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

from crm.loyalty import LoyaltyConfig, check_invariants, ledger_snapshot, post_loyalty_day
from tests.campaigns import seed_entity
from tests.integration.test_loyalty_adjustments import D0, _members
from tests.sending import warehouse

REPAYING = LoyaltyConfig(welcome_bonus_minor={"online": 5_000, "offline": 3_000}, repayment_redemption_limit_bp=5_000)


def test_a_repayment_is_paid_with_cashback_up_to_its_limit_once_even_when_the_night_is_rerun(backend):
    engine = warehouse(backend.warehouse_url)
    _members(engine)  # customers 1 and 2, 5,000 welcome bonus each
    post_loyalty_day(engine, engine, D0, REPAYING)
    day = D0 + timedelta(days=1)
    payments = [
        {"payment_id": 1, "customer_id": 1, "amount_minor": 4_000, "payment_type": "principal"},  # limit 2,000
        {"payment_id": 2, "customer_id": 2, "amount_minor": 30_000, "payment_type": "interest"},  # balance 5,000
    ]
    at = "2026-03-03 10:00"
    seed_entity(
        engine, "payments", [p | {"loan_id": 9, "paid_at": at, "updated_at": at} for p in payments], ingested_on=day
    )
    first = post_loyalty_day(engine, engine, day, REPAYING)
    again = post_loyalty_day(engine, engine, day, REPAYING)
    assert first.violations == [] and again.entries_added == 0 and again.allocations_added == 0

    ledger = ledger_snapshot(engine)
    entries = ledger["loyalty_ledger"]
    red = entries[entries["kind"] == "redemption"].set_index("source_key")["amount_minor"]
    assert red.to_dict() == {"1": -2_000, "2": -5_000}
    accrual = entries[entries["source_kind"] == "interest_payment"]["amount_minor"].tolist()
    assert accrual == [(30_000 - 5_000) * 300 // 10_000]  # bronze's interest rate on the part paid in cash
    assert check_invariants(entries, ledger["loyalty_allocations"]) == []
