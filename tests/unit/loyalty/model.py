"""An in-memory loyalty programme: the same pure functions as the nightly flow, with the tables as frames.

The property tests drive it with random sequences of source events (orders, returns, interest,
sign-ups, birthdays), late deliveries and re-runs of past days.
"""

from __future__ import annotations

from datetime import date

import pandas as pd

from crm.loyalty import (
    ALLOCATION_COLUMNS,
    ENTRY_COLUMNS,
    LOT_COLUMNS,
    QUALIFYING_COLUMNS,
    LoyaltyConfig,
    day_events,
    empty_like,
    post_day,
    qualifying_window,
    select_day_inputs,
    tier_changes,
)


def _insert_ignore(table: pd.DataFrame, rows: pd.DataFrame, key: list[str]) -> pd.DataFrame:
    if rows.empty:
        return table
    rows = rows[table.columns] if len(table.columns) else rows
    both = pd.concat([table, rows], ignore_index=True)
    return both[~both.duplicated(key, keep="first")].reset_index(drop=True)


class MemoryProgramme:
    """The ledger, allocations, status account, tiers and events of a programme, in memory."""

    def __init__(self, config: LoyaltyConfig) -> None:
        self.config = config
        self.entries = empty_like(ENTRY_COLUMNS)
        self.allocations = empty_like(ALLOCATION_COLUMNS)
        self.qualifying = empty_like(QUALIFYING_COLUMNS)
        self.tiers: dict[int, list[tuple[date, str, str]]] = {}
        self.events = pd.DataFrame()
        self.last_day: date | None = None

    def lots_before(self, day: date) -> pd.DataFrame:
        """Open credits before `day`, with what is left of them."""
        e = self.entries[pd.to_datetime(self.entries["as_of"]).dt.date < day] if len(self.entries) else self.entries
        credits = e[e["amount_minor"].astype("int64") > 0] if len(e) else e
        if credits.empty:
            return empty_like(LOT_COLUMNS)
        a = self.allocations
        a = a[pd.to_datetime(a["as_of"]).dt.date < day] if len(a) else a
        used = a.groupby("lot_entry_id")["amount_minor"].sum() if len(a) else pd.Series(dtype="int64")
        rest = credits["amount_minor"].astype("int64") - credits["entry_id"].map(used).fillna(0).astype("int64")
        lots = credits.assign(remaining_minor=rest)
        return lots[lots["remaining_minor"] > 0][LOT_COLUMNS].reset_index(drop=True)

    def tier_on(self, customer_id: int, day: date) -> str | None:
        """The member's tier valid on `day` (None before joining)."""
        found = None
        for valid_from, tier, _ in self.tiers.get(customer_id, []):
            if valid_from <= day:
                found = tier
        return found

    def balance(self, customer_id: int | None = None) -> int:
        """Sum of entries (of one member, or of all)."""
        e = self.entries
        if customer_id is not None:
            e = e[e["customer_id"] == customer_id]
        return int(e["amount_minor"].astype("int64").sum()) if len(e) else 0

    def run_day(
        self,
        day: date,
        *,
        orders: pd.DataFrame | None = None,
        payments: pd.DataFrame | None = None,
        customers: pd.DataFrame | None = None,
        birth_dates: pd.DataFrame | None = None,
        downgraded: set[int] = frozenset(),
    ):
        """Post the day from the rows newly visible on it (orders as they stand on the day)."""
        from crm.loyalty import has_birthday

        orders = (
            orders
            if orders is not None
            else pd.DataFrame(
                columns=["order_id", "customer_id", "amount_minor", "product_group", "sales_channel", "status"]
            )
        )
        payments = (
            payments
            if payments is not None
            else pd.DataFrame(columns=["payment_id", "customer_id", "amount_minor", "payment_type"])
        )
        customers = (
            customers
            if customers is not None
            else pd.DataFrame(columns=["customer_id", "signup_channel", "registered_at"])
        )
        before = pd.to_datetime(self.entries["as_of"]).dt.date < day if len(self.entries) else []
        known_entries = self.entries[before] if len(self.entries) else self.entries
        qb = pd.to_datetime(self.qualifying["as_of"]).dt.date < day if len(self.qualifying) else []
        known_q = self.qualifying[qb] if len(self.qualifying) else self.qualifying
        members = {c for c in self.tiers if self.tier_on(c, day - pd.Timedelta(days=1).to_pytimedelta())}
        if birth_dates is not None and len(birth_dates):
            celebrating = birth_dates[has_birthday(birth_dates["birth_date"], day, self.config.leap_birthday_on)]
        else:
            celebrating = pd.DataFrame({"customer_id": pd.Series(dtype="int64")})
        tiers = pd.Series(
            {c: self.tier_on(c, day - pd.Timedelta(days=1).to_pytimedelta()) for c in members}, dtype=object
        )
        inputs = select_day_inputs(
            day,
            self.config,
            orders=orders,
            payments=payments,
            customers=customers,
            birthdays=celebrating[["customer_id"]],
            known_entries=known_entries,
            known_qualifying=known_q,
            members=members,
            technical=set(),
            tiers=tiers,
            lots=self.lots_before(day),
        )
        posting = post_day(day, inputs, self.config)
        self.entries = _insert_ignore(self.entries, posting.entries, ["entry_id"])
        self.allocations = _insert_ignore(self.allocations, posting.allocations, ["debit_entry_id", "lot_entry_id"])
        self.qualifying = _insert_ignore(self.qualifying, posting.qualifying, ["entry_id"])

        first, last = qualifying_window(day, self.config)
        q = self.qualifying
        in_window = q[(pd.to_datetime(q["as_of"]).dt.date >= first) & (pd.to_datetime(q["as_of"]).dt.date <= last)]
        sums = in_window.groupby("customer_id")["amount_minor"].sum().rename("qualifying_minor").reset_index()
        look = pd.Index(sorted(members | set(inputs.joiners["customer_id"])))
        sums = sums[sums["customer_id"].isin(look)]
        sums = pd.concat(
            [sums, pd.DataFrame({"customer_id": look.difference(pd.Index(sums["customer_id"])), "qualifying_minor": 0})]
        )
        current = pd.Series(
            {c: self.tier_on(c, day - pd.Timedelta(days=1).to_pytimedelta()) for c in members}, dtype=object
        )
        changes = tier_changes(self.config, sums, downgraded, current, inputs.joiners["customer_id"])
        if self.last_day is None or day > self.last_day:
            for row in changes.itertuples():
                self.tiers.setdefault(int(row.customer_id), []).append((day, row.tier, row.rule))
            self.last_day = day
        events = day_events(day, posting.entries, changes, inputs.joiners, empty_like(LOT_COLUMNS))
        self.events = (
            _insert_ignore(self.events, events, ["as_of", "customer_id", "event"]) if len(self.events) else events
        )
        return posting
