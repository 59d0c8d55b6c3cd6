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

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from crm.contracts import ENTITIES

if TYPE_CHECKING:
    from crm.quality import QualityConfig

INGESTION_SUITE = "ingestion"
SUITE_NAMES: tuple[str, ...] = (*ENTITIES, INGESTION_SUITE)


@dataclass(frozen=True)
class SuiteContext:
    """What a suite needs to know about the day it validates."""

    as_of: date
    dialect: str  # sqlite | postgresql
    config: QualityConfig
    # entity -> (min, max) rows expected today; absent until enough history exists.
    volume_bands: dict[str, tuple[int, int]] = field(default_factory=dict)

    @property
    def day(self) -> str:
        """`as_of` as an SQL date literal's text (no colon, which SQLAlchemy would read as a bind)."""
        return self.as_of.isoformat()

    @property
    def next_day(self) -> str:
        """The day after `as_of`, for half-open `[day, next_day)` ranges."""
        return (self.as_of + timedelta(days=1)).isoformat()


@dataclass
class SuiteSpec:
    """A suite, the SQL of the day's batch it validates, and the key that names offending rows."""

    name: str
    description: str
    query: str
    key_columns: tuple[str, ...]
    expectations: list[Any]


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
