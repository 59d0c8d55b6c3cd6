"""What is new on a day (pure): the source rows to post, the entries to reverse, tiers and events.

The nightly flow reads candidates from the warehouse (rows ingested since the previous run) and
the ledger rows that concern them; the what-if and the property tests pass frames they hold.
Everything is decided from the ledger as it stood before the day, so re-posting a day decides
the same thing again.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from crm.core.contracts import OrderStatus, PaymentType
from crm.loyalty.config import LoyaltyConfig
from crm.loyalty.ledger import LOT_COLUMNS, DayInputs
from crm.loyalty.rules import (
    EVENT_COLUMNS,
    EntryKind,
    LoyaltyEvent,
    SourceKind,
    entry_ids,
    qualifying_ids,
    tier_of,
)


def _tier_at_start(tiers: pd.Series, customers: pd.Series, config: LoyaltyConfig) -> pd.Series:
    return customers.map(tiers).fillna(config.tier_names[0]).astype(object).to_numpy()


def select_day_inputs(
    day: date,
    config: LoyaltyConfig,
    *,
    orders: pd.DataFrame,
    payments: pd.DataFrame,
    customers: pd.DataFrame,
    birthdays: pd.DataFrame,
    known_entries: pd.DataFrame,
    known_qualifying: pd.DataFrame,
    members: set[int] | pd.Index,
    technical: set[int] | pd.Index,
    tiers: pd.Series,
    lots: pd.DataFrame,
    launch: bool = False,
) -> DayInputs:
    """The day's `DayInputs` from candidate source rows and the ledger before the day.

    orders: order_id, customer_id, amount_minor, product_group, sales_channel, status (as of the day);
    payments: payment_id, customer_id, amount_minor, payment_type; customers: customer_id,
    signup_channel, registered_at (new versions); birthdays: customer_id (celebrating today);
    known_entries / known_qualifying: ledger and status-account rows before the day that concern
    the candidates; members: who joined before the day; technical: internal accounts;
    tiers: customer_id -> tier at the start of the day; lots: open credits (LOT_COLUMNS);
    launch: the programme's first day (no run before it): joiners registered before it are enrolled.
    """
    technical = pd.Index(list(technical)) if not config.include_internal_accounts else pd.Index([])
    known_q = set(known_qualifying["entry_id"]) if len(known_qualifying) else set()
    known_e = set(known_entries["entry_id"]) if len(known_entries) else set()

    orders = orders[~orders["customer_id"].isin(technical)]
    order_keys = orders["order_id"].astype(str)
    posted = qualifying_ids(SourceKind.ORDER, order_keys).isin(known_q)
    returned_marked = qualifying_ids(SourceKind.ORDER_RETURN, order_keys).isin(known_q)
    to_post = orders[(orders["status"] == OrderStatus.COMPLETED) & ~posted]
    returned = orders[(orders["status"] == OrderStatus.RETURNED) & posted & ~returned_marked]
    to_post = to_post.assign(tier=_tier_at_start(tiers, to_post["customer_id"], config))

    ret_keys = set(returned["order_id"].astype(str))
    if len(known_entries) and ret_keys:
        of_returned = known_entries[
            known_entries["source_kind"].isin([SourceKind.ORDER, SourceKind.ORDER_PROMOTION])
            & known_entries["source_key"].astype(str).isin(ret_keys)
            & known_entries["kind"].isin([EntryKind.ACCRUAL, EntryKind.REDEMPTION])
        ]
        already = entry_ids(EntryKind.REVERSAL, SourceKind.ENTRY, of_returned["entry_id"]).isin(known_e)
        reversals = of_returned[~already][["entry_id", "customer_id", "kind", "amount_minor", "source_key"]]
        rq = known_qualifying[
            (known_qualifying["source_kind"] == SourceKind.ORDER)
            & known_qualifying["source_key"].astype(str).isin(ret_keys)
        ][["customer_id", "source_key", "amount_minor"]]
    else:
        reversals = DayInputs().reversals
        rq = DayInputs().returned_qualifying

    repayments = DayInputs().repayments
    if config.repayment_redemption_limit_bp:
        repayments = payments[
            payments["payment_type"].isin([PaymentType.PRINCIPAL, PaymentType.INTEREST])
            & ~payments["customer_id"].isin(technical)
        ]
        redeemed = entry_ids(EntryKind.REDEMPTION, SourceKind.REPAYMENT, repayments["payment_id"].astype(str))
        interest_posted = qualifying_ids(SourceKind.INTEREST_PAYMENT, repayments["payment_id"].astype(str))
        repayments = repayments[~redeemed.isin(known_e) & ~interest_posted.isin(known_q)]
        repayments = repayments[["payment_id", "customer_id", "amount_minor"]]
    payments = payments[(payments["payment_type"] == PaymentType.INTEREST) & ~payments["customer_id"].isin(technical)]
    payments = payments[~qualifying_ids(SourceKind.INTEREST_PAYMENT, payments["payment_id"].astype(str)).isin(known_q)]
    payments = payments.assign(tier=_tier_at_start(tiers, payments["customer_id"], config))

    members_index = pd.Index(list(members))
    joiners = customers[~customers["customer_id"].isin(members_index) & ~customers["customer_id"].isin(technical)]
    joiners = joiners.drop_duplicates("customer_id")
    if config.welcome_from is not None:
        welcome = pd.to_datetime(joiners["registered_at"]).dt.date >= config.welcome_from
    else:
        welcome = pd.Series(True, index=joiners.index)
    enrolled = (
        pd.to_datetime(joiners["registered_at"]).dt.date < day if launch else pd.Series(False, index=joiners.index)
    )
    joiners = joiners.assign(welcome=welcome.to_numpy(dtype=bool), enrolled=enrolled.to_numpy(dtype=bool))
    joiners = joiners[["customer_id", "signup_channel", "welcome", "enrolled"]]

    celebrating = birthdays[
        (birthdays["customer_id"].isin(members_index) | birthdays["customer_id"].isin(joiners["customer_id"]))
        & ~birthdays["customer_id"].isin(technical)
    ].drop_duplicates("customer_id")
    keys = celebrating["customer_id"].astype(str) + f":{day.year}"
    celebrating = celebrating[~entry_ids(EntryKind.ACCRUAL, SourceKind.BIRTHDAY, keys).isin(known_e)]

    return DayInputs(
        lots=lots[LOT_COLUMNS],
        orders=to_post[["order_id", "customer_id", "amount_minor", "product_group", "sales_channel", "tier"]],
        reversals=reversals,
        returned_qualifying=rq,
        interest=payments[["payment_id", "customer_id", "amount_minor", "tier"]],
        repayments=repayments,
        joiners=joiners,
        birthdays=celebrating[["customer_id"]],
    )


def tier_changes(
    config: LoyaltyConfig,
    qualifying: pd.DataFrame,
    downgraded: set[int] | pd.Index,
    current: pd.Series,
    joiners: pd.Series,
) -> pd.DataFrame:
    """Members whose tier differs from `current` (customer_id -> tier), and every joiner: customer_id, old, tier, rule.

    qualifying: customer_id, qualifying_minor over the window, for every member to look at.
    """
    frame = qualifying[["customer_id", "qualifying_minor"]].copy()
    missing = pd.Index(joiners).difference(pd.Index(frame["customer_id"]))
    if len(missing):
        frame = pd.concat(
            [frame, pd.DataFrame({"customer_id": missing.to_numpy(), "qualifying_minor": 0})], ignore_index=True
        )
    frame["qualifying_minor"] = frame["qualifying_minor"].fillna(0).astype("int64")
    tier, rule = tier_of(config, frame["qualifying_minor"], frame["customer_id"].isin(pd.Index(list(downgraded))))
    frame["tier"] = tier.to_numpy()
    frame["rule"] = rule.to_numpy()
    frame["old"] = frame["customer_id"].map(current)
    is_joiner = frame["customer_id"].isin(pd.Index(joiners)) & frame["old"].isna()
    frame.loc[is_joiner, "rule"] = "joined; " + frame.loc[is_joiner, "rule"]
    changed = is_joiner | (frame["old"].notna() & (frame["old"] != frame["tier"]))
    return frame.loc[changed, ["customer_id", "old", "tier", "rule"]].reset_index(drop=True)


def day_events(
    day: date,
    entries: pd.DataFrame,
    changes: pd.DataFrame,
    joiners: pd.DataFrame,
    expiring: pd.DataFrame,
) -> pd.DataFrame:
    """The day's events for campaigns: joined, tier_changed, cashback_accrued, cashback_expiring (one per member each).

    expiring: customer_id, expires_on, remaining_minor (lots due on the notice day, what is left of them).
    """
    frames = []
    if len(joiners):
        welcome = entries[(entries["source_kind"] == SourceKind.SIGNUP)].set_index("customer_id")["amount_minor"]
        frames.append(
            pd.DataFrame(
                {
                    "customer_id": joiners["customer_id"].to_numpy(),
                    "event": np.where(
                        joiners["enrolled"].astype(bool).to_numpy(),
                        str(LoyaltyEvent.ENROLLED),
                        str(LoyaltyEvent.JOINED),
                    ),
                    "detail": joiners["signup_channel"].astype(str).to_numpy(),
                    "amount_minor": joiners["customer_id"].map(welcome).to_numpy(),
                }
            )
        )
    moved = changes[changes["old"].notna()]
    if len(moved):
        frames.append(
            pd.DataFrame(
                {
                    "customer_id": moved["customer_id"].to_numpy(),
                    "event": str(LoyaltyEvent.TIER_CHANGED),
                    "detail": moved["tier"].astype(str).to_numpy(),
                    "amount_minor": None,
                }
            )
        )
    accrued = entries[(entries["kind"] == EntryKind.ACCRUAL) & (entries["amount_minor"] > 0)]
    if len(accrued):
        # The sources of the day's cashback as one sorted label per member, without a Python call per group.
        kinds = sorted(set(accrued["source_kind"]))
        bits = accrued["source_kind"].map({k: 1 << i for i, k in enumerate(kinds)})
        per = accrued.assign(bit=bits).drop_duplicates(["customer_id", "source_kind"])
        grouped = per.groupby("customer_id").agg(mask=("bit", "sum"))
        grouped["amount_minor"] = accrued.groupby("customer_id")["amount_minor"].sum()
        labels = {m: ",".join(k for i, k in enumerate(kinds) if m >> i & 1) for m in set(grouped["mask"])}
        grouped["detail"] = grouped["mask"].map(labels)
        frames.append(
            grouped.reset_index()[["customer_id", "amount_minor", "detail"]].assign(
                event=str(LoyaltyEvent.CASHBACK_ACCRUED)
            )
        )
    if len(expiring):
        soon = expiring[expiring["remaining_minor"] > 0]
        if len(soon):
            grouped = soon.groupby("customer_id").agg(
                amount_minor=("remaining_minor", "sum"), detail=("expires_on", "min")
            )
            grouped["detail"] = pd.to_datetime(grouped["detail"]).dt.strftime("%Y-%m-%d")
            frames.append(grouped.reset_index().assign(event=str(LoyaltyEvent.CASHBACK_EXPIRING)))
    if not frames:
        return pd.DataFrame(columns=EVENT_COLUMNS)
    out = pd.concat(frames, ignore_index=True)
    out["as_of"] = day
    out["amount_minor"] = pd.array(
        [None if pd.isna(v) else int(v) for v in out["amount_minor"].tolist()], dtype="Int64"
    )
    return out[EVENT_COLUMNS].sort_values(["customer_id", "event"]).reset_index(drop=True)


def qualifying_window(day: date, config: LoyaltyConfig) -> tuple[date, date]:
    """Posting days whose qualifying activity counts for the tier on `day` (both included)."""
    return day - pd.Timedelta(days=config.window_days - 1).to_pytimedelta(), day


def empty_like(columns: list[str]) -> pd.DataFrame:
    """An empty frame with object columns."""
    return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
