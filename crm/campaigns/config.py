"""Campaigns as configuration: `campaigns/*.yaml` (one campaign a file) and `config/campaigns.yaml` (shared rules).

Both are typed and validated on load; an error names the file and the field. Every default is
a number of DOMAIN.md ("Campaigns and sends").
"""

from __future__ import annotations

import os
from datetime import date, time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from crm.campaigns.states import Conversion, Trigger
from crm.core.config import ConfigError, _field_errors, load_config
from crm.core.contracts import Channel

CAMPAIGNS_DIR = Path(__file__).resolve().parents[2] / "campaigns"
_ID = r"^[a-z0-9][a-z0-9-]{0,47}$"
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when built with it: 10x faster


class Audience(BaseModel):
    """Who enters: a trigger of the day, then filters on the segment snapshot and churn scores."""

    trigger: Trigger
    days_after: int = Field(
        0, ge=0, le=3650, description="registered / app_not_authorised / abandoned / approved / repaid: days after."
    )
    days_before: int = Field(33, ge=0, le=366, description="birthday: days before the birthday.")
    segments: list[str] = Field(default_factory=list, description="segment_entered: segments entered that day.")
    loyalty_events: list[str] = Field(default_factory=list, description="loyalty_event: event kinds.")
    lifecycle_states: list[str] = Field(default_factory=list, description="Filter: lifecycle state (segments).")
    rfm_cells: list[str] = Field(
        default_factory=list, description="Filter: RFM cells (segments: champions, at_risk...)."
    )
    churn_deciles: list[int] = Field(default_factory=list, description="Filter: churn-risk deciles, 1 = highest.")

    @model_validator(mode="after")
    def _trigger_needs(self) -> Audience:
        if self.trigger is Trigger.SEGMENT_ENTERED and not self.segments:
            raise ValueError("trigger segment_entered needs `segments`")
        if self.trigger is Trigger.LOYALTY_EVENT and not self.loyalty_events:
            raise ValueError("trigger loyalty_event needs `loyalty_events`")
        if any(not 1 <= d <= 10 for d in self.churn_deciles):
            raise ValueError("churn_deciles are 1..10")
        return self


class Step(BaseModel):
    """One touch of the chain: `day` after entering, a cascade of channels one `wait_days` apart."""

    day: int = Field(ge=0, le=3650, description="Days after entering.")
    cascade: list[Channel] = Field(min_length=1, description="Channels, cheapest first; later ones only if needed.")
    wait_days: int = Field(1, ge=1, le=30, description="Days between two channels of the cascade.")
    template_id: str = Field(min_length=1, max_length=64)
    params: dict[str, Any] = Field(default_factory=dict, description="Template parameters (promo codes); no contacts.")

    @field_validator("cascade")
    @classmethod
    def _distinct(cls, value: list[Channel]) -> list[Channel]:
        if len(set(value)) != len(value):
            raise ValueError("a channel appears twice in the cascade")
        return value

    @property
    def span(self) -> int:
        """Days from the step's first channel to its last."""
        return (len(self.cascade) - 1) * self.wait_days


class Purge(BaseModel):
    """Deep-churn purge: after the waves, non-responders (and rejected applicants) leave the active base."""

    after_days: int = Field(60, ge=1, le=3650, description="Days after entering: archive who did not convert.")
    rejected_applicants: bool = Field(True, description="Archive customers whose every application was rejected too.")
    rejected_after_days: int = Field(60, ge=1, le=3650, description="Days since their last (rejected) application.")


class Campaign(BaseModel):
    """One campaign file, `campaigns/<id>.yaml`."""

    id: str = Field(pattern=_ID)
    version: int = Field(1, ge=1)
    description: str = ""
    enabled: bool = True
    priority: int = Field(100, ge=1, le=1000, description="1 = most important: it takes a contested slot first.")
    holdout_share: float = Field(0.10, ge=0, lt=1, description="Random control group that receives nothing.")
    audience: Audience
    exit_on: list[Conversion] = Field(default_factory=lambda: [Conversion.APPLICATION, Conversion.ORDER])
    max_days: int | None = Field(None, ge=1, le=3650, description="Entry expires after this many days.")
    reentry_after_days: int | None = Field(
        None, ge=1, le=3650, description="May enter again this many days after entering; null: once."
    )
    steps: list[Step] = Field(min_length=1)
    prices: dict[Channel, int] = Field(default_factory=dict, description="Price per message override (minor units).")
    purge: Purge | None = None

    @field_validator("steps")
    @classmethod
    def _ordered(cls, value: list[Step]) -> list[Step]:
        days = [s.day for s in value]
        if days != sorted(days):
            raise ValueError("steps must be in order of `day`")
        if len(value) > 99:
            raise ValueError("at most 99 steps")
        return value

    @property
    def last_day(self) -> int:
        """Days after entering when the last touch of the last step is due."""
        return max(s.day + s.span for s in self.steps)


class SpecialEvent(BaseModel):
    """Days when the contact frequency may rise (a sale, a holiday): the budget's limits replaced."""

    name: str
    start: date
    end: date
    messages: int = Field(ge=0, le=1000)
    per_day: int = Field(ge=0, le=100)

    @model_validator(mode="after")
    def _ordered(self) -> SpecialEvent:
        if self.end < self.start:
            raise ValueError("end is before start")
        return self


class ContactBudget(BaseModel):
    """Fatigue: messages per customer over a rolling window, across all campaigns."""

    messages: int = Field(4, ge=0, le=1000, description="Messages per customer per `days`.")
    days: int = Field(7, ge=1, le=366)
    per_channel: dict[Channel, int] = Field(default_factory=lambda: {Channel.SMS: 2})
    per_day: int = Field(2, ge=0, le=100, description="Messages per customer on one day.")
    special_events: list[SpecialEvent] = Field(default_factory=list)

    def for_day(self, as_of: date) -> ContactBudget:
        """The budget in force on `as_of` (a special event's limits on its days)."""
        for event in self.special_events:
            if event.start <= as_of <= event.end:
                return self.model_copy(update={"messages": event.messages, "per_day": event.per_day})
        return self


class QuietHours(BaseModel):
    """No message between `start` and `end` in the customer's time zone: it waits until `end`."""

    start: time = time(21, 0)
    end: time = time(9, 0)
    send_at: time = Field(
        time(2, 0), description="When the night's dispatch sends (business time zone, the day after as_of)."
    )


class Uplift(BaseModel):
    """Experiment reading."""

    attribution_window_days: int = Field(30, ge=1, le=366, description="Last click within this many days.")
    alpha: float = Field(0.05, gt=0, lt=0.5)
    power: float = Field(0.80, gt=0.5, lt=1)
    minimum_effect: float = Field(0.01, gt=0, lt=1, description="Absolute conversion uplift to detect.")
    report_days: int = Field(90, ge=1, le=3650, description="Uplift reports cover entries of this many days.")


class LifecycleFallback(BaseModel):
    """segment_entered without the segments tables: days since the last repayment, nothing since."""

    pre_churn_days: int = Field(30, ge=1)
    churn_days: int = Field(60, ge=1)
    deep_churn_days: int = Field(730, ge=1)


class CampaignsConfig(BaseModel):
    """`config/campaigns.yaml`: rules shared by every campaign."""

    budget: ContactBudget = ContactBudget()
    quiet_hours: QuietHours = QuietHours()
    uplift: Uplift = Uplift()
    default_timezone: str | None = Field(None, description="Customers' zone when no rule matches; null: business.")
    timezone_by_phone_prefix: dict[str, str] = Field(
        default_factory=lambda: {"+380": "Europe/Kyiv"},
        description="The customer's zone from the country code of the SMS contact.",
    )
    lifecycle_fallback: LifecycleFallback = LifecycleFallback()

    @field_validator("timezone_by_phone_prefix")
    @classmethod
    def _zones(cls, value: dict[str, str]) -> dict[str, str]:
        for zone in value.values():
            _check_zone(zone)
        return value

    @field_validator("default_timezone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        return None if value is None else _check_zone(value)


def _check_zone(zone: str) -> str:
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {zone!r}") from None
    return zone


def load_campaigns_config() -> CampaignsConfig:
    """The shared campaign rules from `config/campaigns.yaml` (defaults when absent)."""
    return load_config("campaigns", CampaignsConfig)


def campaigns_dir() -> Path:
    """The folder of campaign files (`CRM_CAMPAIGNS_DIR`, default `campaigns/` in the repo)."""
    return Path(os.environ.get("CRM_CAMPAIGNS_DIR", CAMPAIGNS_DIR))


def load_campaign_file(path: Path) -> Campaign:
    """One campaign file, validated; the id must be the file's name."""
    try:
        data = yaml.load(path.read_text(), Loader=_LOADER) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: (top level): expected a mapping of fields")
    try:
        campaign = Campaign.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{path}: {_field_errors(exc)}") from exc
    if campaign.id != path.stem:
        raise ConfigError(f"{path}: id: must be the file's name {path.stem!r} (got {campaign.id!r})")
    return campaign


def load_campaigns(folder: Path | None = None, *, enabled_only: bool = True) -> list[Campaign]:
    """Every campaign of the folder, by priority then id."""
    folder = folder or campaigns_dir()
    if not folder.is_dir():
        raise ConfigError(f"CRM_CAMPAIGNS_DIR: the folder {folder} does not exist; check the path")
    campaigns = [load_campaign_file(p) for p in sorted(folder.glob("*.yaml"))]
    if enabled_only:
        campaigns = [c for c in campaigns if c.enabled]
    return sorted(campaigns, key=lambda c: (c.priority, c.id))
