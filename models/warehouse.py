"""The whole CRM warehouse schema: every capability's tables on one metadata.

Schema changes go through Alembic (`infra/migrations`); this metadata is what
`alembic revision --autogenerate` compares against. Code imports the capability's own module
(`models.ingest`, `models.quality`, ...); this module only gathers them.
"""

from __future__ import annotations

from models import campaigns, churn, gate, ingest, loyalty, quality, reconcile, segments, sending  # noqa: F401 - registers their tables
from models.base import metadata

__all__ = ["metadata"]
