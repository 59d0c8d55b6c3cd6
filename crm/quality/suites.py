"""What a quality run validates: severities, the day's context handed to suites, and a suite's spec.

Plain types only: the suites themselves (Great Expectations objects) are built in `expectations/`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from crm.quality.config import QualityConfig


class Severity(StrEnum):
    """How much a failed expectation matters: a critical failure closes the send gate."""

    CRITICAL = "critical"
    WARNING = "warning"


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
