"""Property tests of the ledger's invariants against the REAL nightly code (`post_loyalty_day`) on a SQLite warehouse.

The unit property tests (`tests/unit/loyalty/test_ledger_properties.py`) run 1,000 random
programmes through a plain-Python reference model; the real code costs about a second a posted
day, so here each Hypothesis example is a batch of 250 independent random programmes (their own
customers, orders and payments, drawn like the unit tests' strategies: a few members, ten days,
late deliveries, returns, interest) posted together night by night, with re-runs of past days:
4 examples, 1,000 programmes. They are written into the warehouse's ingestion tables as the
nightly ingest would (a version per delivery day, `ingested_on`). Each example checks: the
invariants over the whole ledger and every night's check, a redemption never above the limit
share of its purchase, a re-run of a past day adds nothing and leaves every ledger table as it
was, and the ledger equals the reference model's, entry for entry. One migrated warehouse serves
every example (its tables emptied in between).
"""

from __future__ import annotations

import atexit
import random
import shutil
import tempfile
from datetime import date, datetime, time, timedelta
from functools import cache
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, delete

from crm.core.migrations import upgrade_warehouse
from crm.core.settings import make_engine
from crm.loyalty import check_invariants, ledger_snapshot, post_loyalty_day
from crm.loyalty.io import LEDGER_TABLES
from models.ingest import history, staging
from tests.campaigns import seed_entity
from tests.unit.loyalty.reference import Reference
from tests.unit.loyalty.test_ledger_properties import BIRTH_DICT, CONFIG, DAYS, START, _day_rows, reruns

PROGRAMMES = 250  # per example; 4 examples: 1,000 random programmes
SOURCE_TABLES = [staging[n] for n in ("customers", "orders", "payments")] + [
    history[n] for n in ("customers", "orders")
]


@cache
def _warehouse() -> Engine:
    """One migrated SQLite warehouse for every example (a temporary folder of the test session)."""
    folder = Path(tempfile.mkdtemp(prefix="loyalty-properties-"))
    atexit.register(shutil.rmtree, folder, True)
    engine = make_engine(f"sqlite:///{folder / 'warehouse.db'}")
    upgrade_warehouse(engine)
    return engine


def _empty(engine: Engine) -> None:
    with engine.begin() as conn:
        for table in [*SOURCE_TABLES, *LEDGER_TABLES]:
            conn.execute(delete(table))


def _amount(rng: random.Random, top: int) -> int:
    """Uniform, with the edges (0 and the top) as often as Hypothesis would pick them."""
    pick = rng.random()
    return 0 if pick < 0.1 else top if pick < 0.2 else rng.randint(0, top)


def _programmes(seed: int, count: int) -> tuple[dict[date, dict[str, list]], dict[int, date], dict, dict[int, int]]:
    """`count` independent programmes (customers k*10+1..4, orders and payments of their own): the rows delivered
    per day, when each order or payment happened, birth dates, and each order's amount."""
    rng = random.Random(seed)
    by_day: dict[date, dict[str, list]] = {}
    happened: dict[int, date] = {}
    births: dict[int, date] = {}
    amounts: dict[int, int] = {}

    def add(day_index: int, kind: str, row: dict) -> None:
        day = START + timedelta(days=day_index)
        by_day.setdefault(day, {"orders": [], "payments": [], "customers": []})[kind].append(row)

    for k in range(count):
        base = 10 * k
        for c, birth in BIRTH_DICT.items():
            births[base + c] = birth
        for i in range(rng.randint(0, 12)):
            order_id = 100_000 + 100 * k + i
            day, amount, late = rng.randint(0, DAYS - 1), _amount(rng, 40_000), rng.randint(0, 3)
            returned_after = rng.randint(0, 4) if rng.random() < 0.4 else None
            order = {
                "order_id": order_id,
                "customer_id": base + rng.randint(1, 4),
                "amount_minor": amount,
                "product_group": "gold",
                "sales_channel": "store",
            }
            happened[order_id], amounts[order_id] = START + timedelta(days=day), amount
            add(day + late, "orders", order | {"status": "completed"})
            if returned_after is not None:
                add(day + late + returned_after, "orders", order | {"status": "returned"})
        for i in range(rng.randint(0, 6)):
            payment_id = 500_000 + 100 * k + i
            day, late = rng.randint(0, DAYS - 1), rng.randint(0, 2)
            happened[payment_id] = START + timedelta(days=day)
            payment = {"payment_id": payment_id, "customer_id": base + rng.randint(1, 4)}
            add(day + late, "payments", payment | {"amount_minor": _amount(rng, 20_000), "payment_type": "interest"})
        for c in range(1, 5):
            day = rng.randint(0, DAYS - 1)
            channel = rng.choice(["online", "offline"])
            add(
                day,
                "customers",
                {"customer_id": base + c, "signup_channel": channel, "registered_at": START + timedelta(days=day)},
            )
    return by_day, happened, births, amounts


def _at(day: date, hour: int) -> datetime:
    return datetime.combine(day, time(hour))


def _deliver(engine: Engine, day: date, by_day: dict, happened: dict[int, date], births: dict) -> None:
    """The day's deliveries into the ingestion tables: the last version of each order, payments, new customers."""
    order_rows, payment_rows, customer_rows = _day_rows(by_day, day)
    if customer_rows:
        rows = [
            {
                "customer_id": c["customer_id"],
                "registered_at": _at(c["registered_at"], 10),
                "birth_date": births.get(c["customer_id"]),
                "signup_channel": c["signup_channel"],
                "is_technical": False,
                "updated_at": _at(c["registered_at"], 10),
            }
            for c in customer_rows
        ]
        seed_entity(engine, "customers", rows, ingested_on=day)
    if order_rows:
        rows = [
            o
            | {
                "ordered_at": _at(happened[o["order_id"]], 10),
                "updated_at": _at(happened[o["order_id"]], 10) if o["status"] == "completed" else _at(day, 12),
            }
            for o in order_rows
        ]
        seed_entity(engine, "orders", rows, ingested_on=day)
    if payment_rows:
        rows = [
            p | {"loan_id": 1, "paid_at": _at(happened[p["payment_id"]], 10), "updated_at": _at(day, 10)}
            for p in payment_rows
        ]
        seed_entity(engine, "payments", rows, ingested_on=day)


def _reference(by_day: dict, births: dict, last: date) -> pd.DataFrame:
    """The reference model's ledger for the same deliveries (no re-runs: they must change nothing)."""
    r = Reference(CONFIG)
    day = START
    while day <= last:
        r.run_day(day, *_day_rows(by_day, day), births)
        day += timedelta(days=1)
    cols = ["entry_id", "customer_id", "as_of", "kind", "amount_minor", "source_kind", "source_key", "expires_on"]
    frame = pd.DataFrame(list(r.entries.values()), columns=cols)
    return frame.sort_values("entry_id").reset_index(drop=True).astype(str)


@pytest.mark.slow
@settings(
    max_examples=4,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(st.integers(0, 2**32 - 1), reruns)
def test_the_real_ledger_keeps_its_invariants_over_1000_random_programmes_late_events_and_reruns(seed, rerun_plan):
    engine = _warehouse()
    _empty(engine)
    by_day, happened, births, amounts = _programmes(seed, PROGRAMMES)
    reruns_after: dict[int, list[int]] = {}
    for after, target in rerun_plan:
        reruns_after.setdefault(after, []).append(min(target, after))

    last = max([*by_day, START + timedelta(days=DAYS - 1)])
    day = START
    while day <= last:
        _deliver(engine, day, by_day, happened, births)
        posted = post_loyalty_day(engine, engine, day, CONFIG)
        assert posted.violations == [], (day, posted.violations[:3])
        for target in reruns_after.get((day - START).days, []):
            before = ledger_snapshot(engine)
            again = post_loyalty_day(engine, engine, START + timedelta(days=target), CONFIG)
            assert again.entries_added == 0 and again.allocations_added == 0
            for name, frame in ledger_snapshot(engine).items():
                pd.testing.assert_frame_equal(frame, before[name], obj=f"{name} after re-running day {target}")
        day += timedelta(days=1)

    ledger = ledger_snapshot(engine)
    entries = ledger["loyalty_ledger"]
    assert check_invariants(entries, ledger["loyalty_allocations"]) == []
    redeemed = entries[entries["kind"] == "redemption"]
    limit = redeemed["source_key"].astype(int).map(amounts) * CONFIG.redemption_limit_bp // 10_000
    assert (-redeemed["amount_minor"] <= limit).all()
    assert {"accrual", "redemption", "expiry", "reversal"} <= set(entries["kind"])  # the batch exercises every kind

    cols = ["entry_id", "customer_id", "as_of", "kind", "amount_minor", "source_kind", "source_key", "expires_on"]
    mine = entries[cols].assign(
        as_of=lambda f: pd.to_datetime(f["as_of"]).dt.date, expires_on=lambda f: pd.to_datetime(f["expires_on"]).dt.date
    )
    mine = mine.sort_values("entry_id").reset_index(drop=True).astype(str)
    pd.testing.assert_frame_equal(mine, _reference(by_day, births, last), obj="ledger against the reference model")
