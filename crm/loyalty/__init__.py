"""Loyalty: the append-only cashback ledger, tiers, promotion arbitration (issue: loyalty)."""
