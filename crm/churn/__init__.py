"""Churn: point-in-time features, time-split training against baselines, a verified model registry, scoring."""

from pathlib import Path

from crm.churn.config import (
    ActivityKind,
    ChurnConfig,
    Eligibility,
    Features,
    ModelKind,
    Promotion,
    Scoring,
    TaskRunnerKind,
    Training,
    load_churn_config,
)
from crm.churn.features import (
    DATA_KINDS,
    RECENCY_FEATURE,
    Frames,
    aggregate_frames,
    compute_features,
    compute_labels,
    eligible,
    feature_kinds,
    feature_names,
    features_for_kinds,
    features_from_aggregates,
    labels_from_returning,
    measures,
)
from crm.churn.io import (
    customer_ranges,
    present_kinds,
    read_aggregates,
    read_features,
    read_frames,
    read_scores,
    write_report_files,
    write_scores,
)
from crm.churn.model import (
    RECENCY_MODEL,
    add_counts,
    bin_counts,
    deciles,
    drift_table,
    evaluate,
    psi,
)
from crm.churn.registry import TRUSTED_TYPES, ModelRefused, ModelRegistry, NoChampion, load_model_bytes
from crm.churn.reports import (
    calibration_png,
    importance_png,
    lift_png,
    registry_markdown,
    registry_rows,
    scoring_markdown,
    training_markdown,
)
from crm.churn.training import (
    NotEnoughHistory,
    SnapshotPlan,
    TrainingResult,
    build_snapshot,
    fit_and_compare,
    plan_snapshots,
    promotion_decision,
    score_range,
    usable,
)
from crm.core.settings import Settings
from crm.core.storage import open_store


def registry_url(config: ChurnConfig, settings: Settings) -> str:
    """Where the model registry lives: `registry_url` of churn.yaml, or `<CRM_HOME>/artifacts/models`."""
    return config.registry_url or str(Path(settings.home) / "artifacts" / "models")


def open_registry(config: ChurnConfig, settings: Settings) -> ModelRegistry:
    """The model registry in its folder or S3 prefix."""
    url = registry_url(config, settings)
    if not url.startswith("s3://"):
        Path(url.removeprefix("file://")).mkdir(parents=True, exist_ok=True)
    return ModelRegistry(open_store(url))


__all__ = [
    "DATA_KINDS",
    "RECENCY_FEATURE",
    "RECENCY_MODEL",
    "TRUSTED_TYPES",
    "ActivityKind",
    "ChurnConfig",
    "Eligibility",
    "Features",
    "Frames",
    "ModelKind",
    "ModelRefused",
    "ModelRegistry",
    "NoChampion",
    "NotEnoughHistory",
    "Promotion",
    "Scoring",
    "SnapshotPlan",
    "TaskRunnerKind",
    "Training",
    "TrainingResult",
    "add_counts",
    "aggregate_frames",
    "bin_counts",
    "build_snapshot",
    "calibration_png",
    "compute_features",
    "compute_labels",
    "customer_ranges",
    "deciles",
    "drift_table",
    "eligible",
    "evaluate",
    "feature_kinds",
    "feature_names",
    "features_for_kinds",
    "features_from_aggregates",
    "fit_and_compare",
    "importance_png",
    "labels_from_returning",
    "lift_png",
    "load_churn_config",
    "load_model_bytes",
    "measures",
    "open_registry",
    "plan_snapshots",
    "present_kinds",
    "promotion_decision",
    "psi",
    "read_aggregates",
    "read_features",
    "read_frames",
    "read_scores",
    "registry_markdown",
    "registry_rows",
    "registry_url",
    "score_range",
    "scoring_markdown",
    "training_markdown",
    "usable",
    "write_report_files",
    "write_scores",
]
