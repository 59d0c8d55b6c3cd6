"""The ledger's logic for one business day, on frames: expiry, redemptions, reversals, accruals, FIFO allocation.

Pure (no database): the nightly flow feeds it what it read from the warehouse, the what-if feeds
it the same, and the property tests drive it with random event sequences. Everything it returns
is keyed deterministically by its cause, so posting a day again adds nothing (the tables ignore
known keys), and nothing posted is ever changed: a returned order is a reversal, never an edit.

Order within a day: lots due expire first; purchases redeem the balance (up to the limit) before
anything of the day is credited; returned orders refund their redemption, then claw back their
cashback (never more than the balance: the rest stays with the member); then the day's accruals
and bonuses. Debits consume lots first in, first out (posting day, then entry id).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import numpy as np
import pandas as pd

from crm.loyalty.config import LoyaltyConfig
from crm.loyalty.rules import (
    ALLOCATION_COLUMNS,
    DECISION_COLUMNS,
    ENTRY_COLUMNS,
    QUALIFYING_COLUMNS,
    Decision,
    EntryKind,
    SourceKind,
    arbitrate,
    days_after,
    entry_ids,
    qualifying_ids,
    share_bp,
    tier_promotion_bp,
    tier_rates,
)

LOT_COLUMNS = ["customer_id", "entry_id", "as_of", "expires_on", "remaining_minor"]


def _frame(columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})


@dataclass
class DayInputs:
    """What posting a day needs, already restricted to what is new on the day (see `select_day_inputs`).

    - lots: open credits before the day (LOT_COLUMNS), at least of every customer with a debit today
      and every lot due to expire by the day;
    - orders: purchases to post (order_id, customer_id, amount_minor, product_group, sales_channel, tier);
    - reversals: entries of returned orders not yet reversed (entry_id, customer_id, kind, amount_minor, source_key);
    - returned_qualifying: status-account entries of returned orders (customer_id, source_key, amount_minor);
    - interest: interest payments to post (payment_id, customer_id, amount_minor, tier);
    - repayments: loan payments (principal and interest) cashback may pay part of (payment_id, customer_id,
      amount_minor), when `repayment_redemption_limit_bp` > 0;
    - joiners: new members (customer_id, signup_channel, welcome: bool, enrolled: bool: registered before the
      programme's first day, enrolled by it rather than joining);
    - birthdays: members celebrating today (customer_id).
    """

    lots: pd.DataFrame = field(default_factory=lambda: _frame(LOT_COLUMNS))
    orders: pd.DataFrame = field(
        default_factory=lambda: _frame(
            ["order_id", "customer_id", "amount_minor", "product_group", "sales_channel", "tier"]
        )
    )
    reversals: pd.DataFrame = field(
        default_factory=lambda: _frame(["entry_id", "customer_id", "kind", "amount_minor", "source_key"])
    )
    returned_qualifying: pd.DataFrame = field(
        default_factory=lambda: _frame(["customer_id", "source_key", "amount_minor"])
    )
    interest: pd.DataFrame = field(
        default_factory=lambda: _frame(["payment_id", "customer_id", "amount_minor", "tier"])
    )
    repayments: pd.DataFrame = field(default_factory=lambda: _frame(["payment_id", "customer_id", "amount_minor"]))
    joiners: pd.DataFrame = field(
        default_factory=lambda: _frame(["customer_id", "signup_channel", "welcome", "enrolled"])
    )
    birthdays: pd.DataFrame = field(default_factory=lambda: _frame(["customer_id"]))


@dataclass
class DayPosting:
    """What a day adds: ledger entries, their FIFO allocations, status-account entries, promotion decisions."""

    entries: pd.DataFrame
    allocations: pd.DataFrame
    qualifying: pd.DataFrame
    decisions: pd.DataFrame
    lots_after: pd.DataFrame


def _entries(
    day: date,
    customer_id,
    kind: str,
    amount,
    source_kind: str,
    source_key: pd.Series,
    expires_on: date | None,
    rule,
) -> pd.DataFrame:
    source_key = pd.Series(source_key).astype(str).reset_index(drop=True)
    n = len(source_key)
    return pd.DataFrame(
        {
            "entry_id": entry_ids(kind, source_kind, source_key).to_numpy(),
            "customer_id": np.asarray(customer_id, dtype="int64"),
            "as_of": [day] * n,
            "kind": [str(kind)] * n,
            "amount_minor": np.asarray(amount, dtype="int64"),
            "source_kind": [str(source_kind)] * n,
            "source_key": source_key.to_numpy(dtype=object),
            "expires_on": [expires_on] * n,
            "rule": np.broadcast_to(np.asarray(rule, dtype=object), (n,)).copy() if n else [],
        },
        columns=ENTRY_COLUMNS,
    )


def greedy_take(customer_id: pd.Series, wanted: pd.Series, available: pd.Series) -> np.ndarray:
    """Per customer, in row order, how much of each `wanted` is granted from one `available` pot (never below 0)."""
    wanted = wanted.astype("int64").to_numpy()
    cum = pd.Series(wanted).groupby(customer_id.to_numpy()).cumsum().to_numpy()
    pot = np.maximum(available.astype("int64").to_numpy(), 0)
    return np.minimum(pot, cum) - np.minimum(pot, cum - wanted)


def allocate_fifo(lots: pd.DataFrame, debits: pd.DataFrame, day: date) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Consume lots first in, first out for `debits` (customer_id, entry_id, amount_minor > 0, in order).

    Returns the allocations and the lots with their new remaining amounts (emptied lots dropped).
    A debit larger than the customer's lots is a bug upstream: raises.
    """
    if debits.empty:
        return _frame(ALLOCATION_COLUMNS), lots
    lots = lots.sort_values(["customer_id", "as_of", "entry_id"], kind="mergesort").reset_index(drop=True)
    l_end = lots.groupby("customer_id")["remaining_minor"].cumsum().astype("int64")
    lots = lots.assign(l_end=l_end, l_start=l_end - lots["remaining_minor"].astype("int64"))
    debits = debits.reset_index(drop=True)
    d_end = debits.groupby("customer_id")["amount_minor"].cumsum().astype("int64")
    debits = debits.assign(d_end=d_end, d_start=d_end - debits["amount_minor"].astype("int64"))
    pairs = debits[["customer_id", "entry_id", "d_start", "d_end"]].merge(
        lots[["customer_id", "entry_id", "l_start", "l_end"]], on="customer_id", suffixes=("_debit", "_lot")
    )
    overlap = np.minimum(pairs["d_end"], pairs["l_end"]) - np.maximum(pairs["d_start"], pairs["l_start"])
    pairs = pairs.assign(amount_minor=overlap.astype("int64"))
    pairs = pairs[pairs["amount_minor"] > 0]
    covered = pairs.groupby("entry_id_debit")["amount_minor"].sum()
    short = debits.set_index("entry_id")["amount_minor"].sub(covered, fill_value=0)
    if (short > 0).any():
        raise ValueError(f"{int((short > 0).sum())} debit(s) exceed the customer's lots on {day}")
    allocations = pd.DataFrame(
        {
            "debit_entry_id": pairs["entry_id_debit"].to_numpy(),
            "lot_entry_id": pairs["entry_id_lot"].to_numpy(),
            "customer_id": pairs["customer_id"].astype("int64").to_numpy(),
            "as_of": [day] * len(pairs),
            "amount_minor": pairs["amount_minor"].to_numpy(),
        },
        columns=ALLOCATION_COLUMNS,
    )
    used = allocations.groupby("lot_entry_id")["amount_minor"].sum()
    remaining = lots["remaining_minor"].astype("int64") - lots["entry_id"].map(used).fillna(0).astype("int64")
    lots = lots.assign(remaining_minor=remaining)[LOT_COLUMNS]
    return allocations, lots[lots["remaining_minor"] > 0].reset_index(drop=True)


def _balances(lots: pd.DataFrame, customers: pd.Series) -> pd.Series:
    sums = lots.groupby("customer_id")["remaining_minor"].sum() if len(lots) else pd.Series(dtype="int64")
    return customers.map(sums).fillna(0).astype("int64")


def post_day(day: date, inputs: DayInputs, config: LoyaltyConfig) -> DayPosting:
    """Post one business day: every ledger entry, allocation, status-account entry and promotion decision it causes."""
    entries: list[pd.DataFrame] = []
    allocations: list[pd.DataFrame] = []
    lots = inputs.lots[LOT_COLUMNS].copy()
    lots["remaining_minor"] = lots["remaining_minor"].astype("int64")
    lots = lots[lots["remaining_minor"] > 0]
    standard_expiry = days_after(day, config.expiry_days)
    promo_expiry = days_after(day, config.promo_expiry_days)

    # 1. Expiry: what is left of each lot due by today (a lot's own rest, not FIFO).
    due = lots[pd.to_datetime(lots["expires_on"]).dt.date <= day]
    if len(due):
        expired = _entries(
            day,
            due["customer_id"],
            EntryKind.EXPIRY,
            -due["remaining_minor"],
            SourceKind.LOT,
            due["entry_id"],
            None,
            f"expired after {config.expiry_days} days (promotional {config.promo_expiry_days})",
        )
        entries.append(expired)
        allocations.append(
            pd.DataFrame(
                {
                    "debit_entry_id": expired["entry_id"].to_numpy(),
                    "lot_entry_id": due["entry_id"].to_numpy(),
                    "customer_id": due["customer_id"].astype("int64").to_numpy(),
                    "as_of": [day] * len(due),
                    "amount_minor": due["remaining_minor"].to_numpy(),
                },
                columns=ALLOCATION_COLUMNS,
            )
        )
        lots = lots.drop(index=due.index)

    # 2. Redemptions at checkout: the balance pays up to the limit of each purchase, in order.
    orders = inputs.orders.sort_values(["customer_id", "order_id"], kind="mergesort").reset_index(drop=True)
    orders["amount_minor"] = orders["amount_minor"].astype("int64")
    redeemed = np.zeros(len(orders), dtype="int64")
    if config.redeem_at_checkout and len(orders):
        redeemed, lots = _redeem(
            day, orders, "order_id", SourceKind.ORDER, config.redemption_limit_bp,
            f"paid with cashback, at most {config.redemption_limit_bp / 100:g}% of the purchase",
            lots, entries, allocations,
        )  # fmt: skip

    # 2b. Loan repayments: the balance pays up to its limit of each payment (after the day's purchases).
    repayments = inputs.repayments.sort_values(["customer_id", "payment_id"], kind="mergesort").reset_index(drop=True)
    repaid = pd.Series(dtype="int64")
    if config.repayment_redemption_limit_bp and len(repayments):
        taken, lots = _redeem(
            day, repayments, "payment_id", SourceKind.REPAYMENT, config.repayment_redemption_limit_bp,
            f"loan repayment paid with cashback, at most {config.repayment_redemption_limit_bp / 100:g}% of it",
            lots, entries, allocations,
        )  # fmt: skip
        repaid = pd.Series(taken, index=repayments["payment_id"].to_numpy())

    # 3. Returned orders: refund their redemption, then claw back their cashback (up to the balance).
    rev = inputs.reversals.sort_values(["customer_id", "entry_id"], kind="mergesort").reset_index(drop=True)
    rev["amount_minor"] = rev["amount_minor"].astype("int64")
    refunds = rev[rev["amount_minor"] < 0]
    if len(refunds):
        refund = _entries(
            day,
            refunds["customer_id"],
            EntryKind.REVERSAL,
            -refunds["amount_minor"],
            SourceKind.ENTRY,
            refunds["entry_id"],
            standard_expiry,
            "order returned: cashback paid with it refunded",
        )
        entries.append(refund)
        lots = pd.concat(
            [lots, refund.rename(columns={"amount_minor": "remaining_minor"})[LOT_COLUMNS]], ignore_index=True
        )
    credits = rev[rev["amount_minor"] > 0].reset_index(drop=True)
    if len(credits):
        claw = greedy_take(credits["customer_id"], credits["amount_minor"], _balances(lots, credits["customer_id"]))
        rule = np.where(
            claw < credits["amount_minor"].to_numpy(),
            "order returned: cashback clawed back up to the balance",
            "order returned: cashback clawed back",
        )
        clawback = _entries(
            day,
            credits["customer_id"],
            EntryKind.REVERSAL,
            -claw,
            SourceKind.ENTRY,
            credits["entry_id"],
            None,
            rule,
        )
        entries.append(clawback)
        debits = clawback[clawback["amount_minor"] < 0]
        if len(debits):
            allocated, lots = allocate_fifo(lots, debits.assign(amount_minor=-debits["amount_minor"]), day)
            allocations.append(allocated)

    # 4. Accruals and bonuses.
    decisions = pd.DataFrame(columns=DECISION_COLUMNS)
    qualifying: list[pd.DataFrame] = []
    multiplier = tier_promotion_bp(config, day)
    if len(orders):
        base = orders["amount_minor"].to_numpy() - redeemed
        rates = tier_rates(config, orders["tier"], "purchase")
        cashback = share_bp(base, rates)
        rule = [f"purchase {r / 100:g}% ({t})" for r, t in zip(rates, orders["tier"].fillna(""), strict=True)]
        accrual = _entries(
            day,
            orders["customer_id"],
            EntryKind.ACCRUAL,
            cashback,
            SourceKind.ORDER,
            orders["order_id"],
            standard_expiry,
            rule,
        )
        entries.append(accrual[accrual["amount_minor"] > 0])
        priced = orders.assign(amount_minor=base, base_bp=rates)
        decisions = arbitrate(priced, config, day)
        chosen = decisions[decisions["decision"] == Decision.CHOSEN.value]
        if len(chosen):
            promo = chosen.merge(orders[["order_id"]], on="order_id")
            promoted = _entries(
                day,
                promo["customer_id"],
                EntryKind.ACCRUAL,
                promo["benefit_minor"],
                SourceKind.ORDER_PROMOTION,
                promo["order_id"],
                promo_expiry,
                "promotion " + promo["promotion_id"].astype(str),
            )
            entries.append(promoted[promoted["amount_minor"] > 0])
        qualifying.append(
            _qualifying(
                day,
                orders["customer_id"],
                share_bp(orders["amount_minor"], multiplier),
                SourceKind.ORDER,
                orders["order_id"],
            )
        )
    if len(inputs.returned_qualifying):
        rq = inputs.returned_qualifying
        qualifying.append(
            _qualifying(
                day, rq["customer_id"], -rq["amount_minor"].astype("int64"), SourceKind.ORDER_RETURN, rq["source_key"]
            )
        )
    interest = inputs.interest
    if len(interest):
        rates = tier_rates(config, interest["tier"], "interest")
        cash = interest["amount_minor"].astype("int64") - interest["payment_id"].map(repaid).fillna(0).astype("int64")
        cashback = share_bp(cash, rates)  # on the part paid in cash, like a purchase
        rule = [f"interest paid {r / 100:g}% ({t})" for r, t in zip(rates, interest["tier"].fillna(""), strict=True)]
        accrual = _entries(
            day,
            interest["customer_id"],
            EntryKind.ACCRUAL,
            cashback,
            SourceKind.INTEREST_PAYMENT,
            interest["payment_id"],
            standard_expiry,
            rule,
        )
        entries.append(accrual[accrual["amount_minor"] > 0])
        qualifying.append(
            _qualifying(
                day,
                interest["customer_id"],
                share_bp(interest["amount_minor"], multiplier),
                SourceKind.INTEREST_PAYMENT,
                interest["payment_id"],
            )
        )
    joiners = inputs.joiners
    if len(joiners):
        eligible = joiners[joiners["welcome"].astype(bool)]
        bonus = eligible["signup_channel"].map(config.welcome_bonus_minor).fillna(0).astype("int64")
        welcome = _entries(
            day,
            eligible["customer_id"],
            EntryKind.ACCRUAL,
            bonus,
            SourceKind.SIGNUP,
            eligible["customer_id"],
            standard_expiry,
            "welcome bonus " + eligible["signup_channel"].astype(str),
        )
        entries.append(welcome[welcome["amount_minor"] > 0])
    if len(inputs.birthdays) and config.birthday_bonus_minor > 0:
        b = inputs.birthdays
        entries.append(
            _entries(
                day,
                b["customer_id"],
                EntryKind.ACCRUAL,
                np.full(len(b), config.birthday_bonus_minor),
                SourceKind.BIRTHDAY,
                b["customer_id"].astype(str) + f":{day.year}",
                promo_expiry,
                f"birthday bonus {day.year}",
            )
        )

    out = (
        pd.concat([e for e in entries if len(e)], ignore_index=True)
        if any(len(e) for e in entries)
        else _frame(ENTRY_COLUMNS)
    )
    out = out[out["amount_minor"] != 0].reset_index(drop=True)
    new_credits = out[(out["amount_minor"] > 0) & ~out["entry_id"].isin(lots["entry_id"])]
    lots = pd.concat(
        [lots, new_credits.rename(columns={"amount_minor": "remaining_minor"})[LOT_COLUMNS]], ignore_index=True
    )
    allocs = [a for a in allocations if len(a)]
    quals = [q for q in qualifying if len(q)]
    return DayPosting(
        entries=out,
        allocations=pd.concat(allocs, ignore_index=True) if allocs else _frame(ALLOCATION_COLUMNS),
        qualifying=pd.concat(quals, ignore_index=True) if quals else _frame(QUALIFYING_COLUMNS),
        decisions=decisions,
        lots_after=lots,
    )


def _qualifying(day: date, customer_id, amount, source_kind: str, source_key) -> pd.DataFrame:
    source_key = pd.Series(source_key).astype(str).reset_index(drop=True)
    return pd.DataFrame(
        {
            "entry_id": qualifying_ids(source_kind, source_key).to_numpy(),
            "customer_id": np.asarray(customer_id, dtype="int64"),
            "as_of": [day] * len(source_key),
            "source_kind": [str(source_kind)] * len(source_key),
            "source_key": source_key.to_numpy(dtype=object),
            "amount_minor": np.asarray(amount, dtype="int64"),
        },
        columns=QUALIFYING_COLUMNS,
    )


def _redeem(day, payments, key, source, limit_bp, reason, lots, entries, allocations):
    """The balance pays up to `limit_bp` of each payment (sorted by customer), first in, first out.

    Appends the redemption entries and their allocations; returns what each payment took and the lots left.
    """
    amounts = payments["amount_minor"].astype("int64")
    limit = pd.Series(share_bp(amounts, limit_bp))
    taken = greedy_take(payments["customer_id"], limit, _balances(lots, payments["customer_id"]))
    take = taken > 0
    if take.any():
        redemption = _entries(
            day, payments.loc[take, "customer_id"], EntryKind.REDEMPTION, -taken[take], source,
            payments.loc[take, key], None, reason,
        )  # fmt: skip
        entries.append(redemption)
        debits = redemption.assign(amount_minor=-redemption["amount_minor"])
        allocated, lots = allocate_fifo(lots, debits, day)
        allocations.append(allocated)
    return taken, lots
