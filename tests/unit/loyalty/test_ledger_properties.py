"""Property tests of the ledger's invariants over random event sequences, late deliveries and re-runs (Hypothesis).

Each example is a small programme (a few members, two weeks) driven through the in-memory model,
which runs the same pure functions as the nightly flow. Short expiry and low thresholds make
expiry, redemption limits, reversals and tier moves happen in most examples.
"""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crm.loyalty import LoyaltyConfig, Tier, check_invariants
from tests.unit.loyalty.model import MemoryProgramme
from tests.unit.loyalty.reference import Reference

START = date(2028, 2, 20)  # crosses 29 February of a leap year
DAYS = 10
CONFIG = LoyaltyConfig(
    tiers=[
        Tier(name="bronze", threshold_minor=0, purchase_bp=500, interest_bp=1_000),
        Tier(name="silver", threshold_minor=30_000, purchase_bp=1_000, interest_bp=2_000),
        Tier(name="gold", threshold_minor=80_000, purchase_bp=2_000, interest_bp=3_000),
    ],
    window_days=5,
    welcome_bonus_minor={"online": 5_000, "offline": 3_000},
    birthday_bonus_minor=1_000,
    expiry_days=4,
    promo_expiry_days=2,
    redemption_limit_bp=5_000,
)

orders = st.lists(
    st.tuples(
        st.integers(1, 4),  # customer
        st.integers(0, DAYS - 1),  # day it happened
        st.integers(0, 40_000),  # amount
        st.integers(0, 3),  # days late
        st.one_of(st.none(), st.integers(0, 4)),  # returned this many days after it was first delivered
    ),
    max_size=12,
)
interest = st.lists(
    st.tuples(st.integers(1, 4), st.integers(0, DAYS - 1), st.integers(0, 20_000), st.integers(0, 2)), max_size=6
)
signups = st.lists(st.tuples(st.integers(0, DAYS - 1), st.sampled_from(["online", "offline"])), min_size=4, max_size=4)
reruns = st.lists(st.tuples(st.integers(0, DAYS - 1), st.integers(0, DAYS - 1)), max_size=3)


def _world(order_events, interest_events, signup_events):
    """Per delivery day: the orders (as they stand), interest payments and customers newly visible."""
    by_day: dict[date, dict[str, list]] = {}

    def add(day_index: int, kind: str, row: dict) -> None:
        by_day.setdefault(START + timedelta(days=day_index), {"orders": [], "payments": [], "customers": []})[
            kind
        ].append(row)

    for i, (cid, day, amount, late, returned_after) in enumerate(order_events):
        order = {
            "order_id": 100 + i,
            "customer_id": cid,
            "amount_minor": amount,
            "product_group": "gold",
            "sales_channel": "store",
        }
        delivered = day + late
        add(delivered, "orders", order | {"status": "completed"})
        if returned_after is not None:
            add(delivered + returned_after, "orders", order | {"status": "returned"})
    for i, (cid, day, amount, late) in enumerate(interest_events):
        add(
            day + late,
            "payments",
            {"payment_id": 500 + i, "customer_id": cid, "amount_minor": amount, "payment_type": "interest"},
        )
    for cid, (day, channel) in enumerate(signup_events, start=1):
        add(
            day,
            "customers",
            {"customer_id": cid, "signup_channel": channel, "registered_at": START + timedelta(days=day)},
        )
    return by_day


def _frames(rows: dict[str, list] | None):
    rows = rows or {"orders": [], "payments": [], "customers": []}
    orders_frame = pd.DataFrame(
        rows["orders"], columns=["order_id", "customer_id", "amount_minor", "product_group", "sales_channel", "status"]
    )
    # Several versions of an order delivered the same day: the last one is what the night sees.
    orders_frame = orders_frame.drop_duplicates("order_id", keep="last")
    return {
        "orders": orders_frame,
        "payments": pd.DataFrame(
            rows["payments"], columns=["payment_id", "customer_id", "amount_minor", "payment_type"]
        ),
        "customers": pd.DataFrame(rows["customers"], columns=["customer_id", "signup_channel", "registered_at"]),
    }


BIRTHS = pd.DataFrame(
    {"customer_id": [1, 2, 3, 4], "birth_date": [date(2000, 2, 29), date(1990, 2, 22), date(1985, 3, 1), None]}
)


def _day_rows(by_day, day):
    rows = by_day.get(day) or {"orders": [], "payments": [], "customers": []}
    latest = {}
    for order in rows["orders"]:  # several versions delivered the same day: the night sees the last
        latest[order["order_id"]] = order
    return list(latest.values()), rows["payments"], rows["customers"]


BIRTH_DICT = {1: date(2000, 2, 29), 2: date(1990, 2, 22), 3: date(1985, 3, 1)}


def _reference_state(r: Reference):
    return (
        sorted(r.entries.items()),
        sorted(r.allocations.items()),
        sorted(r.qualifying.items()),
        sorted(r.tiers.items()),
    )


def _run_reference(by_day, rerun_plan=()) -> Reference:
    r = Reference(CONFIG)
    reruns_after: dict[int, list[int]] = {}
    for after, target in rerun_plan:
        reruns_after.setdefault(after, []).append(min(target, after))
    last = max([*by_day, START + timedelta(days=DAYS - 1)])
    day = START
    while day <= last:
        r.run_day(day, *_day_rows(by_day, day), BIRTH_DICT)
        assert not r.violations(), (day, r.violations()[:3])
        for target in reruns_after.get((day - START).days, []):
            before = _reference_state(r)
            again = START + timedelta(days=target)
            r.run_day(again, *_day_rows(by_day, again), BIRTH_DICT)
            assert _reference_state(r) == before, f"re-running {again} changed the ledger"
        day += timedelta(days=1)
    return r


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(orders, interest, signups, reruns)
def test_ledger_invariants_hold_over_random_sequences_late_events_and_reruns(
    order_events, interest_events, signup_events, rerun_plan
):
    by_day = _world(order_events, interest_events, signup_events)
    r = _run_reference(by_day, rerun_plan)
    amounts = {100 + i: a for i, (_, _, a, _, _) in enumerate(order_events)}
    for e in r.entries.values():
        if e["kind"] == "redemption":  # never more than the limit share of the purchase
            assert -e["amount_minor"] <= amounts[int(e["source_key"])] * CONFIG.redemption_limit_bp // 10_000
    # Re-runs and their timing change nothing: the same deliveries without re-runs give the same ledger.
    assert _reference_state(_run_reference(by_day)) == _reference_state(r)


def _engine_frames(p: MemoryProgramme):
    cols = ["entry_id", "customer_id", "as_of", "kind", "amount_minor", "source_kind", "source_key", "expires_on"]
    e = p.entries[cols].sort_values("entry_id").reset_index(drop=True).astype(str)
    a = p.allocations.sort_values(["debit_entry_id", "lot_entry_id"]).reset_index(drop=True).astype(str)
    q = p.qualifying.sort_values("entry_id").reset_index(drop=True).astype(str)
    return e, a, q


def _reference_frames(r: Reference):
    cols = ["entry_id", "customer_id", "as_of", "kind", "amount_minor", "source_kind", "source_key", "expires_on"]
    e = pd.DataFrame(list(r.entries.values()), columns=cols).sort_values("entry_id").reset_index(drop=True).astype(str)
    a = (
        pd.DataFrame(
            list(r.allocations.values()),
            columns=["debit_entry_id", "lot_entry_id", "customer_id", "as_of", "amount_minor"],
        )
        .sort_values(["debit_entry_id", "lot_entry_id"])
        .reset_index(drop=True)
        .astype(str)
    )
    q = (
        pd.DataFrame(
            list(r.qualifying.values()),
            columns=["entry_id", "customer_id", "as_of", "source_kind", "source_key", "amount_minor"],
        )
        .sort_values("entry_id")
        .reset_index(drop=True)
        .astype(str)
    )
    return e, a, q


@pytest.mark.slow
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(orders, interest, signups, reruns)
def test_the_production_engine_posts_what_the_reference_model_posts(
    order_events, interest_events, signup_events, rerun_plan
):
    """The pandas engine of the nightly flow against the plain-Python model, re-runs included; invariants on its frames."""
    by_day = _world(order_events, interest_events, signup_events)
    reference = _run_reference(by_day)
    p = MemoryProgramme(CONFIG)
    reruns_after: dict[int, list[int]] = {}
    for after, target in rerun_plan:
        reruns_after.setdefault(after, []).append(min(target, after))
    last = max([*by_day, START + timedelta(days=DAYS - 1)])
    day = START
    while day <= last:
        p.run_day(day, birth_dates=BIRTHS, **_frames(by_day.get(day)))
        for target in reruns_after.get((day - START).days, []):
            again = START + timedelta(days=target)
            p.run_day(again, birth_dates=BIRTHS, **_frames(by_day.get(again)))
        day += timedelta(days=1)
    assert check_invariants(p.entries, p.allocations) == []
    for mine, theirs, name in zip(
        _engine_frames(p), _reference_frames(reference), ("entries", "allocations", "qualifying"), strict=True
    ):
        pd.testing.assert_frame_equal(mine, theirs, obj=name)
    tiers = {c: [(d, t) for d, t, _ in rows] for c, rows in p.tiers.items()}
    assert sorted(tiers.items()) == sorted(reference.tiers.items())
