"""The ledger's invariants, checked on frames: the nightly flow checks the members it touched, tests check all.

1. balance = sum of entries, and equals what is left of the member's lots (allocations add up);
2. never negative: the balance at the end of every posting day, and every lot's rest;
3. redemptions never exceed what was available: every debit is covered by allocations from lots
   posted no later than it, and a redemption never uses a lot that had expired;
4. every entry is traceable: its id is the hash of its cause, its cause's kind is known, an expiry
   points at a credit of the same member, a reversal at an entry of the same member.

Each invariant concerns one member (its entries and allocations), so the members are checked a
chunk at a time and the violations merged (`InvariantCheck`): memory follows the chunk, not the
population.
"""

from __future__ import annotations

import pandas as pd

from crm.core.db import id_chunks
from crm.core.errors import Finding
from crm.loyalty.rules import EntryKind, SourceKind, entry_ids

_SOURCES = {str(s) for s in SourceKind}
_KINDS = {str(k) for k in EntryKind}


class LedgerInvariantViolated(Finding):
    """The ledger broke an invariant: the run stops and a person must look (exit 2)."""


# The violations' lines, in this order; an example is an entry id, or a customer id for the per-member ones.
MESSAGES = (
    "entry id is not the hash of its cause",
    "unknown kind or cause",
    "cause without a key",
    "expiry of no credit",
    "reversal of no entry of the member",
    "balance differs from the rest of its lots",
    "lot consumed beyond its amount",
    "negative balance at the end of a day",
    "debit not covered by its allocations",
    "allocation to an unknown lot",
    "debit allocated to a later lot",
    "redemption paid with expired cashback",
)


class InvariantCheck:
    """The ledger's invariants over members checked a chunk at a time, their violations merged.

    Every invariant concerns one member: an expiry consumes a credit of the same member, a reversal
    reverses an entry of the same member, an allocation pays a debit of a member from a lot of the
    same member (a reference to another member's entry is a violation, whether that entry is in the
    chunk or not). So a chunk needs every entry and allocation of its members, and nothing else;
    chunks come in increasing customer ids, so the merged examples are the first ones in
    (customer, entry) order whatever the chunk size.
    """

    def __init__(self, limit: int = 5) -> None:
        self.limit = limit
        self.counts: dict[str, int] = {}
        self.examples: dict[str, list] = {}

    def add(self, entries: pd.DataFrame, allocations: pd.DataFrame) -> None:
        """Check whole members: every entry and allocation of the members in `entries` (and no other member's)."""
        for what, ids in _violations(entries, allocations):
            if len(ids):
                self.counts[what] = self.counts.get(what, 0) + len(ids)
                kept = self.examples.setdefault(what, [])
                kept.extend(list(ids[: self.limit - len(kept)]))

    def lines(self) -> list[str]:
        """One line per violated invariant with its count and up to `limit` examples (empty: all hold)."""
        return [
            f"{what}: {self.counts[what]} (e.g. {', '.join(map(str, self.examples[what]))})"
            for what in MESSAGES
            if what in self.counts
        ]


def check_invariants(
    entries: pd.DataFrame, allocations: pd.DataFrame, limit: int = 5, chunk_members: int | None = None
) -> list[str]:
    """The violated invariants, one line each with up to `limit` example ids (empty: all hold).

    `chunk_members` checks that many members at a time (the same lines: see `InvariantCheck`).
    """
    check = InvariantCheck(limit)
    if entries.empty:
        return []
    for ids in id_chunks(entries["customer_id"], chunk_members):
        check.add(
            entries[entries["customer_id"].isin(ids)],
            allocations[allocations["customer_id"].isin(ids)] if len(allocations) else allocations,
        )
    return check.lines()


def _violations(entries: pd.DataFrame, allocations: pd.DataFrame) -> list[tuple[str, pd.Series | pd.Index]]:
    """(message, ids) of the members' entries and allocations, in (customer, entry) order."""
    out: list[tuple[str, pd.Series | pd.Index]] = []
    if entries.empty:
        return out
    e = entries.sort_values(["customer_id", "entry_id"], kind="mergesort").reset_index(drop=True)
    e["customer_id"] = e["customer_id"].astype("int64")
    e["amount_minor"] = e["amount_minor"].astype("int64")
    e["as_of"] = pd.to_datetime(e["as_of"])
    a = allocations.sort_values(["customer_id", "debit_entry_id", "lot_entry_id"], kind="mergesort")
    a = a.reset_index(drop=True)
    if len(a):
        a["customer_id"] = a["customer_id"].astype("int64")
        a["amount_minor"] = a["amount_minor"].astype("int64")

    def report(what: str, ids) -> None:
        out.append((what, pd.Index(ids)))

    # 4. traceable
    expected = pd.Series("", index=e.index, dtype=object)
    for (kind, source_kind), group in e.groupby(["kind", "source_kind"]):
        expected[group.index] = entry_ids(kind, source_kind, group["source_key"]).to_numpy()
    report("entry id is not the hash of its cause", e.loc[expected != e["entry_id"], "entry_id"])
    report("unknown kind or cause", e.loc[~e["kind"].isin(_KINDS) | ~e["source_kind"].isin(_SOURCES), "entry_id"])
    report("cause without a key", e.loc[e["source_key"].isna() | (e["source_key"].astype(str) == ""), "entry_id"])
    by_id = e.set_index("entry_id")
    expiry = e[e["kind"] == EntryKind.EXPIRY]
    target = expiry["source_key"].map(by_id["amount_minor"])
    target_owner = expiry["source_key"].map(by_id["customer_id"])
    report(
        "expiry of no credit",
        expiry.loc[target.isna() | (target <= 0) | (target_owner != expiry["customer_id"]), "entry_id"],
    )
    reversal = e[e["kind"] == EntryKind.REVERSAL]
    owner = reversal["source_key"].map(by_id["customer_id"])
    report("reversal of no entry of the member", reversal.loc[owner != reversal["customer_id"], "entry_id"])

    # Allocations with their lot and debit entries of the same member (another member's entry: none).
    entry_cols = ["customer_id", "entry_id", "as_of", "expires_on", "kind", "amount_minor"]
    joined = (
        a.drop(columns=["as_of"])
        .merge(
            e[entry_cols].rename(columns={"entry_id": "lot_entry_id", "amount_minor": "lot_amount"}),
            on=["customer_id", "lot_entry_id"],
            how="left",
        )
        .merge(
            e[["customer_id", "entry_id", "as_of", "kind"]].rename(
                columns={"entry_id": "debit_entry_id", "as_of": "debit_as_of", "kind": "debit_kind"}
            ),
            on=["customer_id", "debit_entry_id"],
            how="left",
        )
        if len(a)
        else None
    )

    # 1. balance = sum of entries = the lots' rest
    credits = e[e["amount_minor"] > 0]
    used = (
        joined[joined["as_of"].notna()].groupby("lot_entry_id")["amount_minor"].sum()
        if joined is not None
        else pd.Series(dtype="int64")
    )
    rest = credits["amount_minor"] - credits["entry_id"].map(used).fillna(0).astype("int64")
    balance = e.groupby("customer_id")["amount_minor"].sum()
    lots_rest = rest.groupby(credits["customer_id"]).sum().reindex(balance.index, fill_value=0)
    report("balance differs from the rest of its lots", balance.index[balance != lots_rest])

    # 2. never negative
    report("lot consumed beyond its amount", credits.loc[rest < 0, "entry_id"])
    daily = e.groupby(["customer_id", "as_of"])["amount_minor"].sum().groupby(level=0).cumsum()
    report("negative balance at the end of a day", daily[daily < 0].index.get_level_values(0).unique())

    # 3. debits covered by earlier, unexpired lots
    debits = e[e["amount_minor"] < 0]
    covered = (
        joined[joined["debit_as_of"].notna()].groupby("debit_entry_id")["amount_minor"].sum()
        if joined is not None
        else pd.Series(dtype="int64")
    )
    report(
        "debit not covered by its allocations",
        debits.loc[debits["entry_id"].map(covered).fillna(0) != -debits["amount_minor"], "entry_id"],
    )
    if joined is not None:
        report("allocation to an unknown lot", joined.loc[joined["as_of"].isna(), "debit_entry_id"])
        report(
            "debit allocated to a later lot",
            joined.loc[joined["as_of"] > joined["debit_as_of"], "debit_entry_id"],
        )
        expires = pd.to_datetime(joined["expires_on"])
        late = (joined["debit_kind"] == EntryKind.REDEMPTION) & expires.notna() & (expires <= joined["debit_as_of"])
        report("redemption paid with expired cashback", joined.loc[late, "debit_entry_id"])
    return out
