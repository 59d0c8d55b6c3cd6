"""The closed lists of campaigns: audience triggers, groups, decisions and their reasons, exits."""

from __future__ import annotations

from enum import StrEnum


class Trigger(StrEnum):
    """What makes a customer enter a campaign on a business day."""

    REGISTERED = "registered"  # registered `days_after` days before
    APP_NOT_AUTHORISED = "app_not_authorised"  # installed the app `days_after` days before, no login by the day's end
    APPLICATION_ABANDONED = "application_abandoned"  # an application turned abandoned that day
    APPLICATION_APPROVED = "application_approved"  # an application was approved that day (and not taken yet)
    FIRST_LOAN_REPAID = "first_loan_repaid"  # the customer's first loan was repaid that day
    BIRTHDAY = "birthday"  # the birthday is `days_before` days ahead
    SEGMENT_ENTERED = "segment_entered"  # a segment entry event of that day (segments), e.g. pre_churn
    LOYALTY_EVENT = "loyalty_event"  # a loyalty event of that day (joined, tier_changed, ...)


class Group(StrEnum):
    """Which arm of a campaign's experiment a customer is in."""

    TREATMENT = "treatment"
    CONTROL = "control"


class Decision(StrEnum):
    """What planning decided for one candidate message."""

    PLANNED = "planned"
    SKIPPED = "skipped"


class Reason(StrEnum):
    """Why a candidate message was planned or skipped."""

    CONSENTED = "consented"  # planned: reachable on the channel
    NO_FREE_CHANNEL = "no_free_channel"  # planned on SMS: no cheaper channel of the cascade reachable
    CONTROL = "control"  # the customer is in the campaign's holdout
    NO_ADDRESS = "no_address"  # no contact on the channel at the end of as_of
    NO_CONSENT = "no_consent"  # the contact row says no consent
    UNSUBSCRIBED = "unsubscribed"  # a provider reported an unsubscribe newer than the contact row
    ENGAGED_EARLIER = "engaged_earlier"  # an earlier message of the cascade was opened or clicked
    CAPPED = "capped"  # the contact budget was already used up by earlier days
    OUTRANKED = "outranked"  # a higher-priority campaign (or step) took the last slot of the budget


SKIP_REASONS = (
    Reason.CONTROL,
    Reason.NO_ADDRESS,
    Reason.NO_CONSENT,
    Reason.UNSUBSCRIBED,
    Reason.ENGAGED_EARLIER,
    Reason.CAPPED,
    Reason.OUTRANKED,
)


class ExitReason(StrEnum):
    """Why a customer left a campaign."""

    CONVERTED = "converted"  # applied, took a loan or bought (the campaign's `exit_on`)
    COMPLETED = "completed"  # every step's cascade is over
    EXPIRED = "expired"  # `max_days` after entering (e.g. an approval valid 3 days)
    PURGED = "purged"  # archived out of the active base


class Conversion(StrEnum):
    """What counts as a conversion (exit rule, uplift, attribution)."""

    APPLICATION = "application"
    LOAN = "loan"
    ORDER = "order"
