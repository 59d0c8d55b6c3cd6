"""Every loyalty rule at its boundaries, on hand-built days (the production engine through the in-memory model)."""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd
import pytest

from crm.core.config import ConfigError, load_config
from crm.loyalty import (
    LoyaltyConfig,
    Promotion,
    Tier,
    allocate_fifo,
    arbitrate,
    birthday_in,
    check_invariants,
    greedy_take,
    has_birthday,
    tier_of,
)
from tests.unit.loyalty.model import MemoryProgramme

D0 = date(2026, 3, 2)
CONFIG = LoyaltyConfig(
    tiers=[
        Tier(name="bronze", threshold_minor=0, purchase_bp=200, interest_bp=300),
        Tier(name="silver", threshold_minor=100_000, purchase_bp=400, interest_bp=500),
        Tier(name="gold", threshold_minor=300_000, purchase_bp=700, interest_bp=800),
    ],
    window_days=30,
    welcome_bonus_minor={"online": 10_000, "offline": 5_000},
    birthday_bonus_minor=2_000,
    expiry_days=10,
    promo_expiry_days=3,
    redemption_limit_bp=3_000,
)


def day(n: int) -> date:
    return D0 + timedelta(days=n)


def joined(*customers: tuple[int, str], config: LoyaltyConfig = CONFIG) -> MemoryProgramme:
    p = MemoryProgramme(config)
    p.run_day(
        D0,
        customers=pd.DataFrame(
            {
                "customer_id": [c for c, _ in customers],
                "signup_channel": [ch for _, ch in customers],
                "registered_at": [D0] * len(customers),
            }
        ),
    )
    return p


def order(order_id: int, customer_id: int, amount: int, status: str = "completed", group: str = "gold") -> pd.DataFrame:
    return pd.DataFrame(
        {
            "order_id": [order_id],
            "customer_id": [customer_id],
            "amount_minor": [amount],
            "product_group": [group],
            "sales_channel": ["store"],
            "status": [status],
        }
    )


def entries(p: MemoryProgramme, kind: str | None = None) -> pd.DataFrame:
    e = p.entries
    return e[e["kind"] == kind] if kind else e


def test_welcome_bonus_differs_for_online_and_offline_signups_and_joined_events_carry_it():
    p = joined((1, "online"), (2, "offline"))
    assert p.balance(1) == 10_000 and p.balance(2) == 5_000
    joined_events = p.events[p.events["event"] == "joined"].set_index("customer_id")
    assert joined_events.loc[1, "amount_minor"] == 10_000 and joined_events.loc[2, "detail"] == "offline"
    assert p.tier_on(1, D0) == "bronze"


def test_tier_threshold_exactly_reached_enters_the_tier_one_minor_unit_short_does_not():
    qualifying = pd.Series([99_999, 100_000, 299_999, 300_000, 0, -5])
    tiers, _ = tier_of(CONFIG, qualifying, pd.Series([False] * 6))
    assert tiers.tolist() == ["bronze", "silver", "silver", "gold", "bronze", "bronze"]
    p = joined((1, "online"), (2, "online"))
    p.run_day(day(1), orders=pd.concat([order(10, 1, 100_000), order(11, 2, 99_999)]))
    assert p.tier_on(1, day(1)) == "silver" and p.tier_on(2, day(1)) == "bronze"
    changed = p.events[(p.events["event"] == "tier_changed")]
    assert changed[["customer_id", "detail"]].values.tolist() == [[1, "silver"]]
    # the next purchase earns the new tier's rate
    p.run_day(day(2), orders=order(12, 1, 10_000))
    accrual = entries(p, "accrual").set_index("source_key").loc["12"]
    assert accrual["rule"] == "purchase 4% (silver)"


def test_activity_leaving_the_rolling_window_drops_the_tier():
    p = joined((1, "online"))
    p.run_day(day(1), orders=order(10, 1, 100_000))
    assert p.tier_on(1, day(1)) == "silver"
    p.run_day(day(30))  # posted on day 1: still inside the 30-day window on day 30
    assert p.tier_on(1, day(30)) == "silver"
    p.run_day(day(31))
    assert p.tier_on(1, day(31)) == "bronze"


def test_a_written_off_loan_downgrades_one_tier_and_keeps_the_cashback():
    p = joined((1, "online"))
    p.run_day(day(1), orders=order(10, 1, 300_000))
    assert p.tier_on(1, day(1)) == "gold"
    before = p.balance(1)
    p.run_day(day(2), downgraded={1})
    assert p.tier_on(1, day(2)) == "silver"
    assert p.tiers[1][-1][2] == "downgraded: loan written off"
    assert p.balance(1) == before  # a loan status change never touches the ledger (the case's bug)


def test_expiry_on_the_day_the_day_before_it_still_pays():
    p = joined((1, "online"), (2, "online"))  # 10,000 each, expiring on day 10
    p.run_day(day(9), orders=order(10, 1, 100_000))
    assert -entries(p, "redemption").set_index("source_key").loc["10", "amount_minor"] == 10_000
    p.run_day(day(10), orders=order(11, 2, 100_000))
    expired = entries(p, "expiry")
    assert expired["customer_id"].tolist() == [2] and expired["amount_minor"].tolist() == [-10_000]
    assert "11" not in set(entries(p, "redemption")["source_key"])  # expired before the purchase could use it
    assert check_invariants(p.entries, p.allocations) == []


def test_redemption_at_the_limit_and_limited_by_the_balance():
    p = joined((1, "online"), (2, "offline"))  # balances 10,000 and 5,000
    p.run_day(day(1), orders=pd.concat([order(10, 1, 33_334), order(11, 2, 100_000)]))
    red = entries(p, "redemption").set_index("source_key")["amount_minor"]
    assert red["10"] == -10_000  # 30% of 33,334 = 10,000 (rounded down): exactly the limit, exactly the balance
    assert red["11"] == -5_000  # the limit is 30,000 but the balance is 5,000
    accrual = entries(p, "accrual").set_index("source_key")["amount_minor"]
    assert accrual["10"] == (33_334 - 10_000) * 200 // 10_000  # cashback on what was paid in cash


def test_two_purchases_the_same_day_share_the_balance_in_order():
    p = joined((1, "online"))
    p.run_day(day(1), orders=pd.concat([order(10, 1, 20_000), order(11, 1, 20_000)]))
    red = entries(p, "redemption").set_index("source_key")["amount_minor"]
    assert red["10"] == -6_000 and red["11"] == -4_000


def test_reversal_after_a_partial_redemption_claws_back_up_to_the_balance_and_refunds_what_was_paid():
    config = CONFIG.model_copy(update={"welcome_bonus_minor": {"online": 0, "offline": 0}})
    p = joined((1, "online"), config=config)
    p.run_day(day(1), orders=order(10, 1, 500_000))  # accrues 10,000 at 2%; the member becomes gold
    p.run_day(day(2), orders=order(11, 1, 20_000))  # redeems 6,000 (30%) of it, accrues 14,000 x 7% = 980
    assert p.balance(1) == 10_000 - 6_000 + 980
    p.run_day(day(3), orders=order(10, 1, 500_000, status="returned"))
    reversal = entries(p, "reversal")
    assert reversal["amount_minor"].tolist() == [-4_980]  # only what is left: the balance never goes negative
    assert reversal["rule"].tolist() == ["order returned: cashback clawed back up to the balance"]
    assert p.balance(1) == 0
    p.run_day(day(4), orders=order(11, 1, 20_000, status="returned"))  # refund the 6,000 paid, claw back the 980
    assert sorted(entries(p, "reversal")["amount_minor"].tolist()) == [-4_980, -980, 6_000]
    assert p.balance(1) == 5_020
    assert check_invariants(p.entries, p.allocations) == []
    # nothing was rewritten: both accruals and the redemption are still there; the status account is back to 0
    assert len(entries(p, "accrual")) == 2 and len(entries(p, "redemption")) == 1
    assert p.qualifying["amount_minor"].astype(int).sum() == 0
    n = len(p.entries)
    p.run_day(day(5), orders=order(10, 1, 500_000, status="returned"))  # re-delivered: nothing more
    assert len(p.entries) == n


def test_an_order_first_seen_returned_posts_nothing():
    p = joined((1, "online"))
    p.run_day(day(1), orders=order(10, 1, 50_000, status="returned"))
    assert len(p.entries) == 1 and p.qualifying.empty


@pytest.mark.parametrize(
    ("celebrated", "leap_rule", "pairs"),
    [
        (date(2027, 2, 28), "feb28", ((2, 28), (2, 29))),
        (date(2027, 3, 1), "feb28", ((3, 1),)),
        (date(2027, 3, 1), "mar1", ((3, 1), (2, 29))),
        (date(2028, 2, 28), "feb28", ((2, 28),)),
        (date(2028, 2, 29), "feb28", ((2, 29),)),
    ],
)
def test_a_29_february_birthday_is_celebrated_once_a_year(celebrated, leap_rule, pairs):
    assert birthday_in(celebrated, leap_rule) == pairs


def test_birthday_bonus_on_29_february_posts_once_and_expires_early():
    births = pd.DataFrame({"customer_id": [1, 2], "birth_date": [date(2000, 2, 29), None]})
    assert has_birthday(births["birth_date"], date(2027, 2, 28), "feb28").tolist() == [True, False]
    p = MemoryProgramme(CONFIG)
    first = date(2027, 2, 27)
    p.run_day(
        first,
        customers=pd.DataFrame({"customer_id": [1, 2], "signup_channel": ["online"] * 2, "registered_at": [first] * 2}),
    )
    p.run_day(date(2027, 2, 28), birth_dates=births)
    p.run_day(date(2027, 2, 28), birth_dates=births)  # a re-run
    p.run_day(date(2027, 3, 1), birth_dates=births)
    bonus = p.entries[p.entries["source_kind"] == "birthday"]
    assert bonus["source_key"].tolist() == ["1:2027"] and bonus["expires_on"].tolist() == [date(2027, 3, 3)]


def test_fifo_consumes_the_oldest_lot_first_even_when_a_newer_one_expires_sooner():
    lots = pd.DataFrame(
        {
            "customer_id": [1, 1],
            "entry_id": ["b-new-promo", "a-old-standard"],
            "as_of": [day(2), day(1)],
            "expires_on": [day(5), day(100)],
            "remaining_minor": [300, 500],
        }
    )
    debits = pd.DataFrame({"customer_id": [1, 1], "entry_id": ["x", "y"], "amount_minor": [400, 200]})
    allocations, left = allocate_fifo(lots, debits, day(3))
    assert allocations[["debit_entry_id", "lot_entry_id", "amount_minor"]].values.tolist() == [
        ["x", "a-old-standard", 400],
        ["y", "a-old-standard", 100],
        ["y", "b-new-promo", 100],
    ]
    assert left[["entry_id", "remaining_minor"]].values.tolist() == [["b-new-promo", 200]]
    with pytest.raises(ValueError, match="exceed"):
        allocate_fifo(lots, debits.assign(amount_minor=[800, 1]), day(3))


def test_greedy_take_grants_in_order_until_the_pot_is_empty():
    got = greedy_take(pd.Series([1, 1, 1, 2]), pd.Series([30, 50, 40, 10]), pd.Series([100, 100, 100, 0]))
    assert got.tolist() == [30, 50, 20, 0]


PROMOS = LoyaltyConfig(
    promotions=[
        Promotion(id="gold-week", priority=1, cashback_bp=300, start=D0, end=day(6), product_groups=["gold"]),
        Promotion(id="big-bonus", priority=1, cashback_bp=500, start=D0, end=day(6)),
        Promotion(id="too-generous", priority=0, cashback_bp=2_000, start=D0, end=day(6)),
        Promotion(id="later", priority=2, cashback_bp=900, start=D0, end=day(6), product_groups=["silver"]),
    ],
    product_margin_bp={"gold": 2_500, "silver": 3_500},
    margin_floor_bp=1_000,
)


def test_arbitration_picks_by_priority_the_most_favourable_within_the_margin_floor_with_reasons():
    orders = pd.DataFrame(
        {
            "order_id": [1, 2],
            "customer_id": [7, 8],
            "amount_minor": [100_000, 100_000],
            "product_group": ["gold", "silver"],
            "sales_channel": ["store", "online"],
            "base_bp": [200, 200],
        }
    )
    decisions = arbitrate(orders, PROMOS, D0).set_index(["order_id", "promotion_id"])
    assert decisions.loc[(1, "big-bonus"), "decision"] == "chosen"  # 2,500 - 200 - 500 = 1,800 >= 1,000
    assert "margin floor" in decisions.loc[(1, "too-generous"), "reason"]  # priority 0 but breaks the floor
    assert "less favourable" in decisions.loc[(1, "gold-week"), "reason"]
    assert decisions.loc[(1, "big-bonus"), "benefit_minor"] == 5_000
    assert decisions.loc[(2, "too-generous"), "decision"] == "chosen"  # silver's margin affords priority 0
    assert decisions.loc[(2, "too-generous"), "margin_after_bp"] == 3_500 - 200 - 2_000
    assert "lower priority" in decisions.loc[(2, "later"), "reason"]
    assert "lower priority" in decisions.loc[(2, "big-bonus"), "reason"]
    floor_case = arbitrate(orders.iloc[:1], PROMOS.model_copy(update={"margin_floor_bp": 2_200}), D0)
    assert set(floor_case["decision"]) == {"rejected"}  # none keeps the floor: no promotion


def test_the_chosen_promotion_accrues_short_lived_cashback_reversed_with_the_order():
    config = PROMOS.model_copy(update={"promo_expiry_days": 3})
    p = joined((7, "online"), config=config)
    p.run_day(day(1), orders=order(1, 7, 100_000))
    promo = p.entries[p.entries["source_kind"] == "order_promotion"]
    assert promo["amount_minor"].tolist() == [(100_000 - 30_000) * 500 // 10_000]
    assert promo["expires_on"].tolist() == [day(4)] and promo["rule"].tolist() == ["promotion big-bonus"]
    p.run_day(day(2), orders=order(1, 7, 100_000, status="returned"))
    assert check_invariants(p.entries, p.allocations) == []
    assert p.entries["entry_id"].is_unique


def test_config_errors_name_the_file_and_the_field(tmp_path, monkeypatch):
    monkeypatch.setenv("CRM_CONFIG_DIR", str(tmp_path))
    (tmp_path / "loyalty.yaml").write_text("redemption_limit_bp: 12000\n")
    with pytest.raises(ConfigError, match=r"loyalty.yaml: redemption_limit_bp: .*12000"):
        load_config("loyalty", LoyaltyConfig)
    (tmp_path / "loyalty.yaml").write_text("tiers: [{name: a, threshold_minor: 5, purchase_bp: 1, interest_bp: 1}]\n")
    with pytest.raises(ConfigError, match="thresholds must start at 0"):
        load_config("loyalty", LoyaltyConfig)


def test_the_shipped_config_file_validates_and_equals_the_defaults():
    from crm.loyalty import load_loyalty_config

    assert load_loyalty_config() == LoyaltyConfig()


def test_a_tier_promotion_speeds_progress_only_inside_its_period():
    from crm.loyalty import TierPromotion

    config = CONFIG.model_copy(update={"tier_promotion": TierPromotion(start=day(1), end=day(1), multiplier_bp=20_000)})
    p = joined((1, "online"), (2, "online"), config=config)
    p.run_day(day(1), orders=order(10, 1, 50_000))  # counts double: 100,000 = silver exactly
    p.run_day(day(2), orders=order(11, 2, 50_000))
    assert p.tier_on(1, day(1)) == "silver" and p.tier_on(2, day(2)) == "bronze"


def test_events_for_campaigns_one_per_member_and_kind():
    from crm.loyalty import day_events

    entries_frame = pd.DataFrame(
        {
            "customer_id": [1, 1, 1, 2],
            "kind": ["accrual", "accrual", "redemption", "accrual"],
            "amount_minor": [100, 50, -30, 7],
            "source_kind": ["order", "interest_payment", "order", "birthday"],
        }
    )
    changes = pd.DataFrame(
        {"customer_id": [2, 3], "old": ["bronze", None], "tier": ["silver", "bronze"], "rule": ["", ""]}
    )
    joiners = pd.DataFrame({"customer_id": [3], "signup_channel": ["offline"], "welcome": [True], "enrolled": [False]})
    expiring = pd.DataFrame(
        {"customer_id": [1, 1, 4], "expires_on": [day(30), day(30), day(30)], "remaining_minor": [10, 5, 0]}
    )
    events = day_events(D0, entries_frame, changes, joiners, expiring)
    got = {(r.customer_id, r.event): (r.detail, r.amount_minor) for r in events.itertuples()}
    assert got[(1, "cashback_accrued")] == ("interest_payment,order", 150)
    assert got[(2, "cashback_accrued")] == ("birthday", 7)
    assert got[(2, "tier_changed")][0] == "silver"
    assert got[(3, "joined")][0] == "offline"
    assert got[(1, "cashback_expiring")] == (str(day(30)), 15)
    assert (4, "cashback_expiring") not in got and (3, "tier_changed") not in got


# --------------------------------------------------------------------------- cashback paying loan repayments

REPAYING = CONFIG.model_copy(update={"repayment_redemption_limit_bp": 5_000})


def payment(payment_id: int, customer_id: int, amount: int, kind: str = "principal") -> pd.DataFrame:
    return pd.DataFrame(
        {"payment_id": [payment_id], "customer_id": [customer_id], "amount_minor": [amount], "payment_type": [kind]}
    )


def test_cashback_pays_a_repayment_up_to_its_limit_and_never_beyond_the_balance():
    p = joined((1, "online"), (2, "offline"), config=REPAYING)  # balances 10,000 and 5,000
    p.run_day(day(1), payments=pd.concat([payment(70, 1, 20_001), payment(71, 2, 20_000)]))
    red = entries(p, "redemption").set_index("source_key")
    assert red.loc["70", "amount_minor"] == -10_000  # 50% of 20,001 = 10,000 (rounded down): the limit and the balance
    assert red.loc["71", "amount_minor"] == -5_000  # the limit is 10,000, the balance 5,000
    assert set(red["source_kind"]) == {"loan_payment"} and p.balance(1) == 0 and p.balance(2) == 0
    p.run_day(day(2), payments=payment(72, 1, 1_000))  # nothing left: nothing redeemed, never negative
    assert "72" not in set(entries(p, "redemption")["source_key"])
    assert check_invariants(p.entries, p.allocations) == []


def test_a_repayment_redemption_comes_after_the_days_purchases_and_interest_cashback_is_on_the_cash_part():
    p = joined((1, "online"), config=REPAYING)  # 10,000
    p.run_day(day(1), orders=order(10, 1, 20_000), payments=payment(80, 1, 10_000, "interest"))
    red = entries(p, "redemption").set_index("source_key")["amount_minor"]
    assert red["10"] == -6_000 and red["80"] == -4_000  # the purchase first (30%), the rest to the interest (<= 50%)
    accrual = entries(p, "accrual").set_index(["source_kind", "source_key"])["amount_minor"]
    assert accrual["interest_payment", "80"] == (10_000 - 4_000) * 300 // 10_000
    status = p.qualifying.set_index("source_key")["amount_minor"]
    assert status["80"] == 10_000  # the tier still counts 100% of the interest paid


def test_repayments_are_never_paid_with_cashback_by_default_nor_twice_on_a_rerun():
    p = joined((1, "online"))
    p.run_day(day(1), payments=payment(90, 1, 20_000))
    assert entries(p, "redemption").empty and p.balance(1) == 10_000
    q = joined((1, "online"), config=REPAYING)
    q.run_day(day(1), payments=payment(90, 1, 4_000))
    q.run_day(day(1), payments=payment(90, 1, 4_000))  # a re-run of the day
    assert entries(q, "redemption")["amount_minor"].tolist() == [-2_000]
    assert check_invariants(q.entries, q.allocations) == []


def test_cashback_expiring_on_the_day_of_a_repayment_expires_first():
    p = joined((1, "online"), config=REPAYING)  # 10,000 expiring on day 10
    p.run_day(day(10), payments=payment(95, 1, 20_000))
    assert entries(p, "redemption").empty and entries(p, "expiry")["amount_minor"].tolist() == [-10_000]
