"""Data quality of a business day: expectation suites, results, the quality verdict, integration health."""

from crm.quality.config import HealthThresholds, QualityConfig, VolumeBand, load_quality_config
from crm.quality.health import HealthInputs, HealthStatus, classify_integrations, integration_name
from crm.quality.io import (
    new_docs_dir,
    read_health_inputs,
    read_volume_history,
    replace_quality_results,
    upload_data_docs,
    validate_suites,
)
from crm.quality.reports import integration_health_markdown, quality_markdown, suite_table
from crm.quality.results import mask_result, result_rows
from crm.quality.suites import Severity, SuiteContext, SuiteSpec
from crm.quality.verdict import QualityVerdict, quality_verdict
from crm.quality.volume import volume_bands

__all__ = [
    "HealthInputs",
    "HealthStatus",
    "HealthThresholds",
    "QualityConfig",
    "QualityVerdict",
    "Severity",
    "SuiteContext",
    "SuiteSpec",
    "VolumeBand",
    "classify_integrations",
    "integration_health_markdown",
    "integration_name",
    "load_quality_config",
    "mask_result",
    "new_docs_dir",
    "quality_markdown",
    "quality_verdict",
    "read_health_inputs",
    "read_volume_history",
    "replace_quality_results",
    "result_rows",
    "suite_table",
    "upload_data_docs",
    "validate_suites",
    "volume_bands",
]
