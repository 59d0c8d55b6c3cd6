"""The ingestion suite: the day's bookkeeping (per-source counts and the file manifest).

Its batch has one row per source that brought rows belonging to the business day
(`ingest_coverage`: a file's date, a source change's day; whichever run loaded them), plus one
row per landing file dated that day or met by that day's run that was rejected whole or found
misplaced (outside the naming contract): either way its rows are missing, so both close the gate. Failures name the sources, the
quarantine rules and an example reason each.

Imports Great Expectations: import this module lazily (from inside a function).
"""

from __future__ import annotations

from expectations import INGESTION_SUITE, SuiteContext, SuiteSpec
from expectations.common import CRITICAL, WARNING, expect, no_rows


def _share(numerator: str) -> str:
    return f"(1.0 * b.{numerator} / b.rows_read)"


def _quarantine_query(context: SuiteContext, threshold: float) -> str:
    return (
        "SELECT b.source, b.rows_read, b.rows_quarantined, q.rule, q.rule_rows, q.example "
        "FROM {batch} AS b JOIN ("
        "SELECT source, rule, COUNT(*) AS rule_rows, MIN(reason) AS example FROM quarantined_rows "
        f"WHERE business_date = '{context.day}' GROUP BY source, rule"
        ") AS q ON q.source = b.source "
        f"WHERE b.rows_read > 0 AND {_share('rows_quarantined')} > {float(threshold)!r} "
        "ORDER BY b.source, q.rule_rows DESC, q.rule"
    )


def ingestion_suite(context: SuiteContext) -> SuiteSpec:
    """Quarantine and duplicate shares per source under their thresholds, no unreadable file."""
    t = context.config.ingestion
    query = (
        "SELECT b.source, b.entity, 'loaded' AS outcome, '' AS error, b.rows_read, b.rows_loaded, "
        "b.rows_quarantined, b.rows_duplicate "
        f"FROM ingest_coverage AS b WHERE b.business_date = '{context.day}' "
        "UNION ALL "
        "SELECT 'file:' || f.file_key, f.entity, f.status, f.error, 0, 0, 0, 0 "
        f"FROM landing_files AS f WHERE (f.business_date = '{context.day}' OR f.as_of = '{context.day}') "
        "AND f.status IN ('failed', 'misplaced')"
    )
    expectations = [
        expect("ExpectTableRowCountToBeBetween", rule="ingestion_ran", severity=CRITICAL, min_value=1),
        no_rows(
            "SELECT b.source, b.error FROM {batch} AS b WHERE b.outcome IN ('failed', 'misplaced')",
            rule="failed_files",
            severity=CRITICAL,
            column="source",
            description="Every landing file of the day could be read and lies where the contract says "
            "(none rejected whole, none misplaced).",
        ),
        no_rows(
            _quarantine_query(context, t.quarantine_share_warning),
            rule="quarantine_share_warning",
            severity=WARNING,
            column="source",
            description=f"At most {t.quarantine_share_warning:.2%} of a source's rows are quarantined (warning).",
        ),
        no_rows(
            _quarantine_query(context, t.quarantine_share_critical),
            rule="quarantine_share_critical",
            severity=CRITICAL,
            column="source",
            description=f"At most {t.quarantine_share_critical:.2%} of a source's rows are quarantined.",
        ),
        no_rows(
            "SELECT b.source, b.rows_read, b.rows_duplicate FROM {batch} AS b "
            f"WHERE b.rows_read > 0 AND {_share('rows_duplicate')} > {float(t.duplicate_share_warning)!r}",
            rule="duplicate_share",
            severity=WARNING,
            column="source",
            description=f"At most {t.duplicate_share_warning:.2%} of a source's rows repeat a key already seen.",
        ),
    ]
    return SuiteSpec(
        name=INGESTION_SUITE,
        description=f"Ingestion bookkeeping of {context.as_of}: counts per source and rejected files.",
        query=query,
        key_columns=("source",),
        expectations=expectations,
    )
