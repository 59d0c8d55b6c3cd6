"""`config/loyalty.yaml`: the programme's rules (tiers, cashback rates, bonuses, expiry, limits, promotions).

DOMAIN.md gives the shape of the pawnshop + jewellery programme but no figures; the defaults
below are this project's (every one is a setting). Money is integer minor units, rates are basis
points (1/100 of a percent), so no float ever decides a boundary.
"""

from __future__ import annotations

import hashlib
import json
from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from crm.core.config import load_config
from crm.core.contracts import PRODUCT_GROUPS

Bp = Field(ge=0, le=10_000)


class Tier(BaseModel):
    """One status: its entry threshold on qualifying activity and its cashback rates."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=32)
    threshold_minor: int = Field(ge=0, description="Qualifying activity over the window that enters the tier.")
    purchase_bp: int = Bp
    interest_bp: int = Bp


def _default_tiers() -> list[Tier]:
    return [
        Tier(name="bronze", threshold_minor=0, purchase_bp=200, interest_bp=300),
        Tier(name="silver", threshold_minor=5_000_000, purchase_bp=400, interest_bp=500),
        Tier(name="gold", threshold_minor=15_000_000, purchase_bp=700, interest_bp=800),
    ]


class Promotion(BaseModel):
    """A promotion on retail orders: extra (short-lived) cashback, arbitrated by priority and margin floor."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=64)
    priority: int = Field(ge=0, description="Lower comes first.")
    cashback_bp: int = Bp
    start: date
    end: date
    product_groups: list[str] = Field(default_factory=lambda: list(PRODUCT_GROUPS))
    sales_channels: list[Literal["online", "store"]] = Field(default_factory=lambda: ["online", "store"])
    min_amount_minor: int = Field(0, ge=0)

    @model_validator(mode="after")
    def _valid(self) -> Promotion:
        if self.end < self.start:
            raise ValueError(f"promotion {self.id}: end {self.end} before start {self.start}")
        unknown = set(self.product_groups) - set(PRODUCT_GROUPS)
        if unknown:
            raise ValueError(f"promotion {self.id}: unknown product groups {sorted(unknown)}")
        return self


class TierPromotion(BaseModel):
    """A promotion that speeds tier progress: qualifying activity posted in the period counts `multiplier_bp`/10,000."""

    model_config = ConfigDict(extra="forbid")

    start: date
    end: date
    multiplier_bp: int = Field(20_000, ge=10_000, le=100_000)


def _default_margins() -> dict[str, int]:
    return {"gold": 2_500, "silver": 3_500, "diamonds": 3_000, "watches": 2_000, "pawn_redemption": 1_500}


class LoyaltyConfig(BaseModel):
    """`config/loyalty.yaml`: every rule of the programme."""

    model_config = ConfigDict(extra="forbid")

    tiers: list[Tier] = Field(default_factory=_default_tiers, min_length=1)
    window_days: int = Field(365, gt=0, description="Rolling window of qualifying activity for the tier.")
    welcome_bonus_minor: dict[Literal["online", "offline"], int] = Field(
        default_factory=lambda: {"online": 50_000, "offline": 30_000}
    )
    welcome_from: date | None = Field(None, description="Only members registered on or after it get a welcome bonus.")
    birthday_bonus_minor: int = Field(20_000, ge=0)
    leap_birthday_on: Literal["feb28", "mar1"] = "feb28"
    expiry_days: int = Field(365, gt=0, description="Standard cashback expires this many days after posting.")
    promo_expiry_days: int = Field(30, gt=0, description="Short-lived cashback: birthday bonus and promotions.")
    redemption_limit_bp: int = Field(3_000, ge=0, le=10_000, description="Share of a purchase payable with cashback.")
    repayment_redemption_limit_bp: int = Field(
        0,
        ge=0,
        le=10_000,
        description="Share of a loan repayment (principal or interest) payable with cashback, derived like "
        "`redeem_at_checkout`; 0: cashback never pays repayments (set it when the back end applies it).",
    )
    redeem_at_checkout: bool = Field(
        True,
        description="The source has no redemption field: a purchase uses the balance up to the limit (derived).",
    )
    downgrade_steps: int = Field(
        1, ge=0, description="Tiers lost while a written-off loan (pledge not redeemed) counts."
    )
    downgrade_days: int = Field(180, ge=0)
    tier_promotion: TierPromotion | None = None
    promotions: list[Promotion] = Field(default_factory=list)
    product_margin_bp: dict[str, int] = Field(default_factory=_default_margins)
    margin_floor_bp: int = Field(1_000, ge=0, le=10_000)
    include_internal_accounts: bool = Field(
        False, description="Customers flagged is_technical in the source (internal accounts) are not members."
    )
    expiring_notice_days: int = Field(30, gt=0, description="cashback_expiring events this many days ahead.")
    report_days: int = Field(30, gt=0, description="Days shown per-day in the reports; the migration matrix span.")

    @model_validator(mode="after")
    def _valid(self) -> LoyaltyConfig:
        names = [t.name for t in self.tiers]
        if len(set(names)) != len(names):
            raise ValueError(f"tiers: names repeat ({names})")
        thresholds = [t.threshold_minor for t in self.tiers]
        if thresholds[0] != 0 or thresholds != sorted(set(thresholds)):
            raise ValueError("tiers: thresholds must start at 0 and rise strictly")
        ids = [p.id for p in self.promotions]
        if len(set(ids)) != len(ids):
            raise ValueError("promotions: ids repeat")
        unknown = set(self.product_margin_bp) - set(PRODUCT_GROUPS)
        if unknown:
            raise ValueError(f"product_margin_bp: unknown product groups {sorted(unknown)}")
        return self

    @property
    def tier_names(self) -> list[str]:
        """Tier names, lowest first."""
        return [t.name for t in self.tiers]

    def rules_hash(self) -> str:
        """A stable hash of the rules (recorded with each run, so a what-if or a rule change is traceable)."""
        return hashlib.sha256(json.dumps(self.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()[:16]


def load_loyalty_config() -> LoyaltyConfig:
    """The programme's rules (`config/loyalty.yaml`, defaults when absent)."""
    return load_config("loyalty", LoyaltyConfig)


def load_rules_file(path: str) -> LoyaltyConfig:
    """A what-if rule set from any YAML file (errors name the file and the field)."""
    from pathlib import Path

    import yaml
    from pydantic import ValidationError

    from crm.core.config import ConfigError, _field_errors

    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"--rules: the file {file} does not exist")
    try:
        data = yaml.safe_load(file.read_text()) or {}
        return LoyaltyConfig.model_validate(data)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{file}: not valid YAML ({exc})") from exc
    except ValidationError as exc:
        raise ConfigError(f"{file}: {_field_errors(exc)}") from exc
