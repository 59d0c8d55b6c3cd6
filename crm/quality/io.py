"""Quality's IO: run the suites with Great Expectations, store results, build and upload Data Docs.

Great Expectations is imported only inside `validate_suites` (it costs seconds and hundreds
of MB), so importing this module, the tasks and the flows stays cheap.
"""

from __future__ import annotations

import logging
import tempfile
from datetime import UTC, date, datetime
from pathlib import Path

import pandas as pd
from sqlalchemy import Connection, delete

from crm.core.db import read_frame, write_frame
from crm.core.storage import open_store
from crm.ingest import quarantine_summary
from crm.quality import queries
from crm.quality.datadocs import make_offline
from crm.quality.health import HealthInputs
from crm.quality.results import RESULT_COLUMNS, mask_result, result_rows, suite_error_row
from crm.quality.suites import SuiteSpec
from models.quality import quality_results

log = logging.getLogger(__name__)


def read_volume_history(conn: Connection, as_of: date, days: int) -> pd.DataFrame:
    """Rows loaded per entity per business day over the `days` days before `as_of` (from ingest_coverage)."""
    return read_frame(conn, queries.volume_history(as_of, days))


def gx_connection_string(url: str) -> str:
    """The warehouse URL with an installed driver (psycopg 3 for PostgreSQL), password kept."""
    from crm.core.settings import engine_url, make_engine

    return engine_url(make_engine(url))


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
    run_id = RunIdentifier(run_name=run_name, run_time=datetime.now(UTC))
    rows: list[dict] = []
    try:
        for spec in specs:
            try:
                asset = datasource.add_query_asset(spec.name, query=spec.query)
                batch = asset.add_batch_definition_whole_table(f"{spec.name} of the day")
                suite = context.suites.add(
                    gx.ExpectationSuite(
                        name=spec.name, expectations=list(spec.expectations), meta={"notes": spec.description}
                    )
                )
                definition = context.validation_definitions.add(
                    gx.ValidationDefinition(name=spec.name, data=batch, suite=suite)
                )
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
            left = make_offline(docs_dir)
            if left:  # a GX upgrade brought a CDN address we do not ship: the page needs internet for it
                log.warning("Data Docs still load %d assets from the internet: %s", len(left), ", ".join(left))
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


def replace_quality_results(conn: Connection, as_of: date, rows: list[dict]) -> int:
    """Replace the day's rows of `quality_results` (call inside one transaction)."""
    conn.execute(delete(quality_results).where(quality_results.c.as_of == as_of))
    if not rows:
        return 0
    frame = pd.DataFrame(rows).assign(as_of=pd.Timestamp(as_of))
    frame = frame[["as_of", *RESULT_COLUMNS]].astype({"element_count": "Int64", "unexpected_count": "Int64"})
    return write_frame(conn, quality_results, frame, on_conflict="error")


def upload_data_docs(local_dir: Path, reports_url: str, prefix: str) -> str:
    """Copy a built Data Docs site to the reports location under `prefix`; return its index's address."""
    zone = open_store(reports_url)
    for path in sorted(local_dir.rglob("*")):
        # The two animated GIFs (3 MB) belong to GX's tutorial modal, which is switched off.
        if not path.is_file() or path.suffix == ".gif":
            continue
        zone.write_bytes(f"{prefix}/{path.relative_to(local_dir).as_posix()}", path.read_bytes())
    base = (
        reports_url.rstrip("/")
        if reports_url.startswith("s3://")
        else str(Path(reports_url.removeprefix("file://")).expanduser().resolve())
    )
    return f"{base}/{prefix}/index.html"


def new_docs_dir() -> Path:
    """A fresh temporary folder for building Data Docs."""
    return Path(tempfile.mkdtemp(prefix="crm-data-docs-"))


def read_health_inputs(conn: Connection, as_of: date, history_days: int) -> HealthInputs:
    """Read the day's bookkeeping and the recent days' deliveries from the warehouse."""
    batches = read_frame(conn, queries.day_batches(as_of))
    failed = read_frame(conn, queries.failed_files(as_of))
    recent = read_frame(conn, queries.recent_deliveries(as_of, history_days))
    return HealthInputs(
        batches=batches,
        failed_files=failed,
        reasons=quarantine_summary(conn, as_of, by_business_date=True),
        recent=recent,
    )
