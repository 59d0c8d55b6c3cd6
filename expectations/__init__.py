"""Great Expectations suites of the CRM warehouse, defined in Python (one per `stg_` table and
one over the day's ingestion bookkeeping).

Each suite validates the **day's batch** inside the database: a query asset selecting the
rows ingested on `as_of`, which GX materialises once as a temporary table, so the work is
proportional to the day and never loads a history table into memory. Every expectation
carries `meta={"severity": "critical" | "warning", "rule": <name>}`.

This package's `__init__` does not import Great Expectations; the suite modules do, and are
imported only when suites are built (inside the quality task).
"""

from __future__ import annotations

from crm.core.contracts import ENTITIES
from crm.quality import SuiteContext, SuiteSpec

__all__ = ["INGESTION_SUITE", "SUITE_NAMES", "SuiteContext", "SuiteSpec", "build_suites"]

INGESTION_SUITE = "ingestion"
SUITE_NAMES: tuple[str, ...] = (*ENTITIES, INGESTION_SUITE)


def build_suites(context: SuiteContext, names: tuple[str, ...] | None = None) -> list[SuiteSpec]:
    """Every suite (or those in `names`) for the day in `context`."""
    from expectations.ingestion import ingestion_suite
    from expectations.staging import staging_suite

    out = []
    for name in names or SUITE_NAMES:
        if name == INGESTION_SUITE:
            out.append(ingestion_suite(context))
        elif name in ENTITIES:
            out.append(staging_suite(ENTITIES[name], context))
        else:
            raise ValueError(f"unknown suite {name!r}; known: {', '.join(SUITE_NAMES)}")
    return out
