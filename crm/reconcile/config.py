"""`config/reconcile.yaml`: what is reconciled per source entity, the threshold and the diff limits."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from crm.core.config import load_config
from crm.core.contracts import ENTITIES, SOURCE_ENTITIES, Entity


class EntityCheck(BaseModel):
    """What is reconciled for one source entity."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    business_time: str | None = Field(
        None, description="Column whose date puts a row in the `day` scope; none: cumulative only."
    )
    status: str | None = Field(
        None, description="Column counted per value and compared id by id (final status, payment type)."
    )
    amount: str | None = Field(None, description="Integer money column summed and compared id by id.")
    amount_by_status: bool = Field(False, description="Also sum `amount` per `status` value.")


def _default_entities() -> dict[str, EntityCheck]:
    return {
        "customers": EntityCheck(business_time="registered_at"),
        "customer_contacts": EntityCheck(status="is_consented"),
        "loan_applications": EntityCheck(business_time="created_at", status="status", amount="requested_amount_minor"),
        "application_status_changes": EntityCheck(business_time="changed_at", status="status"),
        "loans": EntityCheck(business_time="issued_at", status="status", amount="principal_minor"),
        "payments": EntityCheck(
            business_time="paid_at", status="payment_type", amount="amount_minor", amount_by_status=True
        ),
        "orders": EntityCheck(business_time="ordered_at", status="status", amount="amount_minor"),
    }


class ReconciliationConfig(BaseModel):
    """`config/reconcile.yaml`: threshold, figures per entity, diff limits."""

    model_config = ConfigDict(extra="forbid")

    threshold: float = Field(
        0.001, ge=0, description="Largest divergence |source - warehouse| / max(|source|, 1) that passes."
    )
    diff_when: Literal["over_threshold", "any_difference"] = "over_threshold"
    max_stored_ids: int = Field(
        100_000, gt=0, description="Mismatching ids stored per entity and kind (counts stay exact)."
    )
    chunk_rows: int = Field(100_000, gt=0, description="Rows per side read at once when diffing ids.")
    examples: int = Field(5, ge=0, description="Example ids per entity and kind in the summary artifact.")
    trend_days: int = Field(30, gt=0, description="Days of divergence history in the trend artifact.")
    entities: dict[str, EntityCheck] = Field(default_factory=_default_entities)

    @model_validator(mode="after")
    def _known_columns(self) -> ReconciliationConfig:
        source_names = {e.name for e in SOURCE_ENTITIES}
        for name, check in self.entities.items():
            if name not in source_names:
                raise ValueError(f"entities.{name}: not a source-database entity ({', '.join(sorted(source_names))})")
            entity = ENTITIES[name]
            for role in ("business_time", "status", "amount"):
                column = getattr(check, role)
                if column is not None and column not in entity.column_names:
                    raise ValueError(f"entities.{name}.{role}: {name} has no column {column!r}")
            if check.status:
                column = entity.column(check.status)
                if not (column.allowed or column.kind == "bool"):
                    # Statuses are shown in artifacts and logs: only closed lists, never free text (contacts).
                    raise ValueError(f"entities.{name}.status: {check.status!r} is not a closed list of values")
            if check.amount and entity.column(check.amount).kind != "money":
                raise ValueError(f"entities.{name}.amount: {check.amount!r} is not a money column")
            if check.amount_by_status and not (check.amount and check.status):
                raise ValueError(f"entities.{name}.amount_by_status needs both amount and status")
        return self

    def checked(self) -> list[tuple[Entity, EntityCheck]]:
        """Enabled entities with their checks, in the contract's load order."""
        return [
            (e, self.entities[e.name])
            for e in SOURCE_ENTITIES
            if e.name in self.entities and self.entities[e.name].enabled
        ]


def load_reconciliation_config() -> ReconciliationConfig:
    """The reconciliation configuration (`config/reconcile.yaml`, defaults when absent)."""
    return load_config("reconcile", ReconciliationConfig)
