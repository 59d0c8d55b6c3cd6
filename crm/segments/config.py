"""`config/segments.yaml`: lifecycle thresholds, RFM window, score bins and cells, channel preference."""

from __future__ import annotations

import itertools

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from crm.core.config import load_config


def _increasing(values: list[int], name: str) -> list[int]:
    if len(values) != 4:
        raise ValueError(f"{name} needs 4 boundaries (5 scores), got {len(values)}")
    if any(v < 0 for v in values) or any(b <= a for a, b in itertools.pairwise(values)):
        raise ValueError(f"{name} must be non-negative and strictly increasing")
    return values


class RfmCell(BaseModel):
    """A named RFM cell: the recency and frequency scores it covers (both ends included)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")
    recency: tuple[int, int] = Field(description="Lowest and highest recency score, 1-5.")
    frequency: tuple[int, int] = Field(description="Lowest and highest frequency score, 1-5.")

    @field_validator("recency", "frequency")
    @classmethod
    def _scores(cls, value: tuple[int, int]) -> tuple[int, int]:
        low, high = value
        if not 1 <= low <= high <= 5:
            raise ValueError("must be [low, high] with 1 <= low <= high <= 5")
        return value

    def covers(self, recency: int, frequency: int) -> bool:
        """Whether the cell holds a customer with these scores."""
        return self.recency[0] <= recency <= self.recency[1] and self.frequency[0] <= frequency <= self.frequency[1]


def _default_cells() -> list[RfmCell]:
    cells = [
        ("champions", (4, 5), (4, 5)),
        ("loyal", (3, 3), (4, 5)),
        ("new_customers", (5, 5), (1, 1)),
        ("potential_loyalists", (4, 5), (1, 3)),
        ("need_attention", (3, 3), (3, 3)),
        ("about_to_sleep", (3, 3), (1, 2)),
        ("cannot_lose_them", (1, 1), (5, 5)),
        ("at_risk", (1, 2), (3, 5)),
        ("hibernating", (2, 2), (1, 2)),
        ("lost", (1, 1), (1, 2)),
    ]
    return [RfmCell(name=n, recency=r, frequency=f) for n, r, f in cells]


class RfmConfig(BaseModel):
    """RFM: scores 1-5 from fixed boundaries (not quintiles: a customer's score depends on them alone)."""

    model_config = ConfigDict(extra="forbid")

    window_days: int = Field(365, gt=0, description="Frequency and monetary count the activity of these last days.")
    recency_days: list[int] = Field(
        default_factory=lambda: [30, 90, 180, 365],
        description="Days since the last loan or purchase: up to the 1st -> 5, up to the 2nd -> 4, ..., beyond -> 1.",
    )
    frequency: list[int] = Field(
        default_factory=lambda: [2, 3, 5, 8],
        description="Loans + purchases in the window: at least the 4th -> 5, ..., at least the 1st -> 2, fewer -> 1.",
    )
    monetary_minor: list[int] = Field(
        default_factory=lambda: [50_000, 200_000, 500_000, 1_500_000],
        description="Interest paid + purchases in the window (minor units): at least the 4th -> 5, ..., fewer -> 1.",
    )
    cells: list[RfmCell] = Field(default_factory=_default_cells, description="First matching cell wins.")

    @field_validator("recency_days", "frequency", "monetary_minor")
    @classmethod
    def _bins(cls, value: list[int], info) -> list[int]:
        return _increasing(value, info.field_name)

    @model_validator(mode="after")
    def _every_score_has_a_cell(self) -> RfmConfig:
        names = [c.name for c in self.cells]
        if len(set(names)) != len(names):
            raise ValueError("cells: names must be unique")
        missing = [f"r{r}f{f}" for r in range(1, 6) for f in range(1, 6) if not any(c.covers(r, f) for c in self.cells)]
        if missing:
            raise ValueError(f"cells: no cell covers {', '.join(missing)}")
        return self


class SegmentsConfig(BaseModel):
    """`config/segments.yaml` (defaults from DOMAIN.md)."""

    model_config = ConfigDict(extra="forbid")

    approval_valid_days: int = Field(
        3, gt=0, description="An approval is valid this many days (day of approval included)."
    )
    pre_churn_days: int = Field(
        60,
        gt=0,
        description="Repeat customers without an open loan are pre-churn until this many days after the last repayment, then churn.",
    )
    deep_churn_days: int = Field(730, gt=0, description="No loan repaid for this many days ...")
    deep_churn_no_reaction_days: int = Field(
        730, gt=0, description="... and no opened or clicked message for this many days: deep churn."
    )
    retail_active_days: int = Field(
        365, gt=0, description="Active retail base: a completed purchase in these last days."
    )
    rfm: RfmConfig = Field(default_factory=RfmConfig)
    preference_min_delivered: int = Field(
        1, gt=0, description="A channel competes for the preferred channel from this many delivered messages."
    )

    @model_validator(mode="after")
    def _ordered(self) -> SegmentsConfig:
        if self.deep_churn_days <= self.pre_churn_days:
            raise ValueError("deep_churn_days must be larger than pre_churn_days")
        return self


def load_segments_config() -> SegmentsConfig:
    """The segments configuration (`config/segments.yaml`, defaults when absent)."""
    return load_config("segments", SegmentsConfig)
