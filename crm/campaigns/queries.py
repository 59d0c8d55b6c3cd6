"""SQLAlchemy statements of campaign planning (built, not executed): audiences through the warehouse history,
conversions, engagement, the budget window, entries."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta

from sqlalchemy import Select, and_, case, func, literal, or_, select, union_all

from crm.campaigns.states import Conversion, Decision, ExitReason, Group
from crm.core.contracts import (
    AppEventType,
    ApplicationStatus,
    LoanStatus,
    MessageEventType,
    OrderStatus,
    PaymentType,
)
from crm.core.dates import end_of, start_of
from crm.ingest import rows_as_of
from crm.segments import out_of_base_on
from crm.sending import MessageState
from models.campaigns import campaign_decisions, campaign_entries, purged_customers
from models.sending import outbox


def _sub(entity: str, as_of: date, name: str):
    return rows_as_of(entity, as_of).subquery(name)


def customers_registered_on(as_of: date, day: date) -> Select:
    """Customers (not technical) registered on `day`, as the warehouse stood at the end of `as_of`."""
    c = _sub("customers", as_of, "c")
    return select(c.c.customer_id).where(
        c.c.registered_at >= start_of(day), c.c.registered_at < end_of(day), c.c.is_technical.is_(False)
    )


def installed_not_authorised(as_of: date, day: date) -> Select:
    """Customers who installed the app on `day` and had not logged in (authorised) by the end of `as_of`."""
    events = _sub("app_events", as_of, "e")
    logins = _sub("app_events", as_of, "l")
    logged_in = (
        select(logins.c.customer_id)
        .where(logins.c.customer_id == events.c.customer_id, logins.c.event_type == AppEventType.LOGIN.value)
        .exists()
    )
    return (
        select(events.c.customer_id)
        .where(
            events.c.event_type == AppEventType.APP_INSTALL.value,
            events.c.occurred_at >= start_of(day),
            events.c.occurred_at < end_of(day),
            ~logged_in,
        )
        .distinct()
    )


def customers_with_birthdays(as_of: date, dialect: str, month_days: Sequence[str]) -> Select:
    """Customers (not technical) whose birth date's month and day ('MM-DD') is one of `month_days`, as of the day."""
    c = _sub("customers", as_of, "c")
    if dialect == "postgresql":
        month_day = func.to_char(c.c.birth_date, "MM-DD")
    else:
        month_day = func.strftime("%m-%d", c.c.birth_date)
    return select(c.c.customer_id, c.c.birth_date).where(
        c.c.birth_date.is_not(None), c.c.is_technical.is_(False), month_day.in_(list(month_days))
    )


def technical_customers(as_of: date) -> Select:
    """Internal accounts (never contacted)."""
    c = _sub("customers", as_of, "c")
    return select(c.c.customer_id).where(c.c.is_technical.is_(True))


def applications_changed_to(as_of: date, status: ApplicationStatus, day: date, *, still: bool) -> Select:
    """Customers whose application turned `status` on `day`; with `still`, only if it still has it at the end of `as_of`."""
    changes = _sub("application_status_changes", as_of, "s")
    apps = _sub("loan_applications", as_of, "a")
    stmt = (
        select(apps.c.customer_id)
        .join(changes, changes.c.application_id == apps.c.application_id)
        .where(
            changes.c.status == status.value, changes.c.changed_at >= start_of(day), changes.c.changed_at < end_of(day)
        )
    )
    if still:
        stmt = stmt.where(apps.c.status == status.value)
    return stmt.distinct()


def first_loan_repaid_on(as_of: date, day: date) -> Select:
    """Customers whose first repaid loan was closed on `day`."""
    loans = _sub("loans", as_of, "l")
    first = func.min(loans.c.closed_at)
    return (
        select(loans.c.customer_id)
        .where(loans.c.status == LoanStatus.REPAID.value, loans.c.closed_at.is_not(None))
        .group_by(loans.c.customer_id)
        .having(and_(first >= start_of(day), first < end_of(day)))
    )


def inactive_since_repayment(as_of: date, days: int) -> Select:
    """Fallback lifecycle entry: the last loan was repaid exactly `days` days ago, no loan or application since."""
    loans = _sub("loans", as_of, "l")
    apps = _sub("loan_applications", as_of, "a")
    day = as_of - timedelta(days=days)
    last_closed = (
        select(loans.c.customer_id, func.max(loans.c.closed_at).label("closed_at"))
        .where(loans.c.status == LoanStatus.REPAID.value)
        .group_by(loans.c.customer_id)
        .subquery("r")
    )
    later_loan = select(loans.c.customer_id).where(
        or_(
            loans.c.status.in_((LoanStatus.ACTIVE.value, LoanStatus.OVERDUE.value)),
            loans.c.issued_at >= last_closed.c.closed_at,
        ),
        loans.c.customer_id == last_closed.c.customer_id,
    )
    later_app = select(apps.c.customer_id).where(
        apps.c.created_at >= last_closed.c.closed_at, apps.c.customer_id == last_closed.c.customer_id
    )
    return select(last_closed.c.customer_id).where(
        last_closed.c.closed_at >= start_of(day),
        last_closed.c.closed_at < end_of(day),
        ~later_loan.exists(),
        ~later_app.exists(),
    )


def rejected_applicants(as_of: date, last_before: date) -> Select:
    """Customers whose every application was rejected, the last one (`last_applied_at`) created before `last_before`."""
    apps = _sub("loan_applications", as_of, "a")
    rejected = func.sum(case((apps.c.status == ApplicationStatus.REJECTED.value, 1), else_=0))
    last = func.max(apps.c.created_at)
    return (
        select(apps.c.customer_id, last.label("last_applied_at"))
        .group_by(apps.c.customer_id)
        .having(rejected == func.count(), last < start_of(last_before))
    )


def restored_by(as_of: date) -> Select:
    """Customers brought back into the active base by `as_of` (`crm campaigns restore`), with their latest restore."""
    p = purged_customers
    return (
        select(p.c.customer_id, func.max(p.c.restored_on).label("restored_on"))
        .where(p.c.restored_on.is_not(None), p.c.restored_on <= as_of)
        .group_by(p.c.customer_id)
    )


def contacts_as_of(as_of: date) -> Select:
    """Contacts and consent at the end of the day."""
    return rows_as_of("customer_contacts", as_of)


def unsubscribes_as_of(as_of: date) -> Select:
    """Providers' unsubscribe reports known by the end of the day."""
    events = _sub("message_events", as_of, "e")
    return select(events.c.customer_id, events.c.channel, events.c.occurred_at).where(
        events.c.event_type == MessageEventType.UNSUBSCRIBED.value
    )


def conversions(as_of: date, kinds: Sequence[Conversion], since: date) -> Select:
    """Conversion events known by the end of `as_of`, from `since`: customer_id, kind, at, revenue_minor."""
    parts = []
    if Conversion.APPLICATION in kinds:
        a = _sub("loan_applications", as_of, "a")
        parts.append(
            select(
                a.c.customer_id,
                literal(Conversion.APPLICATION.value).label("kind"),
                a.c.created_at.label("at"),
                literal(0).label("revenue_minor"),
            ).where(a.c.created_at >= start_of(since))
        )
    if Conversion.LOAN in kinds:
        lo = _sub("loans", as_of, "l")
        parts.append(
            select(
                lo.c.customer_id,
                literal(Conversion.LOAN.value).label("kind"),
                lo.c.issued_at.label("at"),
                literal(0).label("revenue_minor"),
            ).where(lo.c.issued_at >= start_of(since))
        )
    if Conversion.ORDER in kinds:
        o = _sub("orders", as_of, "o")
        parts.append(
            select(
                o.c.customer_id,
                literal(Conversion.ORDER.value).label("kind"),
                o.c.ordered_at.label("at"),
                o.c.amount_minor.label("revenue_minor"),
            ).where(o.c.ordered_at >= start_of(since), o.c.status == OrderStatus.COMPLETED.value)
        )
    return union_all(*parts) if len(parts) > 1 else parts[0]


def interest_paid(as_of: date, since: date) -> Select:
    """Interest payments (revenue of a lender) known by the end of `as_of`, from `since`."""
    p = _sub("payments", as_of, "p")
    return select(p.c.customer_id, p.c.paid_at.label("at"), p.c.amount_minor.label("revenue_minor")).where(
        p.c.payment_type == PaymentType.INTEREST.value, p.c.paid_at >= start_of(since)
    )


def engaged_steps(as_of: date, campaign_ids: Sequence[str]) -> Select:
    """Campaign messages opened or clicked by the end of the day: campaign_id, customer_id, wave, outbox step."""
    end = end_of(as_of)
    return (
        select(outbox.c.campaign_id, outbox.c.customer_id, outbox.c.wave, outbox.c.step)
        .where(
            outbox.c.campaign_id.in_(list(campaign_ids)),
            or_(outbox.c.opened_at < end, outbox.c.clicked_at < end),
        )
        .distinct()
    )


def budget_used(as_of: date, days: int) -> Select:
    """Messages planned (not skipped) per customer and channel in the budget window before `as_of`."""
    first = as_of - timedelta(days=days - 1)
    return (
        select(outbox.c.customer_id, outbox.c.channel, func.count().label("messages"))
        .where(outbox.c.as_of >= first, outbox.c.as_of < as_of, outbox.c.state != MessageState.SKIPPED.value)
        .group_by(outbox.c.customer_id, outbox.c.channel)
    )


def open_entries(as_of: date) -> Select:
    """Entries open on the day (entered by then, not exited before it)."""
    e = campaign_entries
    return select(e.c.campaign_id, e.c.customer_id, e.c.wave, e.c.entered_on, e.c.group).where(
        e.c.entered_on <= as_of, or_(e.c.exited_on.is_(None), e.c.exited_on > as_of)
    )


def last_entries(campaign_ids: Sequence[str]) -> Select:
    """Per campaign and customer: the last wave, when it was entered, and whether it is still open."""
    e = campaign_entries
    return select(e.c.campaign_id, e.c.customer_id, e.c.wave, e.c.entered_on, e.c.exited_on).where(
        e.c.campaign_id.in_(list(campaign_ids))
    )


def purged_on(as_of: date) -> Select:
    """Customers out of the active base on the day (purged by then and not restored by then)."""
    return select(purged_customers.c.customer_id).where(out_of_base_on(as_of)).distinct()


def applications_created(as_of: date, since: date) -> Select:
    """Loan applications created from `since` to the end of `as_of`."""
    a = _sub("loan_applications", as_of, "a")
    return select(a.c.customer_id, a.c.created_at).where(a.c.created_at >= start_of(since))


def clicks_until(as_of: date, since: date) -> Select:
    """Clicks on campaign messages from `since` to the end of `as_of` (outbox report times)."""
    return select(outbox.c.customer_id, outbox.c.clicked_at, outbox.c.campaign_id).where(
        outbox.c.clicked_at >= start_of(since), outbox.c.clicked_at < end_of(as_of)
    )


# --------------------------------------------------------------------------- reports' figures (counted in SQL)
# The reports span weeks of decisions (millions of rows at 1M customers): they are counted in the
# warehouse, never read row by row.


def _decided(start: date, end: date):
    d = campaign_decisions.c
    return and_(d.as_of >= start, d.as_of <= end)


def step_entries(start: date, end: date) -> Select:
    """Per campaign and step, from `start` to `end`: customers (waves) whose first touch was decided, and those in control."""
    d = campaign_decisions.c
    firsts = (
        select(
            d.campaign_id,
            d.step,
            d.customer_id,
            d.wave,
            func.max(case((d.group == Group.CONTROL.value, 1), else_=0)).label("control"),
        )
        .where(_decided(start, end), d.touch == 0)
        .group_by(d.campaign_id, d.step, d.customer_id, d.wave)
        .subquery("firsts")
    )
    f = firsts.c
    return select(f.campaign_id, f.step, func.count().label("entered"), func.sum(f.control).label("control")).group_by(
        f.campaign_id, f.step
    )


def decisions_by(start: date, end: date, decision: Decision, column: str) -> Select:
    """Per campaign, step and `column` (reason, channel): decisions of that kind from `start` to `end`."""
    d = campaign_decisions.c
    return (
        select(d.campaign_id, d.step, d[column].label("value"), func.count().label("n"))
        .where(_decided(start, end), d.decision == decision.value)
        .group_by(d.campaign_id, d.step, d[column])
    )


def converted_entries(start: date, end: date) -> Select:
    """Per campaign: treated entries that ended converted from `start` to `end`."""
    e = campaign_entries.c
    return (
        select(e.campaign_id, func.count().label("converted"))
        .where(
            e.exit_reason == ExitReason.CONVERTED.value,
            e.exited_on >= start,
            e.exited_on <= end,
            e.group == Group.TREATMENT.value,
        )
        .group_by(e.campaign_id)
    )


def sms_baseline(start: date, end: date) -> Select:
    """Treated first touches of the days whose customer could get an SMS: the SMS-to-everyone baseline."""
    d = campaign_decisions.c
    touches = (
        select(d.as_of, d.campaign_id, d.customer_id, d.wave, d.step)
        .where(_decided(start, end), d.touch == 0, d.group == Group.TREATMENT.value, d.sms_reachable.is_(True))
        .distinct()
        .subquery("touches")
    )
    return select(func.count()).select_from(touches)


def sms_planned(start: date, end: date, channel: str) -> Select:
    """SMS the cascade planned from `start` to `end`."""
    d = campaign_decisions.c
    return select(func.count()).where(_decided(start, end), d.channel == channel, d.decision == Decision.PLANNED.value)


def entries_between(since: date | None, before: date) -> Select:
    """Entries entered from `since` (any day when None) to the day before `before`."""
    e = campaign_entries.c
    stmt = select(e.campaign_id, e.customer_id, e.wave, e.entered_on, e.group).where(e.entered_on < before)
    return stmt if since is None else stmt.where(e.entered_on >= since)


def first_touches(since: date, as_of: date) -> Select:
    """Per campaign, step and entry (customer, wave): the first day a first touch was decided, from `since`."""
    d = campaign_decisions.c
    return (
        select(d.campaign_id, d.step, d.customer_id, d.wave, func.min(d.as_of).label("as_of"))
        .where(_decided(since, as_of), d.touch == 0)
        .group_by(d.campaign_id, d.step, d.customer_id, d.wave)
    )
