"""Building blocks of the suites: severities, an SQL "no offending rows" expectation, contract checks.

Imports Great Expectations: import this module lazily (from inside a function).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, ClassVar

import great_expectations.expectations as gxe

from crm.core.contracts import ENTITIES, Column, Entity
from crm.core.dates import start_of
from crm.quality import Severity

CRITICAL = Severity.CRITICAL
WARNING = Severity.WARNING

# Column types as GX sees them on the temporary table of a day's batch. SQLite keeps only a
# storage affinity there (CREATE TABLE AS), so timestamps, dates and booleans read NUMERIC;
# PostgreSQL keeps the declared types, string lengths included.
TYPE_NAMES: dict[str, dict[str, str]] = {
    "sqlite": {
        "int": "INTEGER",
        "money": "INTEGER",
        "str": "TEXT",
        "timestamp": "NUMERIC",
        "date": "NUMERIC",
        "bool": "NUMERIC",
    },
    "postgresql": {
        "int": "BIGINT",
        "money": "BIGINT",
        "str": "VARCHAR({max_length})",
        "timestamp": "TIMESTAMP WITHOUT TIME ZONE",
        "date": "DATE",
        "bool": "BOOLEAN",
    },
}


def type_name(dialect: str, column: Column) -> str | None:
    """The type GX should observe for a contract column on this dialect (None: not checked)."""
    names = TYPE_NAMES.get(dialect)
    return names[column.kind].format(max_length=column.max_length) if names else None


class ExpectNoUnexpectedRows(gxe.UnexpectedRowsExpectation):
    """Fails when the SQL query returns rows, and keeps the first of them as examples.

    GX's `UnexpectedRowsExpectation` returns its rows only at the COMPLETE result format, which
    would also fetch every unexpected value of every column expectation; this keeps a few at any.
    """

    examples_kept: ClassVar[int] = 20

    def _validate(self, metrics: dict, runtime_configuration: dict | None = None, execution_engine=None):
        count = metrics["unexpected_rows_query.row_count"]
        rows = metrics["unexpected_rows_query.table"] or []
        return {
            "success": count == 0,
            "result": {"observed_value": count, "details": {"unexpected_rows": list(rows)[: self.examples_kept]}},
        }


def expect(
    kind: str, *, rule: str, severity: str, description: str | None = None, meta: dict | None = None, **kwargs: Any
):
    """A GX expectation `gxe.<kind>(**kwargs)` tagged with its rule and severity."""
    try:
        severity = Severity(severity)
    except ValueError:
        raise ValueError(f"severity must be critical or warning, not {severity!r}") from None
    cls = ExpectNoUnexpectedRows if kind == "ExpectNoUnexpectedRows" else getattr(gxe, kind)
    extra = {"description": description} if description else {}
    return cls(**kwargs, meta={"severity": severity, "rule": rule, **(meta or {})}, severity=severity, **extra)


def no_rows(query: str, *, rule: str, severity: str, description: str, column: str | None = None):
    """An expectation that `query` (SQL over `{batch}` and other warehouse tables) returns no row."""
    return expect(
        "ExpectNoUnexpectedRows",
        rule=rule,
        severity=severity,
        description=description,
        meta={"column": column} if column else None,
        unexpected_rows_query=query,
    )


def day_batch_query(entity: Entity, day: str, next_day: str) -> str:
    """The rows belonging to one business day, whichever run loaded them (so a backfill or a re-run
    after later days checks what that day's own night checked).

    Versioned records: the versions that started on the day (`hist_*`, later versions do not
    overwrite them); source facts: those whose change lies on the day; landing rows: those of the
    files dated on the day (`ingested_on` holds a landing row's file date).
    """
    if entity.versioned:
        return f"SELECT * FROM {entity.history_table_name} WHERE valid_from >= '{day}' AND valid_from < '{next_day}'"
    if entity.updated_column:
        column = entity.updated_column
        return f"SELECT * FROM {entity.table_name} WHERE {column} >= '{day}' AND {column} < '{next_day}'"
    return f"SELECT * FROM {entity.table_name} WHERE ingested_on = '{day}'"


def batch_columns(entity: Entity) -> list[str]:
    """The columns of an entity's day batch: its contract's, the load's day, and a version's validity."""
    validity = ["valid_from", "valid_to"] if entity.versioned else []
    return [*entity.column_names, *validity, "ingested_on"]


def reference_query(entity: Entity, column: str, referenced: str) -> str:
    """Rows of the day whose `column` points at no row of the referenced entity."""
    target = ENTITIES[referenced]
    key = target.key[0]
    shown = ", ".join(f"b.{c}" for c in dict.fromkeys((*entity.key, column)))
    return (
        f"SELECT {shown} FROM {{batch}} AS b LEFT JOIN {target.table_name} AS r ON r.{key} = b.{column} "
        f"WHERE b.{column} IS NOT NULL AND r.{key} IS NULL"
    )


def contract_expectations(entity: Entity, context) -> list:
    """What every `stg_` table must satisfy by its contract: schema, types, required values, a unique
    key, allowed values, non-negative money, plausible bounds, no future events, known references,
    freshness and volume."""
    config = context.config
    out = [
        expect(
            "ExpectTableColumnsToMatchSet",
            rule="schema",
            severity=CRITICAL,
            column_set=batch_columns(entity),
            exact_match=True,
        )
    ]
    for c in entity.columns:
        expected = type_name(context.dialect, c)
        if expected:
            out.append(
                expect("ExpectColumnValuesToBeOfType", rule="type", severity=CRITICAL, column=c.name, type_=expected)
            )
    for c in entity.columns:
        if c.required or c.name in entity.key:
            out.append(expect("ExpectColumnValuesToNotBeNull", rule="required", severity=CRITICAL, column=c.name))
    if len(entity.key) == 1:
        out.append(expect("ExpectColumnValuesToBeUnique", rule="unique_key", severity=CRITICAL, column=entity.key[0]))
    else:
        out.append(
            expect(
                "ExpectCompoundColumnsToBeUnique", rule="unique_key", severity=CRITICAL, column_list=list(entity.key)
            )
        )
    for c in entity.columns:
        if c.allowed:
            out.append(
                expect(
                    "ExpectColumnValuesToBeInSet",
                    rule="allowed_values",
                    severity=CRITICAL,
                    column=c.name,
                    value_set=list(c.allowed),
                )
            )
        if c.kind == "money":
            out.append(
                expect(
                    "ExpectColumnValuesToBeBetween", rule="non_negative", severity=CRITICAL, column=c.name, min_value=0
                )
            )
        bound = config.upper_bounds.get(f"{entity.name}.{c.name}")
        if bound is not None:
            out.append(
                expect(
                    "ExpectColumnValuesToBeBetween",
                    rule="plausible_range",
                    severity=WARNING,
                    column=c.name,
                    max_value=bound,
                )
            )
    if entity.event_time_column:
        out.append(
            expect(
                "ExpectColumnValuesToBeBetween",
                rule="not_in_future",
                severity=CRITICAL,
                column=entity.event_time_column,
                max_value=start_of(context.as_of) + timedelta(days=1),
                strict_max=True,
            )
        )
    for column, referenced in entity.references.items():
        out.append(
            no_rows(
                reference_query(entity, column, referenced),
                rule="known_reference",
                severity=CRITICAL,
                column=column,
                description=f"Every `{column}` of the day's {entity.name} is a known {referenced} row.",
            )
        )
    fresh = config.freshness.get(entity.name)
    if fresh:
        out.append(expect("ExpectTableRowCountToBeBetween", rule="fresh_rows", severity=fresh, min_value=1))
        if entity.event_time_column:
            out.append(
                expect(
                    "ExpectColumnMaxToBeBetween",
                    rule="fresh_events",
                    severity=fresh,
                    column=entity.event_time_column,
                    min_value=start_of(context.as_of),
                )
            )
    band = context.volume_bands.get(entity.name)
    if band:
        out.append(
            expect(
                "ExpectTableRowCountToBeBetween",
                rule="volume",
                severity=config.volume.severity,
                min_value=band[0],
                max_value=band[1],
            )
        )
    return out
