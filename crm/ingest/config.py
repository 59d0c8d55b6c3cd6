"""`config/ingest.yaml`: the day guard and the plausibility floor of ingestion, typed and validated on load."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, ConfigDict, Field

from crm.core.config import load_config


class IngestConfig(BaseModel):
    """`config/ingest.yaml`: which business days a run may ingest, and which timestamps are plausible."""

    model_config = ConfigDict(extra="forbid")

    max_gap_days: int = Field(
        7, ge=1, description="Largest step from the last ingested day to the day asked for (without --force)."
    )
    plausible_since: date = Field(
        date(1970, 1, 1), description="Timestamps before this are quarantined under `plausible_date`."
    )


def load_ingest_config() -> IngestConfig:
    """The ingestion settings from `config/ingest.yaml` (defaults when absent)."""
    return load_config("ingest", IngestConfig)
