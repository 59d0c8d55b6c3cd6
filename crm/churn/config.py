"""`config/churn.yaml`: the churn problem as configuration (who is scored, the label, features, training, scoring)."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from crm.core.config import load_config


class ActivityKind(StrEnum):
    """What counts as a customer coming back (no such activity within the horizon = churned)."""

    LOAN = "loan"
    APPLICATION = "application"
    PURCHASE = "purchase"


class ModelKind(StrEnum):
    """The challenger pipelines the training flow fits."""

    GRADIENT_BOOSTING = "gradient_boosting"
    LOGISTIC = "logistic"


class TaskRunnerKind(StrEnum):
    """Where the scoring chunks run: threads of the flow's process, or a Dask cluster."""

    THREADS = "threads"
    DASK = "dask"


class Eligibility(BaseModel):
    """Who is scored (and who enters the training snapshots)."""

    model_config = ConfigDict(extra="forbid")

    borrowers_with_open_loan: bool = Field(True, description="Newbies and repeat customers holding a loan.")
    active_repeat: bool = Field(True, description="Repeat customers whose last repayment is within pre_churn_days.")
    pre_churn_days: int = Field(60, ge=1, description="DOMAIN.md: pre-churn after 2 months without coming back.")
    retail: bool = Field(True, description="Retail customers with a completed purchase within retail_active_days.")
    retail_active_days: int = Field(365, ge=1, description="DOMAIN.md: active base = a purchase a year.")


class Features(BaseModel):
    """Feature windows (days before the end of as_of)."""

    model_config = ConfigDict(extra="forbid")

    windows_days: list[int] = Field(default_factory=lambda: [30, 90, 180, 365], min_length=1)
    trend_days: int = Field(90, ge=7, description="Activity in the last N days minus the N days before.")
    engagement_days: int = Field(90, ge=1, description="Window of message opens, clicks and deliveries.")
    loyalty_tiers: list[str] = Field(
        default_factory=lambda: ["basic", "silver", "gold"], description="Tier names, lowest first (rank feature)."
    )

    @field_validator("windows_days")
    @classmethod
    def _positive_sorted(cls, value: list[int]) -> list[int]:
        if any(w < 1 for w in value):
            raise ValueError("every window must be at least 1 day")
        return sorted(set(value))


class Training(BaseModel):
    """How many past snapshots the training set holds, how far apart, and the models."""

    model_config = ConfigDict(extra="forbid")

    snapshots: int = Field(6, ge=2, description="Past snapshots (the newest validates, the older ones train).")
    snapshot_spacing_days: int = Field(30, ge=1)
    min_history_days: int = Field(
        30, ge=0, description="A snapshot needs this much warehouse history before it (features need a past)."
    )
    min_rows: int = Field(50, ge=10, description="Eligible customers a snapshot needs to count.")
    model: ModelKind = Field(ModelKind.GRADIENT_BOOSTING, description="The challenger registered for promotion.")
    calibration: Literal["isotonic", "sigmoid"] = "isotonic"
    calibration_share: float = Field(
        0.2, gt=0, lt=1, description="Training rows held out to calibrate the booster (fitted once on the rest)."
    )
    max_iter: int = Field(150, ge=10, description="Boosting iterations.")
    max_train_rows: int = Field(
        400_000, ge=1000, description="A seeded sample of the training rows above this (the report says so)."
    )
    threads: int = Field(
        1, ge=1, description="OpenMP threads per fit or prediction: on a shared machine more threads are slower."
    )
    learning_rate: float = Field(0.1, gt=0, le=1)
    seed: int = 42
    importance_rows: int = Field(20_000, ge=100, description="Validation rows used for permutation importance.")


class Promotion(BaseModel):
    """A challenger becomes champion only if it beats the champion on the same validation window."""

    model_config = ConfigDict(extra="forbid")

    metric: Literal["roc_auc", "pr_auc"] = "roc_auc"
    margin: float = Field(0.005, ge=0, le=1, description="By at least this much of the metric.")
    require_beating_recency: bool = Field(True, description="A first model must also beat recency alone.")
    automatic: bool = Field(True, description="Promote from the training flow when the guard passes.")


class Scoring(BaseModel):
    """Chunks, the task runner and the drift warning."""

    model_config = ConfigDict(extra="forbid")

    chunk_customers: int = Field(100_000, ge=100, description="Customers per chunk (memory bound of a task).")
    task_runner: TaskRunnerKind = TaskRunnerKind.THREADS
    max_workers: int = Field(2, ge=1, description="Threads, or local Dask workers when dask_address is empty.")
    dask_address: str | None = Field(None, description="tcp://scheduler:8786 of an existing Dask cluster.")
    psi_warning: float = Field(0.2, gt=0, description="PSI above this is a drift warning.")
    psi_bins: int = Field(10, ge=2, le=50)


class ChurnConfig(BaseModel):
    """The churn problem: eligibility, label, features, training, promotion, scoring, registry."""

    model_config = ConfigDict(extra="forbid")

    horizon_days: int = Field(60, ge=1, description="Churned = no counted activity within this many days after as_of.")
    activity_kinds: list[ActivityKind] = Field(
        default_factory=lambda: [ActivityKind.LOAN, ActivityKind.APPLICATION, ActivityKind.PURCHASE], min_length=1
    )
    eligibility: Eligibility = Field(default_factory=Eligibility)
    features: Features = Field(default_factory=Features)
    training: Training = Field(default_factory=Training)
    promotion: Promotion = Field(default_factory=Promotion)
    scoring: Scoring = Field(default_factory=Scoring)
    registry_url: str | None = Field(
        None, description="Folder or s3://bucket/prefix of the model registry; default <CRM_HOME>/artifacts/models."
    )

    @model_validator(mode="after")
    def _someone_scored(self) -> ChurnConfig:
        e = self.eligibility
        if not (e.borrowers_with_open_loan or e.active_repeat or e.retail):
            raise ValueError(
                "eligibility: at least one of borrowers_with_open_loan, active_repeat, retail must be true"
            )
        return self


def load_churn_config() -> ChurnConfig:
    """Load `config/churn.yaml` (defaults from DOMAIN.md when absent)."""
    return load_config("churn", ChurnConfig)
