"""Map contract column kinds to SQLAlchemy types, the same on SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, Date, DateTime, Integer, String
from sqlalchemy.types import TypeEngine

from crm.core.contracts import Column as ContractColumn
from crm.core.contracts import Entity

# SQLite only auto-numbers an INTEGER PRIMARY KEY; PostgreSQL gets a BIGINT identity.
AutoId = BigInteger().with_variant(Integer(), "sqlite")


def sql_type(column: ContractColumn) -> TypeEngine:
    """The SQLAlchemy type of a contract column (money is integer minor units)."""
    if column.kind in ("int", "money"):
        return BigInteger()
    if column.kind == "str":
        return String(column.max_length)
    if column.kind == "timestamp":
        return DateTime()
    if column.kind == "date":
        return Date()
    if column.kind == "bool":
        return Boolean()
    raise ValueError(f"unknown column kind {column.kind!r}")


def entity_columns(entity: Entity, *, enforce_required: bool, key_is_primary: bool = True) -> list[Column]:
    """SQLAlchemy columns for an entity; keys are the primary key unless `key_is_primary` is False."""
    return [
        Column(
            c.name,
            sql_type(c),
            primary_key=key_is_primary and c.name in entity.key,
            nullable=c.name not in entity.key and not (enforce_required and c.required),
            autoincrement=False,
            comment=c.description or None,
        )
        for c in entity.columns
    ]
