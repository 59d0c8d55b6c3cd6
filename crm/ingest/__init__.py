"""Ingestion: watermark pulls of the source database and loads of landing files into `stg_*` tables."""

from crm.ingest.contract_docs import landing_contract_markdown
from crm.ingest.counts import COUNT_COLUMNS, FileStatus, SourceCounts, SourceStatus
from crm.ingest.history import record_versions, rows_as_of, versions_changed_on
from crm.ingest.io import (
    known_source_ids,
    load_known_ids,
    load_landing_file,
    pull_ahead_parents,
    pull_source_table,
    quarantine_summary,
    read_watermark,
)
from crm.ingest.landing import LandingFile, landing_file_key, list_landing_files
from crm.ingest.parsing import MalformedFileError, file_checksum, parse_landing_file
from crm.ingest.reports import ingest_summary_markdown, ingest_totals
from crm.ingest.validation import MissingColumnsError, ValidationResult, validate_frame

__all__ = [
    "COUNT_COLUMNS",
    "FileStatus",
    "LandingFile",
    "MalformedFileError",
    "MissingColumnsError",
    "SourceCounts",
    "SourceStatus",
    "ValidationResult",
    "file_checksum",
    "ingest_summary_markdown",
    "ingest_totals",
    "known_source_ids",
    "landing_contract_markdown",
    "landing_file_key",
    "list_landing_files",
    "load_known_ids",
    "load_landing_file",
    "parse_landing_file",
    "pull_ahead_parents",
    "pull_source_table",
    "quarantine_summary",
    "read_watermark",
    "record_versions",
    "rows_as_of",
    "validate_frame",
    "versions_changed_on",
]
