"""What happened to each source (a table or a file) in one ingestion run."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import StrEnum


class SourceStatus(StrEnum):
    """The outcome of one source in one run."""

    LOADED = "loaded"
    ALREADY_LOADED = "already_loaded"
    CHANGED = "changed"
    FAILED = "failed"
    UP_TO_DATE = "up_to_date"


class FileStatus(StrEnum):
    """A landing file's state in the manifest (`landing_files.status`)."""

    LOADED = "loaded"
    FAILED = "failed"


COUNT_COLUMNS = [
    "source",
    "entity",
    "status",
    "rows_read",
    "rows_loaded",
    "rows_quarantined",
    "rows_duplicate",
    "error",
]


@dataclass
class SourceCounts:
    """What happened to one source (a table or a file) in one run."""

    source: str
    entity: str
    status: SourceStatus
    rows_read: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    rows_duplicate: int = 0
    error: str | None = None

    def as_row(self) -> dict:
        """A flat dict for artifacts and reports."""
        return asdict(self)
