"""One suite per `stg_` table: the contract checks plus the rules that tie entities together.

Imports Great Expectations: import this module lazily (from inside a function).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from crm.core.contracts import Entity
from expectations import SuiteContext, SuiteSpec
from expectations.common import CRITICAL, WARNING, contract_expectations, day_batch_query, expect, no_rows


def _customers(context: SuiteContext) -> list:
    return [
        expect(
            "ExpectColumnValuesToBeBetween",
            rule="plausible_birth_date",
            severity=WARNING,
            column="birth_date",
            min_value=date(1900, 1, 1),
            max_value=context.as_of,
        )
    ]


def _loan_applications(context: SuiteContext) -> list:
    # Only versions of the day: a parent pulled ahead (its latest change lies after the day) meets
    # its status history on the day that change is ingested.
    return [
        no_rows(
            "SELECT b.application_id, b.status, b.updated_at FROM {batch} AS b "
            f"WHERE b.status = 'issued' AND b.updated_at < '{context.next_day}' AND NOT EXISTS ("
            "SELECT 1 FROM stg_application_status_changes AS c WHERE c.application_id = b.application_id "
            "AND c.status = 'approved' AND c.changed_at <= b.updated_at)",
            rule="issued_after_approval",
            severity=CRITICAL,
            column="status",
            description="An issued application has an `approved` status change before it.",
        )
    ]


def _loans(context: SuiteContext) -> list:
    return [
        expect(
            "ExpectColumnValuesToBeBetween", rule="positive_terms", severity=CRITICAL, column="term_days", min_value=1
        ),
        expect(
            "ExpectColumnValuesToBeBetween",
            rule="positive_terms",
            severity=CRITICAL,
            column="daily_rate_bp",
            min_value=0,
        ),
        no_rows(
            "SELECT b.loan_id, b.status, b.issued_at, b.closed_at FROM {batch} AS b "
            "WHERE b.closed_at IS NOT NULL AND b.closed_at < b.issued_at",
            rule="closed_after_issue",
            severity=WARNING,
            column="closed_at",
            description="A loan is closed after it was issued.",
        ),
    ]


def _payments(context: SuiteContext) -> list:
    return [
        # The lender's lost-status bug: repayments reach the warehouse, the loan's new status does
        # not (its updated_at was never bumped), so the CRM keeps treating a repaid customer as in debt.
        no_rows(
            "SELECT l.loan_id, l.status, l.principal_minor, SUM(p.amount_minor) AS repaid_minor "
            "FROM stg_loans AS l JOIN stg_payments AS p ON p.loan_id = l.loan_id AND p.payment_type = 'principal' "
            "WHERE l.status IN ('active', 'overdue') "
            "AND l.loan_id IN (SELECT d.loan_id FROM {batch} AS d WHERE d.payment_type = 'principal') "
            "GROUP BY l.loan_id, l.status, l.principal_minor "
            "HAVING SUM(p.amount_minor) >= l.principal_minor",
            rule="repaid_loan_closed",
            severity=CRITICAL,
            column="loan_id",
            description=(
                "A loan whose principal repayments (up to today's) cover its principal is no longer "
                "`active` or `overdue` in the warehouse."
            ),
        ),
        no_rows(
            "SELECT b.payment_id, b.loan_id, b.customer_id, l.customer_id AS loan_customer_id "
            "FROM {batch} AS b JOIN stg_loans AS l ON l.loan_id = b.loan_id WHERE l.customer_id <> b.customer_id",
            rule="same_customer_as_loan",
            severity=WARNING,
            column="customer_id",
            description="A payment belongs to the customer of its loan.",
        ),
    ]


EXTRA_RULES: dict[str, Callable[[SuiteContext], list]] = {
    "customers": _customers,
    "loan_applications": _loan_applications,
    "loans": _loans,
    "payments": _payments,
}


def staging_suite(entity: Entity, context: SuiteContext) -> SuiteSpec:
    """The suite of `stg_<entity>` for the rows belonging to `context.as_of` (see `day_batch_query`)."""
    extra = EXTRA_RULES.get(entity.name, lambda _: [])(context)
    return SuiteSpec(
        name=entity.name,
        description=f"{entity.table_name}, rows of {context.as_of}: {entity.description}",
        query=day_batch_query(entity, context.day, context.next_day),
        key_columns=tuple(entity.key),
        expectations=contract_expectations(entity, context) + extra,
    )
