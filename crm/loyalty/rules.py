"""The programme's rules as pure functions: entry ids, rates, bonuses, birthdays, tiers, promotion arbitration."""

from __future__ import annotations

import hashlib
from datetime import date, timedelta
from enum import StrEnum

import numpy as np
import pandas as pd

from crm.loyalty.config import LoyaltyConfig


class EntryKind(StrEnum):
    """What a ledger entry does to the balance."""

    ACCRUAL = "accrual"
    REDEMPTION = "redemption"
    EXPIRY = "expiry"
    REVERSAL = "reversal"
    ADJUSTMENT = "adjustment"


class SourceKind(StrEnum):
    """What caused a ledger or status-account entry."""

    ORDER = "order"
    ORDER_PROMOTION = "order_promotion"
    ORDER_RETURN = "order_return"
    INTEREST_PAYMENT = "interest_payment"
    REPAYMENT = "loan_payment"  # a redemption: cashback paid part of a loan repayment
    SIGNUP = "signup"
    BIRTHDAY = "birthday"
    LOT = "lot"  # an expiry: the credit entry whose rest expired
    ENTRY = "entry"  # a reversal: the entry it reverses
    RULE = "rule"  # an adjustment


class LoyaltyEvent(StrEnum):
    """Events campaigns target (`loyalty_events.event`)."""

    JOINED = "joined"
    # An existing customer enrolled by the programme's first run (its launch), not a new customer:
    # no default campaign targets it, so installing the programme does not welcome the whole base.
    ENROLLED = "enrolled"
    TIER_CHANGED = "tier_changed"
    CASHBACK_ACCRUED = "cashback_accrued"
    CASHBACK_EXPIRING = "cashback_expiring"


class Decision(StrEnum):
    """A promotion's fate on an order."""

    CHOSEN = "chosen"
    REJECTED = "rejected"


ENTRY_COLUMNS = [
    "entry_id",
    "customer_id",
    "as_of",
    "kind",
    "amount_minor",
    "source_kind",
    "source_key",
    "expires_on",
    "rule",
]
ALLOCATION_COLUMNS = ["debit_entry_id", "lot_entry_id", "customer_id", "as_of", "amount_minor"]
QUALIFYING_COLUMNS = ["entry_id", "customer_id", "as_of", "source_kind", "source_key", "amount_minor"]
DECISION_COLUMNS = [
    "order_id",
    "promotion_id",
    "as_of",
    "customer_id",
    "decision",
    "reason",
    "benefit_minor",
    "margin_after_bp",
]
EVENT_COLUMNS = ["as_of", "customer_id", "event", "detail", "amount_minor"]
TIER_COLUMNS = ["customer_id", "valid_from", "valid_to", "tier", "rule"]


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def entry_id(kind: str, source_kind: str, source_key: object) -> str:
    """The ledger entry id: deterministic from what it does and what caused it, so a re-run adds nothing."""
    return _hash(f"{kind}|{source_kind}|{source_key}")


def entry_ids(kind: str, source_kind: str, source_keys: pd.Series) -> pd.Series:
    """`entry_id` of many source keys."""
    prefix = f"{kind}|{source_kind}|"
    sha = hashlib.sha256
    hashed = [sha((prefix + str(k)).encode()).hexdigest()[:32] for k in source_keys.tolist()]
    return pd.Series(hashed, index=source_keys.index, dtype=object)


def qualifying_ids(source_kind: str, source_keys: pd.Series) -> pd.Series:
    """Ids of status-account entries (one per source event)."""
    return entry_ids("qualifying", source_kind, source_keys)


def share_bp(amount_minor: pd.Series | np.ndarray, bp: pd.Series | np.ndarray | int) -> np.ndarray:
    """`amount * bp / 10,000` rounded down, in integers (no float decides a boundary)."""
    return np.asarray(amount_minor, dtype="int64") * np.asarray(bp, dtype="int64") // 10_000


def tier_rates(config: LoyaltyConfig, tiers: pd.Series, source: str) -> np.ndarray:
    """Cashback rate (bp) of each member's tier for `source` (purchase | interest); unknown tiers get the lowest."""
    rates = {t.name: getattr(t, f"{source}_bp") for t in config.tiers}
    lowest = getattr(config.tiers[0], f"{source}_bp")
    return tiers.map(rates).fillna(lowest).astype("int64").to_numpy()


def birthday_in(day: date, leap_birthday_on: str) -> tuple[tuple[int, int], ...]:
    """(month, day) pairs celebrated on `day`: 29 February moves to 28 Feb or 1 Mar in a common year."""
    pairs = [(day.month, day.day)]
    leap = day.year % 4 == 0 and (day.year % 100 != 0 or day.year % 400 == 0)
    if not leap:
        if leap_birthday_on == "feb28" and (day.month, day.day) == (2, 28):
            pairs.append((2, 29))
        if leap_birthday_on == "mar1" and (day.month, day.day) == (3, 1):
            pairs.append((2, 29))
    return tuple(pairs)


def has_birthday(birth_dates: pd.Series, day: date, leap_birthday_on: str) -> pd.Series:
    """Whose birthday is celebrated on `day` (nulls: nobody)."""
    dates = pd.to_datetime(birth_dates, errors="coerce")
    mask = pd.Series(False, index=birth_dates.index)
    for month, dom in birthday_in(day, leap_birthday_on):
        mask |= (dates.dt.month == month) & (dates.dt.day == dom)
    return mask.fillna(False).astype(bool)


def tier_promotion_bp(config: LoyaltyConfig, day: date) -> int:
    """The multiplier (bp) of qualifying activity posted on `day` (10,000 = none)."""
    promo = config.tier_promotion
    if promo is not None and promo.start <= day <= promo.end:
        return promo.multiplier_bp
    return 10_000


def tier_of(config: LoyaltyConfig, qualifying_minor: pd.Series, downgraded: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Each member's tier from its qualifying activity (threshold reached = in), less the downgrade; and the rule."""
    thresholds = np.array([t.threshold_minor for t in config.tiers], dtype="int64")
    names = np.array(config.tier_names, dtype=object)
    index = np.searchsorted(thresholds, qualifying_minor.to_numpy(dtype="int64"), side="right") - 1
    index = np.maximum(index, 0)
    down = downgraded.to_numpy(dtype=bool)
    lowered = np.where(down, np.maximum(index - config.downgrade_steps, 0), index)
    rule = np.where(
        down & (lowered < index),
        "downgraded: loan written off",
        np.char.add("qualifying >= ", thresholds[index].astype(str)),
    )
    return (
        pd.Series(names[lowered], index=qualifying_minor.index, dtype=object),
        pd.Series(rule, index=qualifying_minor.index, dtype=object),
    )


def arbitrate(orders: pd.DataFrame, config: LoyaltyConfig, day: date) -> pd.DataFrame:
    """Pick one promotion per order: by priority, the most favourable that keeps the margin floor; reasons for all.

    `orders`: order_id, customer_id, amount_minor (the base cashback is paid on), product_group,
    sales_channel, base_bp (the member's purchase rate). Returns `DECISION_COLUMNS` rows for every
    (order, applicable promotion).
    """
    if orders.empty or not config.promotions:
        return pd.DataFrame(columns=DECISION_COLUMNS)
    promos = pd.DataFrame(
        [
            {
                "promotion_id": p.id,
                "priority": p.priority,
                "cashback_bp": p.cashback_bp,
                "min_amount_minor": p.min_amount_minor,
                "groups": frozenset(p.product_groups),
                "channels": frozenset(p.sales_channels),
            }
            for p in config.promotions
            if p.start <= day <= p.end
        ]
    )
    if promos.empty:
        return pd.DataFrame(columns=DECISION_COLUMNS)
    pairs = orders.merge(promos, how="cross")
    applies = [
        g in groups and c in channels
        for g, c, groups, channels in zip(
            pairs["product_group"], pairs["sales_channel"], pairs["groups"], pairs["channels"], strict=True
        )
    ]
    pairs = pairs[np.array(applies, dtype=bool) & (pairs["amount_minor"] >= pairs["min_amount_minor"])].copy()
    if pairs.empty:
        return pd.DataFrame(columns=DECISION_COLUMNS)
    margin = pairs["product_group"].map(config.product_margin_bp).fillna(0).astype("int64")
    pairs["margin_after_bp"] = (margin - pairs["base_bp"] - pairs["cashback_bp"]).astype("int64")
    pairs["benefit_minor"] = share_bp(pairs["amount_minor"], pairs["cashback_bp"])
    pairs["keeps_floor"] = pairs["margin_after_bp"] >= config.margin_floor_bp
    pairs = pairs.sort_values(
        ["order_id", "keeps_floor", "priority", "benefit_minor", "promotion_id"],
        ascending=[True, False, True, False, True],
        kind="mergesort",
    )
    first = ~pairs.duplicated("order_id")
    pairs["chosen"] = first & pairs["keeps_floor"]
    winner = pairs[pairs["chosen"]].set_index("order_id")
    winner_id = pairs["order_id"].map(winner["promotion_id"])
    winner_priority = pairs["order_id"].map(winner["priority"])
    reasons = []
    for row, won_id, won_priority in zip(pairs.itertuples(), winner_id, winner_priority, strict=True):
        if row.chosen:
            reasons.append(f"chosen: priority {row.priority}, most favourable within the margin floor")
        elif not row.keeps_floor:
            reasons.append(
                f"breaks the margin floor: margin after {row.margin_after_bp} bp < {config.margin_floor_bp} bp"
            )
        elif row.priority > won_priority:
            reasons.append(f"lower priority ({row.priority}) than {won_id} ({won_priority})")
        else:
            reasons.append(f"less favourable than {won_id} at the same priority")
    pairs["reason"] = reasons
    pairs["decision"] = np.where(pairs["chosen"], str(Decision.CHOSEN), str(Decision.REJECTED))
    pairs["as_of"] = day
    return pairs[DECISION_COLUMNS].reset_index(drop=True)


def days_after(day: date, n: int) -> date:
    """`day` plus `n` days."""
    return day + timedelta(days=n)
