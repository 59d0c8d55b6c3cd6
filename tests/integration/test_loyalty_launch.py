"""The programme's first run enrols the existing base without 'joined' events (no welcome campaign to everyone)."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import select

from crm.loyalty import LoyaltyConfig, post_loyalty_day
from models.loyalty import loyalty_events
from tests.campaigns import seed_entity
from tests.sending import warehouse

LAUNCH = date(2026, 3, 2)
CONFIG = LoyaltyConfig(welcome_bonus_minor={"online": 5_000, "offline": 3_000})


def _customer(customer_id: int, registered: str) -> dict:
    at = f"{registered} 10:00"
    return {
        "customer_id": customer_id,
        "registered_at": at,
        "birth_date": None,
        "signup_channel": "online",
        "is_technical": False,
        "updated_at": at,
    }


def _events(engine) -> set[tuple[str, int, str]]:
    """The membership events (the welcome bonus's `cashback_accrued` follows `welcome_from`, tested elsewhere)."""
    e = loyalty_events.c
    stmt = select(e.as_of, e.customer_id, e.event).where(e.event.in_(["joined", "enrolled"]))
    with engine.connect() as conn:
        return {(str(d), c, ev) for d, c, ev in conn.execute(stmt)}


def test_the_first_run_enrols_customers_registered_before_it_and_later_signups_join(backend):
    engine = warehouse(backend.warehouse_url)
    # 1 and 2 are customers of long standing; 3 signs up on the launch day, 4 the day after.
    base = [_customer(1, "2025-06-01"), _customer(2, "2026-03-01"), _customer(3, "2026-03-02")]
    seed_entity(engine, "customers", base, ingested_on=LAUNCH)
    post_loyalty_day(engine, engine, LAUNCH, CONFIG)
    launch_events = {
        ("2026-03-02", 1, "enrolled"),
        ("2026-03-02", 2, "enrolled"),  # registered the day before the launch: enrolled too
        ("2026-03-02", 3, "joined"),  # signed up on the launch day: a new customer
    }
    assert _events(engine) == launch_events

    next_day = LAUNCH + timedelta(days=1)
    seed_entity(engine, "customers", [_customer(4, "2026-03-03")], ingested_on=next_day)
    post_loyalty_day(engine, engine, next_day, CONFIG)
    assert _events(engine) == launch_events | {("2026-03-03", 4, "joined")}

    post_loyalty_day(engine, engine, LAUNCH, CONFIG)  # re-running the launch day gives the same events
    assert _events(engine) == launch_events | {("2026-03-03", 4, "joined")}
