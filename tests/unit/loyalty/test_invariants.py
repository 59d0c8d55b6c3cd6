"""The invariant check in member chunks says exactly what the check of everyone at once says."""

from __future__ import annotations

import functools

import pandas as pd
import pytest

from crm.loyalty import check_invariants
from crm.loyalty.rules import EntryKind, SourceKind, entry_id
from tests.unit.loyalty.test_rules import day, joined, order


@functools.cache
def _programme():
    p = joined(*[(c, "online" if c % 2 else "offline") for c in range(1, 7)])
    p.run_day(day(1), orders=pd.concat([order(10 + c, c, 20_000 * c) for c in range(1, 7)]))
    p.run_day(day(10))  # the rest of the welcome bonuses expires
    return p


def _clean_ledger():
    """Six members with accruals, redemptions and expiries (the production engine, in memory)."""
    return _programme().entries.copy(), _programme().allocations.copy()


def _entry(customer_id, kind, amount, source_kind, source_key, as_of=day(12), expires_on=None, entry=None):
    return {
        "entry_id": entry or entry_id(kind, source_kind, source_key),
        "customer_id": customer_id,
        "as_of": as_of,
        "kind": str(kind),
        "amount_minor": amount,
        "source_kind": str(source_kind),
        "source_key": str(source_key),
        "expires_on": expires_on,
        "rule": "hand-built",
    }


def _broken_ledger():
    """The clean ledger with violations spread over members 1, 2, 4, 5 and 6 (member 3 stays clean)."""
    e, a = _clean_ledger()
    credit_of_1 = e[(e["customer_id"] == 1) & (e["source_kind"] == "order")]["entry_id"].iloc[0]  # not expired
    rows = [
        _entry(2, EntryKind.REDEMPTION, -900_000, SourceKind.ORDER, "90"),  # more than the balance, unallocated
        _entry(4, EntryKind.EXPIRY, -10, SourceKind.LOT, credit_of_1),  # another member's credit
        _entry(5, EntryKind.REVERSAL, -10, SourceKind.ENTRY, credit_of_1),  # another member's entry
        _entry(6, EntryKind.ACCRUAL, 500, SourceKind.ORDER, "96", entry="0" * 32),  # not the hash of its cause
        _entry(6, EntryKind.ACCRUAL, 700, "lottery", "97"),  # an unknown cause
    ]
    expiry_4 = rows[1]["entry_id"]
    allocations = pd.DataFrame(
        [
            {
                "debit_entry_id": expiry_4,
                "lot_entry_id": credit_of_1,
                "customer_id": 4,
                "as_of": day(12),
                "amount_minor": 10,
            }
        ]
    )
    return pd.concat([e, pd.DataFrame(rows)], ignore_index=True), pd.concat([a, allocations], ignore_index=True)


@pytest.mark.parametrize("chunk", [1, 2, 4])
def test_the_check_in_member_chunks_reports_the_same_violations_counts_and_examples(chunk):
    entries, allocations = _broken_ledger()
    whole = check_invariants(entries, allocations)
    whats = [line.split(":")[0] for line in whole]
    assert whats == [
        "entry id is not the hash of its cause",
        "unknown kind or cause",
        "expiry of no credit",
        "reversal of no entry of the member",
        "balance differs from the rest of its lots",
        "negative balance at the end of a day",
        "debit not covered by its allocations",
        "allocation to an unknown lot",
    ]
    assert "balance differs from the rest of its lots: 3 (e.g. 2, 4, 5)" in whole  # in three chunks of 1
    assert check_invariants(entries, allocations, chunk_members=chunk) == whole
    assert check_invariants(entries, allocations, limit=2, chunk_members=chunk) == check_invariants(
        entries, allocations, limit=2
    )
    assert "balance differs from the rest of its lots: 3 (e.g. 2, 4)" in check_invariants(entries, allocations, limit=2)


@pytest.mark.parametrize("chunk", [1, 2])
def test_a_clean_ledger_checked_in_member_chunks_has_no_violation(chunk):
    entries, allocations = _clean_ledger()
    assert {"accrual", "redemption", "expiry"} <= set(entries["kind"])
    assert check_invariants(entries, allocations) == []
    assert check_invariants(entries, allocations, chunk_members=chunk) == []
