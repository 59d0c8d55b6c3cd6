"""The ledger's invariants, checked on frames: the nightly flow checks the members it touched, tests check all.

1. balance = sum of entries, and equals what is left of the member's lots (allocations add up);
2. never negative: the balance at the end of every posting day, and every lot's rest;
3. redemptions never exceed what was available: every debit is covered by allocations from lots
   posted no later than it, and a redemption never uses a lot that had expired;
4. every entry is traceable: its id is the hash of its cause, its cause's kind is known, an expiry
   points at a credit, a reversal at an entry of the same member.
"""

from __future__ import annotations

import pandas as pd

from crm.core.errors import Finding
from crm.loyalty.rules import EntryKind, SourceKind, entry_ids

_SOURCES = {str(s) for s in SourceKind}
_KINDS = {str(k) for k in EntryKind}


class LedgerInvariantViolated(Finding):
    """The ledger broke an invariant: the run stops and a person must look (exit 2)."""


def check_invariants(entries: pd.DataFrame, allocations: pd.DataFrame, limit: int = 5) -> list[str]:
    """The violated invariants, one line each with up to `limit` example entry ids (empty: all hold)."""
    problems: list[str] = []
    if entries.empty:
        return problems
    e = entries.copy()
    e["amount_minor"] = e["amount_minor"].astype("int64")
    e["as_of"] = pd.to_datetime(e["as_of"])
    a = allocations.copy()
    a["amount_minor"] = a["amount_minor"].astype("int64") if len(a) else a["amount_minor"]

    def report(what: str, ids) -> None:
        ids = list(ids)
        if ids:
            problems.append(f"{what}: {len(ids)} (e.g. {', '.join(map(str, ids[:limit]))})")

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
    report("expiry of no credit", expiry.loc[target.isna() | (target <= 0), "entry_id"])
    reversal = e[e["kind"] == EntryKind.REVERSAL]
    owner = reversal["source_key"].map(by_id["customer_id"])
    report("reversal of no entry of the member", reversal.loc[owner != reversal["customer_id"], "entry_id"])

    # 1. balance = sum of entries = the lots' rest
    credits = e[e["amount_minor"] > 0]
    used = a.groupby("lot_entry_id")["amount_minor"].sum() if len(a) else pd.Series(dtype="int64")
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
    covered = a.groupby("debit_entry_id")["amount_minor"].sum() if len(a) else pd.Series(dtype="int64")
    report(
        "debit not covered by its allocations",
        debits.loc[debits["entry_id"].map(covered).fillna(0) != -debits["amount_minor"], "entry_id"],
    )
    if len(a):
        joined = (
            a.drop(columns=["as_of"])
            .merge(by_id[["as_of", "expires_on", "kind"]], left_on="lot_entry_id", right_index=True, how="left")
            .merge(
                by_id[["as_of", "kind"]].rename(columns={"as_of": "debit_as_of", "kind": "debit_kind"}),
                left_on="debit_entry_id",
                right_index=True,
                how="left",
            )
        )
        report("allocation to an unknown lot", joined.loc[joined["as_of"].isna(), "debit_entry_id"])
        report(
            "debit allocated to a later lot",
            joined.loc[joined["as_of"] > joined["debit_as_of"], "debit_entry_id"],
        )
        expires = pd.to_datetime(joined["expires_on"])
        late = (joined["debit_kind"] == EntryKind.REDEMPTION) & expires.notna() & (expires <= joined["debit_as_of"])
        report("redemption paid with expired cashback", joined.loc[late, "debit_entry_id"])
    return problems
