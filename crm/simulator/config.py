"""Settings of the simulated company: every rate is a field (defaults from DOMAIN.md)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from crm.core.contracts import Channel

Segment = Literal["lead", "active", "churned"]
SEGMENTS: tuple[str, ...] = ("lead", "active", "churned")


class Reaction(BaseModel):
    """How customers react to a campaign message they received: the world's true effect.

    A rule applies to messages of `campaign` (None = any), on `channel` (None = any), to customers
    in `segment` (the world's own view when the message arrives: `lead` never applied, `churned`
    went away, `active` otherwise; None = any). The first matching rule in `SimulationConfig.reactions`
    wins. Probabilities after `delivered` are conditional on delivery (clicked: on opening).
    """

    campaign: str | None = None
    channel: Channel | None = None
    segment: Segment | None = None
    delivered: float = Field(0.95, ge=0, le=1)
    opened: float = Field(0.25, ge=0, le=1)
    clicked: float = Field(0.20, ge=0, le=1, description="Share of openers who click.")
    unsubscribed: float = Field(0.005, ge=0, le=1)
    conversion_uplift: float = Field(
        0.03,
        ge=0,
        le=1,
        description="Probability that a delivered message makes the customer apply (borrowers, leads) or buy "
        "(retail customers) within `effect_days`, on top of what they would have done anyway.",
    )

    def matches(self, campaign: str, channel: str, segment: str) -> bool:
        """Whether this rule applies to a message of `campaign` on `channel` to a customer in `segment`."""
        return (
            (self.campaign is None or self.campaign == campaign)
            and (self.channel is None or self.channel == channel)
            and (self.segment is None or self.segment == segment)
        )


DEFAULT_REACTIONS: tuple[Reaction, ...] = (
    Reaction(channel=Channel.PUSH, segment="churned", opened=0.15, conversion_uplift=0.05),
    Reaction(channel=Channel.PUSH, opened=0.30, conversion_uplift=0.03),
    Reaction(channel=Channel.EMAIL, segment="churned", opened=0.12, conversion_uplift=0.04),
    Reaction(channel=Channel.EMAIL, opened=0.25, conversion_uplift=0.03),
    # SMS has no open tracking; a click on its link is the engagement a provider reports.
    Reaction(channel=Channel.SMS, segment="churned", opened=0.0, clicked=0.0, conversion_uplift=0.06),
    Reaction(channel=Channel.SMS, opened=0.0, clicked=0.0, conversion_uplift=0.04),
    Reaction(conversion_uplift=0.02),
)


class SimulationConfig(BaseModel):
    """Behaviour of the simulated lender + jewellery retailer."""

    # Reachability and consent (lender case: phone 60%, e-mail 40%, app push 15%).
    share_sms: float = Field(0.60, ge=0, le=1)
    share_email: float = Field(0.40, ge=0, le=1)
    share_push: float = Field(0.15, ge=0, le=1)
    consent_share: float = Field(0.92, ge=0, le=1)
    online_signup_share: float = Field(0.70, ge=0, le=1)
    technical_share: float = Field(0.001, ge=0, le=1)
    # Hidden traits.
    lead_share: float = Field(0.30, ge=0, le=1, description="Register and never apply.")
    retail_only_share: float = Field(0.15, ge=0, le=1)
    borrower_shopper_share: float = Field(0.25, ge=0, le=1, description="Borrowers who also shop (intersection).")
    bad_credit_share: float = Field(0.20, ge=0, le=1)
    # Applications.
    first_apply_hazard: float = Field(0.15, ge=0, le=1)
    return_apply_hazard: float = Field(0.06, ge=0, le=1, description="Right after a repayment; decays.")
    return_decay_days: float = Field(60.0, gt=0)
    reapply_after_reject_hazard: float = Field(0.01, ge=0, le=1)
    abandon_share: float = Field(0.25, ge=0, le=1)
    random_reject_share: float = Field(0.15, ge=0, le=1)
    take_share: float = Field(0.80, ge=0, le=1)
    approval_valid_days: int = Field(3, ge=1)
    # Loans (money in kopecks).
    principal_min_uah: int = 1_000
    principal_max_uah: int = 20_000
    daily_rate_bp_min: int = 50
    daily_rate_bp_max: int = 150
    term_days_min: int = 7
    term_days_max: int = 30
    on_time_share: float = Field(0.85, ge=0, le=1)
    late_share: float = Field(0.10, ge=0, le=1, description="The rest of the loans default.")
    late_days_max: int = 30
    write_off_after_days: int = 90
    # Churn: daily hazard base * (1 + days inactive / growth_days).
    churn_hazard: float = Field(0.002, ge=0, le=1)
    churn_growth_days: float = Field(30.0, gt=0)
    # Retail.
    orders_per_day: float = Field(1 / 30, ge=0)
    order_median_uah: float = 3_000
    return_share: float = Field(0.03, ge=0, le=1)
    # App and web events.
    app_open_probability: float = Field(0.5, ge=0, le=1)
    app_login_probability: float = Field(0.15, ge=0, le=1)
    web_visit_probability: float = Field(0.10, ge=0, le=1)
    # Transactional messages: payment reminder before the due date.
    reminder_days_before_due: int = 2
    delivered_share: float = Field(0.95, ge=0, le=1)
    opened_share_push: float = Field(0.30, ge=0, le=1)
    opened_share_email: float = Field(0.25, ge=0, le=1)
    clicked_share: float = Field(0.20, ge=0, le=1)
    unsubscribe_share: float = Field(0.005, ge=0, le=1)
    # Campaign messages received by providers (the file export's lists, a local provider's): how
    # customers react on the following days. The true effect of the world, readable for checks.
    reactions: list[Reaction] = Field(default_factory=lambda: list(DEFAULT_REACTIONS))
    effect_days: int = Field(14, ge=1, description="Caused conversions happen within this many days of the send.")
    # Writes to the source database are flushed every this many days (bounds memory).
    flush_every_days: int = Field(10, ge=1)

    def reaction_for(self, campaign: str, channel: str, segment: str) -> Reaction:
        """The rule the world applies to a message of `campaign` on `channel` to a customer in `segment`."""
        for rule in self.reactions:
            if rule.matches(campaign, channel, segment):
                return rule
        return Reaction(delivered=0.0, opened=0.0, clicked=0.0, unsubscribed=0.0, conversion_uplift=0.0)

    def expected_uplift(self, campaign: str, channel: str, segment: str, *, baseline_rate: float = 0.0) -> float:
        """The true uplift of sending: extra probability that a customer sent the message converts within `effect_days`.

        Equal to delivered x conversion_uplift for a count of caused conversions; for the share of
        customers converting at least once, pass the control group's rate in the window as
        `baseline_rate` (a customer who would have converted anyway cannot be converted again).
        """
        rule = self.reaction_for(campaign, channel, segment)
        return rule.delivered * rule.conversion_uplift * (1.0 - baseline_rate)


class FaultConfig(BaseModel):
    """Realistic faults to inject, for the data-quality work (0 / False switches a kind off)."""

    rate: float = Field(0.01, ge=0, le=0.5, description="Share of rows hit by each row-level fault kind.")
    duplicates: bool = True
    nulls: bool = True
    wrong_types: bool = True
    future_dates: bool = True
    unknown_customers: bool = True
    negative_amounts: bool = True
    malformed_file: bool = False
    dropped_status_share: float = Field(
        0.0, ge=0, le=1, description="Loans whose status changes never reach the export."
    )
