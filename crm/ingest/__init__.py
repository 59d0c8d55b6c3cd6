"""Ingestion: watermark pulls of the source database and loads of landing files into `stg_*` tables."""

from crm.ingest.bulk import (
    build_missing_indexes,
    builds_indexes_alongside,
    drop_secondary_indexes,
    entity_tables,
    is_initial_load,
    loading_in_bulk,
    measure_tables,
    rows_written,
    secondary_indexes,
)
from crm.ingest.config import IngestConfig, load_ingest_config
from crm.ingest.contract_docs import landing_contract_markdown
from crm.ingest.counts import COUNT_COLUMNS, FINDING_STATUSES, FileStatus, SourceCounts, SourceStatus
from crm.ingest.dayguard import day_guard_refusal
from crm.ingest.history import record_versions, rows_as_of, versions_changed_on
from crm.ingest.io import (
    DayRefused,
    check_business_day,
    known_source_ids,
    load_known_ids,
    load_landing_file,
    load_landing_files,
    pull_ahead_parents,
    pull_source_table,
    quarantine_summary,
    read_day_bounds,
    read_watermark,
    record_misplaced_files,
    request_retry,
)
from crm.ingest.landing import LandingFile, MisplacedFile, classify_landing_key, landing_file_key, list_landing_files
from crm.ingest.parsing import MalformedFileError, ParsedFile, file_checksum, parse_landing_file
from crm.ingest.reports import counts_table, ingest_summary_markdown, ingest_totals
from crm.ingest.validation import MissingColumnsError, ValidationResult, validate_frame

__all__ = [
    "COUNT_COLUMNS",
    "FINDING_STATUSES",
    "DayRefused",
    "FileStatus",
    "IngestConfig",
    "LandingFile",
    "MalformedFileError",
    "MisplacedFile",
    "MissingColumnsError",
    "ParsedFile",
    "SourceCounts",
    "SourceStatus",
    "ValidationResult",
    "build_missing_indexes",
    "builds_indexes_alongside",
    "check_business_day",
    "classify_landing_key",
    "counts_table",
    "day_guard_refusal",
    "drop_secondary_indexes",
    "entity_tables",
    "file_checksum",
    "ingest_summary_markdown",
    "ingest_totals",
    "is_initial_load",
    "known_source_ids",
    "landing_contract_markdown",
    "landing_file_key",
    "list_landing_files",
    "load_ingest_config",
    "load_known_ids",
    "load_landing_file",
    "load_landing_files",
    "loading_in_bulk",
    "measure_tables",
    "parse_landing_file",
    "pull_ahead_parents",
    "pull_source_table",
    "quarantine_summary",
    "read_day_bounds",
    "read_watermark",
    "record_misplaced_files",
    "record_versions",
    "request_retry",
    "rows_as_of",
    "rows_written",
    "secondary_indexes",
    "validate_frame",
    "versions_changed_on",
]
