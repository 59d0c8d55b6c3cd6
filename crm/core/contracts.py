"""The data contract of every ingested entity: columns, types, rules, keys and where it comes from.

This is the single definition behind the source-system tables, the warehouse `stg_*` tables,
the validation rules of ingestion and the landing-file contract in `docs/landing-files.md`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal

ColumnKind = Literal["int", "str", "timestamp", "date", "bool", "money"]
Origin = Literal["source_db", "landing_file"]


class Channel(StrEnum):
    """A contact channel, cheapest first (the order of a cascade)."""

    PUSH = "push"
    EMAIL = "email"
    SMS = "sms"


class ApplicationStatus(StrEnum):
    """Status of a loan application."""

    STARTED = "started"
    SUBMITTED = "submitted"
    APPROVED = "approved"
    REJECTED = "rejected"
    ABANDONED = "abandoned"
    ISSUED = "issued"
    EXPIRED = "expired"


class LoanStatus(StrEnum):
    """Status of an issued loan or pawn ticket."""

    ACTIVE = "active"
    OVERDUE = "overdue"
    REPAID = "repaid"
    WRITTEN_OFF = "written_off"


class PaymentType(StrEnum):
    """What a payment on a loan pays."""

    PRINCIPAL = "principal"
    INTEREST = "interest"


class OrderStatus(StrEnum):
    """Status of a retail order."""

    COMPLETED = "completed"
    RETURNED = "returned"


class ProductGroup(StrEnum):
    """Product group of a retail order."""

    GOLD = "gold"
    SILVER = "silver"
    DIAMONDS = "diamonds"
    WATCHES = "watches"
    PAWN_REDEMPTION = "pawn_redemption"


class AppEventType(StrEnum):
    """Kind of a website or app event."""

    APP_INSTALL = "app_install"
    REGISTRATION = "registration"
    LOGIN = "login"
    APP_OPEN = "app_open"
    APPLICATION_STARTED = "application_started"
    PUSH_OPENED = "push_opened"


class MessageEventType(StrEnum):
    """Kind of a provider's delivery or engagement report."""

    SENT = "sent"
    DELIVERED = "delivered"
    OPENED = "opened"
    CLICKED = "clicked"
    UNSUBSCRIBED = "unsubscribed"
    FAILED = "failed"


def values(enum: Iterable[StrEnum]) -> tuple[str, ...]:
    """The values of an enum, in declaration order (the contract's allowed lists)."""
    return tuple(str(member) for member in enum)


CHANNELS = values(Channel)
APPLICATION_STATUSES = values(ApplicationStatus)
LOAN_STATUSES = values(LoanStatus)
PAYMENT_TYPES = values(PaymentType)
ORDER_STATUSES = values(OrderStatus)
PRODUCT_GROUPS = values(ProductGroup)
APP_EVENT_TYPES = values(AppEventType)
MESSAGE_EVENT_TYPES = values(MessageEventType)


def record_key(values: Sequence[Any]) -> str:
    """A row's key as the JSON list that links quarantined rows to reconciliation mismatches (`[42]`, `[7, "sms"]`)."""
    return json.dumps([v.item() if hasattr(v, "item") else v for v in values], default=str)


def record_keys(rows: Any, key: Sequence[str]) -> list[str]:
    """`record_key` of every row of a DataFrame, by the columns of `key`."""
    if len(rows) == 0:
        return []
    return [record_key(k) for k in rows[list(key)].astype(object).itertuples(index=False, name=None)]


@dataclass(frozen=True)
class Column:
    """One column of an entity and the rules a value must pass."""

    name: str
    kind: ColumnKind
    required: bool = True
    allowed: tuple[str, ...] | None = None
    max_length: int = 64
    description: str = ""


@dataclass(frozen=True)
class Entity:
    """An entity that lands in the warehouse as `stg_<name>`."""

    name: str
    origin: Origin
    key: tuple[str, ...]
    columns: tuple[Column, ...]
    description: str
    # Facts never change once written (events, payments): a repeated key is a duplicate.
    # Mutable records (customers, loans) are upserted: the newest version wins.
    immutable: bool = False
    # Column the source system bumps on every change; the watermark follows it.
    updated_column: str | None = None
    # Business timestamp that may not lie after the business day being ingested.
    event_time_column: str | None = None
    # column -> entity whose key it must reference (checked against the warehouse).
    references: dict[str, str] = field(default_factory=dict)
    # Landing files: folder under the landing root and file format.
    file_format: Literal["csv", "jsonl"] | None = None

    @property
    def table_name(self) -> str:
        """The warehouse table this entity lands in (its latest version per key)."""
        return f"stg_{self.name}"

    @property
    def versioned(self) -> bool:
        """Whether the warehouse keeps every version of its rows (`hist_<name>`): mutable source records."""
        return not self.immutable and self.updated_column is not None

    @property
    def history_table_name(self) -> str:
        """The table of every version of its rows, valid from / to."""
        return f"hist_{self.name}"

    @property
    def known_at_column(self) -> str:
        """The column whose time says when a row became known: its last change, or its event time."""
        return self.updated_column or self.event_time_column or self.key[0]

    @property
    def column_names(self) -> list[str]:
        """Column names in contract order."""
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        """The column called `name`."""
        return next(c for c in self.columns if c.name == name)


def _updated() -> Column:
    return Column("updated_at", "timestamp", description="Last change in the source system.")


CUSTOMERS = Entity(
    name="customers",
    origin="source_db",
    key=("customer_id",),
    description="One profile per person, keyed by the master system's customer id.",
    columns=(
        Column("customer_id", "int", description="Master-system customer id."),
        Column("registered_at", "timestamp"),
        Column("birth_date", "date", required=False),
        Column("signup_channel", "str", allowed=("online", "offline")),
        Column("is_technical", "bool", description="Internal account, never contacted."),
        _updated(),
    ),
    updated_column="updated_at",
    event_time_column="registered_at",
)

CUSTOMER_CONTACTS = Entity(
    name="customer_contacts",
    origin="source_db",
    key=("customer_id", "channel"),
    description="A customer's address and consent on one channel.",
    columns=(
        Column("customer_id", "int"),
        Column("channel", "str", allowed=CHANNELS),
        Column("address", "str", max_length=256, description="Phone, e-mail or push token (personal data)."),
        Column("is_consented", "bool"),
        _updated(),
    ),
    updated_column="updated_at",
    references={"customer_id": "customers"},
)

LOAN_APPLICATIONS = Entity(
    name="loan_applications",
    origin="source_db",
    key=("application_id",),
    description="A loan application and its current status.",
    columns=(
        Column("application_id", "int"),
        Column("customer_id", "int"),
        Column("created_at", "timestamp"),
        Column("requested_amount_minor", "money"),
        Column("status", "str", allowed=APPLICATION_STATUSES),
        _updated(),
    ),
    updated_column="updated_at",
    event_time_column="created_at",
    references={"customer_id": "customers"},
)

APPLICATION_STATUS_CHANGES = Entity(
    name="application_status_changes",
    origin="source_db",
    key=("change_id",),
    description="Status history of loan applications, one row per change.",
    columns=(
        Column("change_id", "int"),
        Column("application_id", "int"),
        Column("status", "str", allowed=APPLICATION_STATUSES),
        Column("changed_at", "timestamp"),
    ),
    immutable=True,
    updated_column="changed_at",
    event_time_column="changed_at",
    references={"application_id": "loan_applications"},
)

LOANS = Entity(
    name="loans",
    origin="source_db",
    key=("loan_id",),
    description="An issued loan (or pawn ticket) and its current status.",
    columns=(
        Column("loan_id", "int"),
        Column("application_id", "int"),
        Column("customer_id", "int"),
        Column("issued_at", "timestamp"),
        Column("principal_minor", "money"),
        Column("daily_rate_bp", "int", description="Daily interest rate in basis points."),
        Column("term_days", "int"),
        Column("due_on", "date"),
        Column("status", "str", allowed=LOAN_STATUSES),
        Column("closed_at", "timestamp", required=False),
        _updated(),
    ),
    updated_column="updated_at",
    event_time_column="issued_at",
    references={"customer_id": "customers", "application_id": "loan_applications"},
)

PAYMENTS = Entity(
    name="payments",
    origin="source_db",
    key=("payment_id",),
    description="A payment on a loan: principal repayment or interest, each its own row.",
    columns=(
        Column("payment_id", "int"),
        Column("loan_id", "int"),
        Column("customer_id", "int"),
        Column("paid_at", "timestamp"),
        Column("payment_type", "str", allowed=PAYMENT_TYPES),
        Column("amount_minor", "money"),
        _updated(),
    ),
    immutable=True,
    updated_column="updated_at",
    event_time_column="paid_at",
    references={"customer_id": "customers", "loan_id": "loans"},
)

ORDERS = Entity(
    name="orders",
    origin="source_db",
    key=("order_id",),
    description="A retail purchase (jewellery shop, online or in store).",
    columns=(
        Column("order_id", "int"),
        Column("customer_id", "int"),
        Column("ordered_at", "timestamp"),
        Column("amount_minor", "money"),
        Column("product_group", "str", allowed=PRODUCT_GROUPS),
        Column("sales_channel", "str", allowed=("online", "store")),
        Column("status", "str", allowed=ORDER_STATUSES),
        _updated(),
    ),
    updated_column="updated_at",
    event_time_column="ordered_at",
    references={"customer_id": "customers"},
)

APP_EVENTS = Entity(
    name="app_events",
    origin="landing_file",
    key=("event_id",),
    description="Website and mobile-app events, exported daily as CSV.",
    columns=(
        Column("event_id", "str"),
        Column("customer_id", "int"),
        Column("event_type", "str", allowed=APP_EVENT_TYPES),
        Column("platform", "str", allowed=("android", "ios", "web")),
        Column("occurred_at", "timestamp"),
    ),
    immutable=True,
    event_time_column="occurred_at",
    references={"customer_id": "customers"},
    file_format="csv",
)

MESSAGE_EVENTS = Entity(
    name="message_events",
    origin="landing_file",
    key=("event_id",),
    description="Message providers' delivery and engagement reports, JSON lines, one file per provider a day.",
    columns=(
        Column("event_id", "str"),
        Column("message_id", "str"),
        Column("customer_id", "int"),
        Column("channel", "str", allowed=CHANNELS),
        Column("event_type", "str", allowed=MESSAGE_EVENT_TYPES),
        Column("occurred_at", "timestamp"),
        Column("campaign_id", "str", required=False),
        Column("provider", "str"),
    ),
    immutable=True,
    event_time_column="occurred_at",
    references={"customer_id": "customers"},
    file_format="jsonl",
)

# Load order matters: a reference is checked against entities loaded before it.
SOURCE_ENTITIES: tuple[Entity, ...] = (
    CUSTOMERS,
    CUSTOMER_CONTACTS,
    LOAN_APPLICATIONS,
    APPLICATION_STATUS_CHANGES,
    LOANS,
    PAYMENTS,
    ORDERS,
)
LANDING_ENTITIES: tuple[Entity, ...] = (APP_EVENTS, MESSAGE_EVENTS)
ENTITIES: dict[str, Entity] = {e.name: e for e in SOURCE_ENTITIES + LANDING_ENTITIES}
