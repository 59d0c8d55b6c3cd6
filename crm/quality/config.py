"""`config/quality.yaml`: thresholds of the quality flow, typed and validated on load."""

from __future__ import annotations

from pydantic import BaseModel, Field

from crm.core.config import load_config
from crm.quality.suites import Severity


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
    severity: Severity = Severity.WARNING


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
        "customers": Severity.WARNING,
        "loan_applications": Severity.WARNING,
        "application_status_changes": Severity.WARNING,
        "payments": Severity.WARNING,
        "app_events": Severity.CRITICAL,
        "message_events": Severity.CRITICAL,
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
