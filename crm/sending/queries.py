"""SQL of sending, built but not executed: claims, the consent recheck, results, delivery reports, the funnel."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta

from sqlalchemy import (
    Column,
    DateTime,
    MetaData,
    String,
    Table,
    and_,
    bindparam,
    case,
    exists,
    func,
    literal,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.sql import Select, Update

from crm.core.contracts import MessageEventType
from crm.core.dates import end_of
from crm.sending.states import REPORTABLE_STATES, MessageState, SkipReason
from models.ingest import ingest_batches, staging
from models.sending import outbox

contacts = staging["customer_contacts"]
events = staging["message_events"]

# What a claim hands to the provider.
CLAIMED_COLUMNS = (
    "message_id",
    "as_of",
    "campaign_id",
    "step",
    "wave",
    "customer_id",
    "channel",
    "template_id",
    "params",
    "address",
    "attempts",
)


def claim_chunk(
    *,
    dialect: str,
    run_id: str,
    provider: str,
    channels: Sequence[str],
    as_of: date,
    now: datetime,
    limit: int,
    stale: bool,
    live: bool = False,
) -> Update:
    """Move up to `limit` messages to `sending` under `run_id` and return them (one statement, one transaction).

    `stale=False`: planned messages of the dispatch's days (`dispatch_days`) whose send window is
    open at `now` (quiet hours over, and, in a live run, not over again: `not_after`).
    `stale=True`: messages left in `sending` by an earlier, dead attempt (any day up to `as_of`),
    claimed again under the same message id.
    """
    if stale:
        where = [
            outbox.c.state == MessageState.SENDING.value,
            outbox.c.as_of <= as_of,
            or_(outbox.c.run_id.is_(None), outbox.c.run_id != run_id),
        ]
    else:
        where = [
            outbox.c.state == MessageState.PLANNED.value,
            outbox.c.as_of.in_(dispatch_days(as_of, live)),
            or_(outbox.c.not_before.is_(None), outbox.c.not_before <= now),
        ]
        if live:
            where.append(or_(outbox.c.not_after.is_(None), outbox.c.not_after > now))
    # No ORDER BY: sorting every remaining planned message of the day for each chunk made claims
    # quadratic in the day's volume; the claimed chunk is sorted by the caller instead.
    candidates = select(outbox.c.message_id).where(outbox.c.channel.in_(list(channels)), *where).limit(limit)
    if dialect == "postgresql":
        # A second dispatcher that slipped past the provider lock skips rows being claimed instead of re-claiming
        # them; MATERIALIZED makes PostgreSQL pick the rows once (a re-scanned LIMIT subquery can pick more).
        picked = candidates.with_for_update(skip_locked=True).cte("picked").prefix_with("MATERIALIZED")
        chosen = outbox.c.message_id == picked.c.message_id
    else:
        chosen = outbox.c.message_id.in_(candidates.scalar_subquery())
    return (
        update(outbox)
        .where(chosen, *where[:1])
        .values(
            state=MessageState.SENDING.value,
            run_id=run_id,
            provider=provider,
            attempts=outbox.c.attempts + 1,
            claimed_at=now,
        )
        .returning(*[outbox.c[c] for c in CLAIMED_COLUMNS])
    )


def record_sent(run_id: str) -> Update:
    """Mark messages accepted (bind `ids` as an expanding list, `at`), only while this run still holds them."""
    return (
        update(outbox)
        .where(
            outbox.c.message_id.in_(bindparam("ids", expanding=True)),
            outbox.c.run_id == run_id,
            outbox.c.state == MessageState.SENDING.value,
        )
        .values(state=MessageState.SENT.value, sent_at=bindparam("at"), last_error=None)
    )


def record_failed(run_id: str) -> Update:
    """Mark one message failed (executemany over `b_id`, `b_at`, `b_error`), only while this run holds it."""
    return (
        update(outbox)
        .where(
            outbox.c.message_id == bindparam("b_id"),
            outbox.c.run_id == run_id,
            outbox.c.state == MessageState.SENDING.value,
        )
        .values(state=MessageState.FAILED.value, failed_at=bindparam("b_at"), last_error=bindparam("b_error"))
    )


def dispatch_days(as_of: date, live: bool) -> list[date]:
    """The planning days whose messages a dispatch of `as_of` sends.

    A live run (on the days after `as_of`, when its scheduled runs happen) also sends what the
    day before left waiting for the end of quiet hours in a zone far west of the business zone,
    inside its send window; a replay of a past day sends that day's messages only.
    """
    return [as_of - timedelta(days=1), as_of] if live else [as_of]


def expire_windows(as_of: date, channels: Sequence[str], now: datetime) -> Update:
    """Skip (`send_window_passed`) planned messages, up to `as_of`, whose send window closed before `now`.

    Quiet hours began again in the customer's zone before any dispatch could send them: sending
    now would wake the customer, and waiting would leave them planned for ever.
    """
    return (
        update(outbox)
        .where(
            outbox.c.state == MessageState.PLANNED.value,
            outbox.c.as_of <= as_of,
            outbox.c.channel.in_(list(channels)),
            outbox.c.not_after.is_not(None),
            outbox.c.not_after <= now,
        )
        .values(state=MessageState.SKIPPED.value, skip_reason=SkipReason.SEND_WINDOW_PASSED.value, skipped_at=now)
    )


def _recheck_base(as_of: date, channels: Sequence[str], live: bool = False) -> list:
    # Only first attempts: a message re-claimed after a kill may already have reached the customer.
    return [
        outbox.c.state == MessageState.PLANNED.value,
        outbox.c.as_of.in_(dispatch_days(as_of, live)),
        outbox.c.attempts == 0,
        outbox.c.channel.in_(list(channels)),
    ]


def _same_contact(table) -> list:
    return [table.c.customer_id == outbox.c.customer_id, table.c.channel == outbox.c.channel]


def skip_for(reason: SkipReason, as_of: date, channels: Sequence[str], now: datetime, live: bool = False) -> Update:
    """Skip still-planned messages whose latest contact data no longer allows them, with `reason`.

    Applied in order: consent_withdrawn (no consented contact row), unsubscribed (a provider
    reported an unsubscribe newer than the contact row), address_changed (another address).
    """
    consented = exists(select(literal(1)).where(*_same_contact(contacts), contacts.c.is_consented == true()))
    if reason is SkipReason.CONSENT_WITHDRAWN:
        condition = ~consented
    elif reason is SkipReason.UNSUBSCRIBED:
        condition = exists(
            select(literal(1))
            .select_from(
                events.join(
                    contacts,
                    and_(events.c.customer_id == contacts.c.customer_id, events.c.channel == contacts.c.channel),
                )
            )
            .where(
                *_same_contact(events),
                events.c.event_type == MessageEventType.UNSUBSCRIBED.value,
                events.c.occurred_at >= contacts.c.updated_at,
            )
        )
    elif reason is SkipReason.ADDRESS_CHANGED:
        condition = exists(select(literal(1)).where(*_same_contact(contacts), contacts.c.address != outbox.c.address))
    else:
        raise ValueError(f"{reason} is decided at planning, not at dispatch")
    return (
        update(outbox)
        .where(*_recheck_base(as_of, channels, live), condition)
        .values(state=MessageState.SKIPPED.value, skip_reason=reason.value, skipped_at=now)
    )


RECHECK_ORDER = (SkipReason.CONSENT_WITHDRAWN, SkipReason.UNSUBSCRIBED, SkipReason.ADDRESS_CHANGED)


def count_waiting(as_of: date, channels: Sequence[str], live: bool = False) -> Select:
    """Messages of the dispatch's days still planned (quiet hours not over yet)."""
    return select(func.count()).where(
        outbox.c.state == MessageState.PLANNED.value,
        outbox.c.as_of.in_(dispatch_days(as_of, live)),
        outbox.c.channel.in_(list(channels)),
    )


def newest_ingested_day() -> Select:
    """The newest business day the warehouse has ingested (what "past" is measured against)."""
    return select(func.max(ingest_batches.c.as_of))


# --------------------------------------------------------------------------- delivery reports

# Report event -> the outbox column it fills (the earliest report wins).
REPORT_COLUMNS: dict[str, str] = {
    MessageEventType.SENT.value: "sent_at",
    MessageEventType.DELIVERED.value: "delivered_at",
    MessageEventType.FAILED.value: "bounced_at",
    MessageEventType.OPENED.value: "opened_at",
    MessageEventType.CLICKED.value: "clicked_at",
    MessageEventType.UNSUBSCRIBED.value: "unsubscribed_at",
}


def reports_table(name: str) -> Table:
    """A temporary table of the reports to apply: earliest time per message and event type."""
    return Table(
        name,
        MetaData(),
        Column("message_id", String(64), primary_key=True),
        Column("event_type", String(16), primary_key=True),
        Column("reported_at", DateTime, nullable=False),
        prefixes=["TEMPORARY"],
    )


def select_reports(since: date, as_of: date) -> Select:
    """Reports ingested from `since` to `as_of` about outbox messages, earliest per message and event type."""
    return (
        select(events.c.message_id, events.c.event_type, func.min(events.c.occurred_at))
        .where(
            events.c.ingested_on >= since,
            events.c.ingested_on <= as_of,
            events.c.occurred_at < end_of(as_of),
            events.c.event_type.in_(list(REPORT_COLUMNS)),
            events.c.message_id.in_(select(outbox.c.message_id)),
        )
        .group_by(events.c.message_id, events.c.event_type)
    )


def apply_report(reports: Table, event_type: str) -> Update:
    """Fill one report timestamp of the outbox from `reports` (earliest wins; a stored time is only moved earlier)."""
    column = outbox.c[REPORT_COLUMNS[event_type]]
    reported = (
        select(reports.c.reported_at)
        .where(reports.c.message_id == outbox.c.message_id, reports.c.event_type == event_type)
        .scalar_subquery()
    )
    return (
        update(outbox)
        .where(
            outbox.c.message_id.in_(select(reports.c.message_id).where(reports.c.event_type == event_type)),
            or_(column.is_(None), column > reported),
        )
        .values({column.name: reported})
    )


def advance_states(reports: Table) -> Update:
    """Move reported messages to the furthest state their timestamps show (clicked > opened > delivered > bounced > sent)."""
    o = outbox.c
    return (
        update(outbox)
        .where(o.message_id.in_(select(reports.c.message_id)), o.state.in_([s.value for s in REPORTABLE_STATES]))
        .values(
            state=case(
                (o.clicked_at.is_not(None), MessageState.CLICKED.value),
                (o.opened_at.is_not(None), MessageState.OPENED.value),
                (o.delivered_at.is_not(None), MessageState.DELIVERED.value),
                (o.bounced_at.is_not(None), MessageState.BOUNCED.value),
                (o.sent_at.is_not(None), MessageState.SENT.value),
                else_=o.state,
            )
        )
    )


# --------------------------------------------------------------------------- the funnel


def funnel(start: date, end: date) -> Select:
    """Per planned day, campaign, step and channel: messages by state and report, and the spend on sent ones."""
    o = outbox.c

    def n(condition) -> object:
        return func.sum(case((condition, 1), else_=0))

    was_sent = o.sent_at.is_not(None)
    return (
        select(
            o.as_of,
            o.campaign_id,
            o.step,
            o.channel,
            func.count().label("messages"),
            n(o.state == MessageState.PLANNED.value).label("planned"),
            n(o.state == MessageState.SENDING.value).label("sending"),
            n(was_sent).label("sent"),
            n(o.state == MessageState.FAILED.value).label("failed"),
            n(o.state == MessageState.SKIPPED.value).label("skipped"),
            n(o.delivered_at.is_not(None)).label("delivered"),
            n(o.bounced_at.is_not(None)).label("bounced"),
            n(o.opened_at.is_not(None)).label("opened"),
            n(o.clicked_at.is_not(None)).label("clicked"),
            n(o.unsubscribed_at.is_not(None)).label("unsubscribed"),
            n(o.attempts > 1).label("resent"),
            func.sum(case((was_sent, o.cost_minor), else_=0)).label("cost_minor"),
        )
        .where(o.as_of >= start, o.as_of <= end)
        .group_by(o.as_of, o.campaign_id, o.step, o.channel)
        .order_by(o.as_of, o.campaign_id, o.step, o.channel)
    )


def skip_reasons(start: date, end: date) -> Select:
    """Skipped messages per planned day, campaign, step, channel and reason."""
    o = outbox.c
    return (
        select(o.as_of, o.campaign_id, o.step, o.channel, o.skip_reason, func.count().label("messages"))
        .where(o.as_of >= start, o.as_of <= end, o.state == MessageState.SKIPPED.value)
        .group_by(o.as_of, o.campaign_id, o.step, o.channel, o.skip_reason)
        .order_by(o.as_of, o.campaign_id, o.step, o.channel, o.skip_reason)
    )
