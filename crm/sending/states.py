"""The closed lists of sending: message states, skip reasons, send outcomes, provider kinds."""

from __future__ import annotations

from enum import StrEnum


class MessageState(StrEnum):
    """Where a message of the outbox stands: the dispatch lifecycle, then what the provider reported."""

    PLANNED = "planned"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    SKIPPED = "skipped"
    DELIVERED = "delivered"
    BOUNCED = "bounced"
    OPENED = "opened"
    CLICKED = "clicked"


# States a delivery report may move forward (a skipped or planned message was never sent).
REPORTABLE_STATES = (
    MessageState.SENDING,
    MessageState.SENT,
    MessageState.FAILED,
    MessageState.DELIVERED,
    MessageState.BOUNCED,
    MessageState.OPENED,
    MessageState.CLICKED,
)


class SkipReason(StrEnum):
    """Why a planned message was not sent."""

    NO_ADDRESS = "no_address"  # no contact on the channel as of planning
    CONSENT_WITHDRAWN = "consent_withdrawn"  # the latest contact row says no consent
    UNSUBSCRIBED = "unsubscribed"  # a provider reported an unsubscribe the back end has not caught up with
    ADDRESS_CHANGED = "address_changed"  # the contact's address is not the one the message was planned with
    SEND_WINDOW_PASSED = "send_window_passed"  # quiet hours began again in the customer's zone before a dispatch ran


class SendOutcome(StrEnum):
    """What one dispatch attempt of one message ended with."""

    SENT = "sent"  # the provider accepted it (or acknowledged it as a duplicate of its idempotency key)
    REJECTED = "rejected"  # a permanent refusal (HTTP 4xx, SMTP 5xx): retrying cannot help
    UNAVAILABLE = "unavailable"  # retries exhausted on timeouts, 5xx, 429 or a lost connection


class ProviderKind(StrEnum):
    """How a provider is reached."""

    HTTP = "http"
    SMTP = "smtp"
    FILE = "file"


class Refusal(StrEnum):
    """Why a dispatch refused to send for a day."""

    GATE_CLOSED = "gate_closed"  # the day's data failed quality or reconciliation
    PAST_DAY = "past_day"  # the day is older than the newest ingested one (a backfill): never sent unless asked
