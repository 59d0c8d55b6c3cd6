"""Data quality of a business day: run the expectation suites, turn results into rows and a verdict,
and rate each integration (ok / problems / many errors).

Great Expectations is imported only inside `validate_suites` (it costs seconds and hundreds
of MB), so importing this module, the tasks and the flows stays cheap. Everything else here
is pure (dicts and DataFrames in, rows, text or verdicts out) or a small SQL read/write.
"""

from __future__ import annotations

import json
import logging
import re
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import pandas as pd
from pydantic import BaseModel, Field
from sqlalchemy import Connection, delete, func, select

from crm.config import load_config
from crm.contracts import SOURCE_ENTITIES
from crm.db import write_frame
from crm.privacy import mask_contacts
from models import warehouse as wh

if TYPE_CHECKING:
    from expectations import SuiteSpec

log = logging.getLogger(__name__)

Severity = Literal["critical", "warning"]
CRITICAL: Severity = "critical"
WARNING: Severity = "warning"
RESULT_COLUMNS = [c.name for c in wh.quality_results.columns]


# --------------------------------------------------------------------------- configuration

class IngestionThresholds(BaseModel):
    """Limits on the day's ingestion bookkeeping (shares of a source's rows)."""

    quarantine_share_warning: float = Field(0.001, ge=0, le=1)
    quarantine_share_critical: float = Field(0.01, ge=0, le=1)
    duplicate_share_warning: float = Field(0.01, ge=0, le=1)


class VolumeBand(BaseModel):
    """How far today's row count may stray from the recent days' median."""

    history_days: int = Field(7, ge=1)
    min_history_days: int = Field(3, ge=1)
    low_factor: float = Field(0.5, ge=0)
    high_factor: float = Field(2.0, ge=1)
    slack_rows: int = Field(20, ge=0)
    severity: Severity = WARNING


class HealthThresholds(BaseModel):
    """When an integration has problems or many errors."""

    problems_share: float = Field(0.001, ge=0, le=1)
    many_errors_share: float = Field(0.01, ge=0, le=1)
    history_days: int = Field(7, ge=1)
    top_reasons: int = Field(3, ge=1)


class QualityConfig(BaseModel):
    """`config/quality.yaml`: thresholds of the quality flow."""

    examples: int = Field(5, ge=1, le=50)
    ingestion: IngestionThresholds = IngestionThresholds()
    volume: VolumeBand = VolumeBand()
    freshness: dict[str, Severity] = {
        "customers": WARNING,
        "loan_applications": WARNING,
        "application_status_changes": WARNING,
        "payments": WARNING,
        "app_events": CRITICAL,
        "message_events": CRITICAL,
    }
    upper_bounds: dict[str, float] = {
        "loan_applications.requested_amount_minor": 100_000_000,
        "loans.principal_minor": 100_000_000,
        "loans.daily_rate_bp": 300,
        "loans.term_days": 3650,
        "payments.amount_minor": 100_000_000,
        "orders.amount_minor": 100_000_000,
    }
    health: HealthThresholds = HealthThresholds()


def load_quality_config() -> QualityConfig:
    """The quality thresholds from `config/quality.yaml` (defaults when absent)."""
    return load_config("quality", QualityConfig)


# --------------------------------------------------------------------------- examples and masking

_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?$")
# A calendar date (with an optional time) inside free text. `mask_contacts` would read its digits
# as a phone number; it is set aside first, unless digits or dashes continue it (a phone could).
_EMBEDDED_DATE = re.compile(
    r"(?<![\d+])(?:19|20)\d{2}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])"
    r"(?:[ T]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?(?![\d-])"
)


def mask_value(value: Any) -> str:
    """A value as text safe to show: contacts masked in free text; numbers and dates kept legible."""
    if value is None:
        return "null"
    if isinstance(value, (bool, int, float, date, datetime)):
        return str(value)
    text = str(value)
    if _ISO_DATE.match(text):
        return text
    dates = [m.group(0) for m in _EMBEDDED_DATE.finditer(text)]
    if not dates:
        return mask_contacts(text)
    parts = _EMBEDDED_DATE.split(text)
    return "".join(mask_contacts(part) + (dates[i] if i < len(dates) else "") for i, part in enumerate(parts))


def _example(item: Any) -> str:
    if isinstance(item, dict):
        return ", ".join(f"{k}={mask_value(v)}" for k, v in item.items())
    return mask_value(item)


def mask_result(result: dict) -> dict:
    """A GX expectation `result` dict with every offending value masked (for Data Docs)."""
    out = dict(result)
    for key in ("partial_unexpected_list", "unexpected_list"):
        if isinstance(out.get(key), list):
            out[key] = [mask_value(v) for v in out[key]]
    for key in ("partial_unexpected_index_list", "unexpected_index_list"):
        if isinstance(out.get(key), list):
            out[key] = [{k: mask_value(v) for k, v in d.items()} if isinstance(d, dict) else mask_value(d) for d in out[key]]
    if isinstance(out.get("partial_unexpected_counts"), list):
        out["partial_unexpected_counts"] = [
            {**c, "value": mask_value(c.get("value"))} if isinstance(c, dict) else c for c in out["partial_unexpected_counts"]
        ]
    details = out.get("details")
    if isinstance(details, dict) and isinstance(details.get("unexpected_rows"), list):
        rows = [{k: mask_value(v) for k, v in r.items()} if isinstance(r, dict) else mask_value(r) for r in details["unexpected_rows"]]
        out["details"] = {**details, "unexpected_rows": rows}
    if isinstance(out.get("observed_value"), str):
        out["observed_value"] = mask_value(out["observed_value"])
    return out


# --------------------------------------------------------------------------- GX results -> rows

ROWS_EXPECTATIONS = {"expect_no_unexpected_rows", "unexpected_rows_expectation"}


def expectation_column(config: dict) -> str | None:
    """The column(s) an expectation is about, from its kwargs or its meta."""
    kwargs = config.get("kwargs") or {}
    if kwargs.get("column"):
        return str(kwargs["column"])
    if kwargs.get("column_list"):
        return ", ".join(map(str, kwargs["column_list"]))
    if kwargs.get("column_A"):
        return f"{kwargs['column_A']}, {kwargs['column_B']}"
    return (config.get("meta") or {}).get("column")


def expectation_id(config: dict) -> str:
    """A stable id of an expectation: its type, column and rule (never day-dependent bounds)."""
    parts = []
    column = expectation_column(config)
    if column:
        parts.append(f"column={column}")
    rule = (config.get("meta") or {}).get("rule")
    if rule:
        parts.append(f"rule={rule}")
    return f"{config.get('type')}({', '.join(parts)})"[:256]


def _exception_message(info: Any) -> str | None:
    if not isinstance(info, dict):
        return None
    if "raised_exception" in info:
        return str(info.get("exception_message") or "error") if info.get("raised_exception") else None
    for value in info.values():  # GX 1.x keys exceptions by metric when several were raised
        message = _exception_message(value)
        if message:
            return message
    return None


def result_examples(config: dict, result: dict, *, limit: int) -> list[str]:
    """Masked, readable examples of what failed an expectation."""
    if result.get("partial_unexpected_index_list"):
        items = result["partial_unexpected_index_list"]
    elif result.get("partial_unexpected_list"):
        items = result["partial_unexpected_list"]
    elif isinstance(result.get("details"), dict) and result["details"].get("unexpected_rows"):
        items = result["details"]["unexpected_rows"]
    elif isinstance(result.get("details"), dict) and isinstance(result["details"].get("mismatched"), dict):
        mismatched = result["details"]["mismatched"]
        items = [f"{kind} columns: {', '.join(map(str, cols))}" for kind, cols in mismatched.items() if cols]
    elif "observed_value" in result:
        kwargs = {k: v for k, v in (config.get("kwargs") or {}).items() if k in ("min_value", "max_value")}
        bounds = ", ".join(f"{k}={mask_value(v)}" for k, v in kwargs.items())
        items = [f"observed {mask_value(result['observed_value'])}" + (f" (expected {bounds})" if bounds else "")]
    else:
        items = []
    return [_example(i) for i in items[:limit]]


def result_rows(suite: str, validation: dict, *, examples: int = 5) -> list[dict]:
    """One row per expectation of a suite's validation result (`to_json_dict()` of GX's result)."""
    rows: list[dict] = []
    seen: set[str] = set()
    for item in validation.get("results", []):
        config = item.get("expectation_config") or {}
        meta = config.get("meta") or {}
        result = item.get("result") or {}
        error = _exception_message(item.get("exception_info"))
        key = expectation_id(config)
        if key in seen:  # defensive: ids must be unique within a suite
            key = f"{key}#{sum(1 for s in seen if s.startswith(key))+1}"[:256]
        seen.add(key)
        if config.get("type") in ROWS_EXPECTATIONS:
            unexpected = result.get("observed_value")
        else:
            unexpected = result.get("unexpected_count")
        shown = [f"error: {mask_value(error)}"] if error else result_examples(config, result, limit=examples)
        success = bool(item.get("success")) and not error
        rows.append(
            {
                "suite": suite,
                "expectation": key,
                "column_name": (expectation_column(config) or None) and expectation_column(config)[:128],
                "severity": meta.get("severity") or config.get("severity") or CRITICAL,
                "success": success,
                "element_count": _int_or_none(result.get("element_count")),
                "unexpected_count": _int_or_none(unexpected),
                "unexpected_examples": json.dumps([] if success else shown, ensure_ascii=False),
                "rule": meta.get("rule") or config.get("type"),
                "description": config.get("description") or "",
            }
        )
    return rows


def suite_error_row(suite: str, error: str) -> dict:
    """The row of a suite that could not run at all (its batch failed to load): a critical failure."""
    return {
        "suite": suite,
        "expectation": "suite_ran(rule=suite_ran)",
        "column_name": None,
        "severity": CRITICAL,
        "success": False,
        "element_count": None,
        "unexpected_count": None,
        "unexpected_examples": json.dumps([f"error: {mask_value(error)[:500]}"], ensure_ascii=False),
        "rule": "suite_ran",
        "description": "The suite's batch could be read and validated.",
    }


def _int_or_none(value: Any) -> int | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


# --------------------------------------------------------------------------- verdict

@dataclass(frozen=True)
class QualityVerdict:
    """Whether the day's data may drive sends, with a one-paragraph reason."""

    fit_for_sending: bool
    summary: str
    critical_failures: int
    warning_failures: int


def _failure_text(row: dict) -> str:
    column = f" on {row['column_name']}" if row.get("column_name") and row.get("rule") not in ("schema",) else ""
    count = f", {row['unexpected_count']:,} rows" if row.get("unexpected_count") else ""
    examples = json.loads(row.get("unexpected_examples") or "[]")
    example = f", e.g. {examples[0]}" if examples else ""
    return f"{row['suite']}: {row['rule']}{column}{count}{example}"


def quality_verdict(rows: list[dict], as_of: date, *, shown: int = 5) -> QualityVerdict:
    """Fit for sending unless a critical expectation failed; the summary names the failures by rule."""
    failed = [r for r in rows if not r["success"]]
    critical = [r for r in failed if r["severity"] == CRITICAL]
    warnings = [r for r in failed if r["severity"] != CRITICAL]
    suites = len({r["suite"] for r in rows})
    if not rows:
        return QualityVerdict(False, f"no expectation ran for {as_of}", 0, 0)
    if critical:
        listed = "; ".join(_failure_text(r) for r in critical[:shown])
        more = f"; and {len(critical) - shown} more" if len(critical) > shown else ""
        tail = f" ({len(warnings)} warning(s) too)" if warnings else ""
        summary = f"{len(critical)} critical expectation(s) failed for {as_of}: {listed}{more}{tail}."
        return QualityVerdict(False, summary, len(critical), len(warnings))
    if warnings:
        listed = "; ".join(_failure_text(r) for r in warnings[:shown])
        more = f"; and {len(warnings) - shown} more" if len(warnings) > shown else ""
        summary = f"No critical failure in {len(rows)} expectations of {suites} suites for {as_of}; {len(warnings)} warning(s): {listed}{more}."
        return QualityVerdict(True, summary, 0, len(warnings))
    return QualityVerdict(True, f"All {len(rows)} expectations of {suites} suites passed for {as_of}.", 0, 0)


# --------------------------------------------------------------------------- volume history

def read_volume_history(conn: Connection, as_of: date, days: int) -> pd.DataFrame:
    """Rows loaded per entity per day over the `days` ingested days before `as_of` (from ingest_batches)."""
    b = wh.ingest_batches
    stmt = (
        select(b.c.as_of, b.c.entity, func.sum(b.c.rows_loaded).label("rows_loaded"))
        .where(b.c.as_of < as_of, b.c.as_of >= as_of - timedelta(days=days))
        .group_by(b.c.as_of, b.c.entity)
    )
    return pd.DataFrame(conn.execute(stmt).all(), columns=["as_of", "entity", "rows_loaded"])


def volume_bands(history: pd.DataFrame, entities: Iterable[str], band: VolumeBand) -> dict[str, tuple[int, int]]:
    """Per entity, the [min, max] rows expected today: a band around the median of the recent ingested days.

    A day on which ingestion ran but an entity brought nothing counts as 0 rows for it.
    No band (no volume expectation) before `min_history_days` ingested days.
    """
    days = sorted(set(history["as_of"])) if len(history) else []
    if len(days) < band.min_history_days:
        return {}
    out = {}
    for entity in entities:
        counts = history[history["entity"] == entity].set_index("as_of")["rows_loaded"]
        series = pd.Series([int(counts.get(d, 0)) for d in days], dtype="int64")
        median = float(series.median())
        low = max(0, int(median * band.low_factor) - band.slack_rows)
        high = int(median * band.high_factor + 0.5) + band.slack_rows
        out[entity] = (low, high)
    return out


# --------------------------------------------------------------------------- running the suites

def gx_connection_string(url: str) -> str:
    """The warehouse URL with an installed driver (psycopg 3 for PostgreSQL), password kept."""
    from crm.settings import make_engine

    return make_engine(url).url.render_as_string(hide_password=False)


def validate_suites(
    warehouse_url: str,
    specs: list[SuiteSpec],
    *,
    examples: int = 5,
    docs_dir: Path | None = None,
    run_name: str = "quality",
) -> list[dict]:
    """Validate every suite on its day's batch in an ephemeral GX context; optionally build Data Docs.

    A suite whose batch cannot be read yields one critical `suite_ran` failure instead of an
    exception, so one broken table never hides the findings of the others.
    """
    import great_expectations as gx
    from great_expectations.core.run_identifier import RunIdentifier

    context = _ephemeral_context(docs_dir)
    url = gx_connection_string(warehouse_url)
    if url.startswith("sqlite"):
        datasource = context.data_sources.add_sqlite("warehouse", connection_string=url, create_temp_table=True)
    elif url.startswith("postgresql"):
        datasource = context.data_sources.add_postgres("warehouse", connection_string=url, create_temp_table=True)
    else:
        datasource = context.data_sources.add_sql("warehouse", connection_string=url, create_temp_table=True)
    run_id = RunIdentifier(run_name=run_name, run_time=datetime.now(timezone.utc))
    rows: list[dict] = []
    try:
        for spec in specs:
            try:
                asset = datasource.add_query_asset(spec.name, query=spec.query)
                batch = asset.add_batch_definition_whole_table(f"{spec.name} of the day")
                suite = context.suites.add(
                    gx.ExpectationSuite(name=spec.name, expectations=list(spec.expectations), meta={"notes": spec.description})
                )
                definition = context.validation_definitions.add(gx.ValidationDefinition(name=spec.name, data=batch, suite=suite))
                result = definition.run(
                    result_format={
                        "result_format": "SUMMARY",
                        "partial_unexpected_count": examples,
                        "unexpected_index_column_names": list(spec.key_columns),
                    },
                    run_id=run_id,
                )
            except Exception as exc:  # a broken batch is a finding, not a crash
                log.exception("suite %s could not run", spec.name)
                rows.append(suite_error_row(spec.name, f"{type(exc).__name__}: {exc}"))
                continue
            rows.extend(result_rows(spec.name, result.to_json_dict(), examples=examples))
        if docs_dir is not None:
            _mask_stored_results(context)
            context.build_data_docs()
    finally:
        engine = getattr(datasource, "_engine", None)
        if engine is not None:
            engine.dispose()
    return rows


def _ephemeral_context(docs_dir: Path | None):
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    sites = {}
    if docs_dir is not None:
        sites["crm"] = {
            "class_name": "SiteBuilder",
            "show_how_to_buttons": False,
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(docs_dir)},
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        }
    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
        progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
        analytics_enabled=False,
        data_docs_sites=sites,
    )
    return gx.get_context(project_config=config, mode="ephemeral")


def _mask_stored_results(context) -> None:
    """Mask offending values in the stored validation results before Data Docs render them."""
    store = context.validation_results_store
    for key in store.list_keys():
        suite_result = store.get(key)
        for item in suite_result.results:
            if item.result:
                item.result = mask_result(item.result)
        store.set(key, suite_result)


# --------------------------------------------------------------------------- storing results

def replace_quality_results(conn: Connection, as_of: date, rows: list[dict]) -> int:
    """Replace the day's rows of `quality_results` (call inside one transaction)."""
    conn.execute(delete(wh.quality_results).where(wh.quality_results.c.as_of == as_of))
    if not rows:
        return 0
    frame = pd.DataFrame(rows).assign(as_of=pd.Timestamp(as_of))
    frame = frame[RESULT_COLUMNS].astype({"element_count": "Int64", "unexpected_count": "Int64"})
    return write_frame(conn, wh.quality_results, frame, on_conflict="error")


def read_quality_results(conn: Connection, as_of: date) -> pd.DataFrame:
    """The stored expectation results of a day."""
    stmt = select(wh.quality_results).where(wh.quality_results.c.as_of == as_of).order_by(
        wh.quality_results.c.suite, wh.quality_results.c.expectation
    )
    return pd.DataFrame(conn.execute(stmt).mappings().all(), columns=RESULT_COLUMNS)


# --------------------------------------------------------------------------- Data Docs

def upload_data_docs(local_dir: Path, reports_url: str, prefix: str) -> str:
    """Copy a built Data Docs site to the reports location under `prefix`; return its index's address."""
    from crm.landing import open_landing_zone

    zone = open_landing_zone(reports_url)
    for path in sorted(local_dir.rglob("*")):
        # The two animated GIFs (3 MB) belong to GX's tutorial modal, which is switched off.
        if not path.is_file() or path.suffix == ".gif":
            continue
        zone.write_bytes(f"{prefix}/{path.relative_to(local_dir).as_posix()}", path.read_bytes())
    base = reports_url.rstrip("/") if reports_url.startswith("s3://") else str(Path(reports_url.removeprefix("file://")).expanduser().resolve())
    return f"{base}/{prefix}/index.html"


def new_docs_dir() -> Path:
    """A fresh temporary folder for building Data Docs."""
    return Path(tempfile.mkdtemp(prefix="crm-data-docs-"))


# --------------------------------------------------------------------------- markdown

def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def suite_table(rows: list[dict], suite: str) -> list[dict]:
    """The rows of one suite as a Prefect table artifact (failures first)."""
    mine = [r for r in rows if r["suite"] == suite]
    mine.sort(key=lambda r: (r["success"], r["severity"] != CRITICAL, r["expectation"]))
    return [
        {
            "expectation": r["expectation"],
            "column": r["column_name"] or "",
            "severity": r["severity"],
            "passed": r["success"],
            "unexpected": "" if r["unexpected_count"] is None else r["unexpected_count"],
            "examples": "; ".join(json.loads(r["unexpected_examples"] or "[]")),
        }
        for r in mine
    ]


def quality_markdown(rows: list[dict], verdict: QualityVerdict, as_of: date, docs_url: str | None) -> str:
    """The day's quality summary for the Prefect UI: verdict, per-suite counts, failures with examples."""
    frame = pd.DataFrame(rows, columns=["suite", "success", "severity"]) if rows else pd.DataFrame(columns=["suite", "success", "severity"])
    lines = [
        f"# Data quality {as_of}",
        "",
        f"**{'Fit for sending' if verdict.fit_for_sending else 'NOT fit for sending'}**: {_cell(verdict.summary)}",
        "",
        "| suite | expectations | passed | critical failed | warnings |",
        "|---|---:|---:|---:|---:|",
    ]
    for suite, group in frame.groupby("suite", sort=True):
        failed = group[~group["success"].astype(bool)]
        lines.append(
            f"| {suite} | {len(group)} | {int(group['success'].astype(bool).sum())} | "
            f"{int((failed['severity'] == CRITICAL).sum())} | {int((failed['severity'] != CRITICAL).sum())} |"
        )
    failures = [r for r in rows if not r["success"]]
    if failures:
        lines += ["", "## Failed expectations", "", "| suite | rule | column | severity | unexpected | examples |", "|---|---|---|---|---:|---|"]
        failures.sort(key=lambda r: (r["severity"] != CRITICAL, r["suite"], r["expectation"]))
        for r in failures:
            examples = "; ".join(json.loads(r["unexpected_examples"] or "[]"))
            count = "" if r["unexpected_count"] is None else f"{r['unexpected_count']:,}"
            lines.append(
                f"| {r['suite']} | {_cell(r['rule'])} | {_cell(r['column_name'] or '')} | {r['severity']} | {count} | {_cell(examples)} |"
            )
    if docs_url:
        lines += ["", f"Great Expectations Data Docs: `{docs_url}`"]
    return "\n".join(lines)


# --------------------------------------------------------------------------- integration health

_FILE_KEY = re.compile(r"^(?P<entity>[^/]+)/(?P<stem>.+?)_\d{4}-\d{2}-\d{2}\.[a-z]+(\.gz)?$")
HEALTH_ORDER = {"many errors": 0, "problems": 1, "ok": 2}


def integration_name(source: str) -> str:
    """The integration a source belongs to: `db:<table>`, `file:<entity>` or `file:<entity>/<provider>`."""
    if not source.startswith("file:"):
        return source
    key = source.removeprefix("file:")
    match = _FILE_KEY.match(key)
    if not match:
        return f"file:{key.split('/', 1)[0]}"
    entity, stem = match["entity"], match["stem"]
    return f"file:{entity}" if stem == entity else f"file:{entity}/{stem}"


@dataclass
class HealthInputs:
    """What integration health is computed from (all for one business day)."""

    batches: pd.DataFrame  # ingest_batches rows of the day
    failed_files: pd.DataFrame  # landing_files rows of the day with status failed (file_key, error)
    reasons: pd.DataFrame  # quarantine by source and rule: source, rule, rows, example
    recent: pd.DataFrame  # sources that delivered rows on recent days: as_of, source


def read_health_inputs(conn: Connection, as_of: date, history_days: int) -> HealthInputs:
    """Read the day's bookkeeping and the recent days' deliveries from the warehouse."""
    from crm.ingest import quarantine_summary

    b, f = wh.ingest_batches, wh.landing_files
    batches = pd.DataFrame(
        conn.execute(select(b).where(b.c.as_of == as_of)).mappings().all(),
        columns=[c.name for c in b.columns],
    )
    failed = pd.DataFrame(
        conn.execute(select(f.c.file_key, f.c.error).where(f.c.as_of == as_of, f.c.status == "failed")).all(),
        columns=["file_key", "error"],
    )
    recent = pd.DataFrame(
        conn.execute(
            select(b.c.as_of, b.c.source).where(
                b.c.as_of < as_of, b.c.as_of >= as_of - timedelta(days=history_days), b.c.rows_read > 0
            )
        ).all(),
        columns=["as_of", "source"],
    )
    return HealthInputs(batches=batches, failed_files=failed, reasons=quarantine_summary(conn, as_of), recent=recent)


def classify_integrations(inputs: HealthInputs, thresholds: HealthThresholds) -> pd.DataFrame:
    """Per integration: status (ok / problems / many errors), counts, error share and top reasons."""
    batches = inputs.batches.copy()
    batches["integration"] = [integration_name(s) for s in batches["source"]] if len(batches) else []
    failed = inputs.failed_files.copy()
    failed["integration"] = [integration_name(f"file:{k}") for k in failed["file_key"]] if len(failed) else []
    reasons = inputs.reasons.copy()
    reasons["integration"] = [integration_name(s) for s in reasons["source"]] if len(reasons) else []
    recent = inputs.recent.copy()
    recent["integration"] = [integration_name(s) for s in recent["source"]] if len(recent) else []
    recent_days = sorted(set(recent["as_of"])) if len(recent) else []

    names = {f"db:{e.name}" for e in SOURCE_ENTITIES}
    names |= set(batches["integration"]) | set(failed["integration"]) | set(recent["integration"])
    out = []
    for name in sorted(names):
        mine = batches[batches["integration"] == name]
        read = int(mine["rows_read"].sum()) if len(mine) else 0
        loaded = int(mine["rows_loaded"].sum()) if len(mine) else 0
        quarantined = int(mine["rows_quarantined"].sum()) if len(mine) else 0
        duplicate = int(mine["rows_duplicate"].sum()) if len(mine) else 0
        files_failed = failed[failed["integration"] == name]
        share = quarantined / read if read else 0.0
        delivered_days = set(recent.loc[recent["integration"] == name, "as_of"])
        silent = read == 0 and len(files_failed) == 0 and recent_days and delivered_days >= set(recent_days)

        notes: list[str] = []
        for error in files_failed["error"].head(thresholds.top_reasons):
            notes.append(f"file could not be read: {mask_value(error)}")
        top = reasons[reasons["integration"] == name].groupby("rule", as_index=False).agg(rows=("rows", "sum"), example=("example", "min"))
        top = top.sort_values(["rows", "rule"], ascending=[False, True]).head(thresholds.top_reasons)
        notes += [f"{r.rule}: {int(r.rows):,} (e.g. {mask_value(r.example)})" for r in top.itertuples()]
        if silent:
            notes.append(f"no rows today, although it delivered on each of the last {len(recent_days)} ingested day(s)")

        if len(files_failed) or share > thresholds.many_errors_share:
            status = "many errors"
        elif share > thresholds.problems_share or silent:
            status = "problems"
        else:
            status = "ok"
        out.append(
            {
                "integration": name,
                "status": status,
                "rows_read": read,
                "rows_loaded": loaded,
                "rows_quarantined": quarantined,
                "rows_duplicate": duplicate,
                "files_failed": int(len(files_failed)),
                "error_share": round(share, 6),
                "top_reasons": notes,
            }
        )
    frame = pd.DataFrame(out)
    if len(frame):
        frame = frame.sort_values(["status", "integration"], key=lambda s: s.map(HEALTH_ORDER) if s.name == "status" else s)
    return frame.reset_index(drop=True)


def integration_health_markdown(health: pd.DataFrame, as_of: date) -> str:
    """The morning read for a CRM manager: one line per integration, worst first."""
    counts = health["status"].value_counts() if len(health) else pd.Series(dtype=int)
    badge = {"ok": "ok", "problems": "⚠️ problems", "many errors": "❌ many errors"}
    lines = [
        f"# Integration health {as_of}",
        "",
        ", ".join(f"**{int(counts.get(s, 0))}** {s}" for s in ("many errors", "problems", "ok")),
        "",
        "| integration | status | read | loaded | quarantined | duplicates | top reasons |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for r in health.itertuples():
        reasons = "<br>".join(_cell(n) for n in r.top_reasons) if r.top_reasons else ""
        lines.append(
            f"| {r.integration} | {badge[r.status]} | {r.rows_read:,} | {r.rows_loaded:,} | "
            f"{r.rows_quarantined:,} | {r.rows_duplicate:,} | {reasons} |"
        )
    lines += [
        "",
        "Status: **many errors** when a file could not be read or more than the configured share of rows was "
        "quarantined; **problems** above a smaller share or when a daily feed sent nothing. "
        "Every quarantined row is in `quarantined_rows` with its rule and reason.",
    ]
    return "\n".join(lines)
