"""What happened to each source (a table or a file) in one ingestion run."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import StrEnum


class SourceStatus(StrEnum):
    """The outcome of one source in one run."""

    LOADED = "loaded"
    ALREADY_LOADED = "already_loaded"
    CHANGED = "changed"
    FAILED = "failed"  # a file rejected whole by this run
    ALREADY_REJECTED = "already_rejected"  # rejected by an earlier run: not read again until `crm landing retry`
    MISPLACED = "misplaced"  # a file this run found outside the naming contract
    UP_TO_DATE = "up_to_date"


# Outcomes that are findings of the run: the file's rows are missing and the send gate closes.
FINDING_STATUSES = (SourceStatus.FAILED, SourceStatus.MISPLACED)


class FileStatus(StrEnum):
    """A landing file's state in the manifest (`landing_files.status`)."""

    LOADED = "loaded"
    FAILED = "failed"  # rejected whole (reason in `error`); not retried for the same bytes
    MISPLACED = "misplaced"  # outside the naming contract (reason in `error`); reported once
    RETRY = "retry"  # an operator asked (`crm landing retry`) to read it again on the next run


COUNT_COLUMNS = [
    "source",
    "entity",
    "status",
    "rows_read",
    "rows_loaded",
    "rows_quarantined",
    "rows_duplicate",
    "rows_without_watermark",
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
    # Source rows with no updated_at (or changed_at): invisible to the watermark, reported every run.
    rows_without_watermark: int = 0
    error: str | None = None

    def as_row(self) -> dict:
        """A flat dict for artifacts and reports."""
        return asdict(self)
