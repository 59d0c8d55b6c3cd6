"""Great Expectations' validation results turned into rows: one per expectation, examples masked.

Pure: dicts in (GX's `to_json_dict()`), dicts out.
"""

from __future__ import annotations

import json
from typing import Any

from crm.core.privacy import mask_value
from crm.quality.suites import Severity

RESULT_COLUMNS = [
    "suite",
    "expectation",
    "column_name",
    "rule",
    "severity",
    "success",
    "element_count",
    "unexpected_count",
    "unexpected_examples",
]


def _example(item: Any) -> str:
    if isinstance(item, dict):
        return ", ".join(f"{k}={mask_value(v)}" for k, v in item.items())
    return mask_value(item)


def mask_result(result: dict) -> dict:
    """A GX expectation `result` dict with every offending value masked (for Data Docs)."""
    out = dict(result)
    for key in ("partial_unexpected_list", "unexpected_list"):
        if isinstance(out.get(key), list):
            out[key] = [mask_value(v) for v in out[key]]
    for key in ("partial_unexpected_index_list", "unexpected_index_list"):
        if isinstance(out.get(key), list):
            out[key] = [
                {k: mask_value(v) for k, v in d.items()} if isinstance(d, dict) else mask_value(d) for d in out[key]
            ]
    if isinstance(out.get("partial_unexpected_counts"), list):
        out["partial_unexpected_counts"] = [
            {**c, "value": mask_value(c.get("value"))} if isinstance(c, dict) else c
            for c in out["partial_unexpected_counts"]
        ]
    details = out.get("details")
    if isinstance(details, dict) and isinstance(details.get("unexpected_rows"), list):
        rows = [
            {k: mask_value(v) for k, v in r.items()} if isinstance(r, dict) else mask_value(r)
            for r in details["unexpected_rows"]
        ]
        out["details"] = {**details, "unexpected_rows": rows}
    if isinstance(out.get("observed_value"), str):
        out["observed_value"] = mask_value(out["observed_value"])
    return out


ROWS_EXPECTATIONS = {"expect_no_unexpected_rows", "unexpected_rows_expectation"}


def expectation_column(config: dict) -> str | None:
    """The column(s) an expectation is about, from its kwargs or its meta."""
    kwargs = config.get("kwargs") or {}
    if kwargs.get("column"):
        return str(kwargs["column"])
    if kwargs.get("column_list"):
        return ", ".join(map(str, kwargs["column_list"]))
    if kwargs.get("column_A"):
        return f"{kwargs['column_A']}, {kwargs['column_B']}"
    return (config.get("meta") or {}).get("column")


def expectation_id(config: dict) -> str:
    """A stable id of an expectation: its type, column and rule (never day-dependent bounds)."""
    parts = []
    column = expectation_column(config)
    if column:
        parts.append(f"column={column}")
    rule = (config.get("meta") or {}).get("rule")
    if rule:
        parts.append(f"rule={rule}")
    return f"{config.get('type')}({', '.join(parts)})"[:256]


def _exception_message(info: Any) -> str | None:
    if not isinstance(info, dict):
        return None
    if "raised_exception" in info:
        return str(info.get("exception_message") or "error") if info.get("raised_exception") else None
    for value in info.values():  # GX 1.x keys exceptions by metric when several were raised
        message = _exception_message(value)
        if message:
            return message
    return None


def result_examples(config: dict, result: dict, *, limit: int) -> list[str]:
    """Masked, readable examples of what failed an expectation."""
    if result.get("partial_unexpected_index_list"):
        items = result["partial_unexpected_index_list"]
    elif result.get("partial_unexpected_list"):
        items = result["partial_unexpected_list"]
    elif isinstance(result.get("details"), dict) and result["details"].get("unexpected_rows"):
        items = result["details"]["unexpected_rows"]
    elif isinstance(result.get("details"), dict) and isinstance(result["details"].get("mismatched"), dict):
        mismatched = result["details"]["mismatched"]
        items = [f"{kind} columns: {', '.join(map(str, cols))}" for kind, cols in mismatched.items() if cols]
    elif "observed_value" in result:
        kwargs = {k: v for k, v in (config.get("kwargs") or {}).items() if k in ("min_value", "max_value")}
        bounds = ", ".join(f"{k}={mask_value(v)}" for k, v in kwargs.items())
        items = [f"observed {mask_value(result['observed_value'])}" + (f" (expected {bounds})" if bounds else "")]
    else:
        items = []
    return [_example(i) for i in items[:limit]]


def result_rows(suite: str, validation: dict, *, examples: int = 5) -> list[dict]:
    """One row per expectation of a suite's validation result (`to_json_dict()` of GX's result)."""
    rows: list[dict] = []
    seen: set[str] = set()
    for item in validation.get("results", []):
        config = item.get("expectation_config") or {}
        meta = config.get("meta") or {}
        result = item.get("result") or {}
        error = _exception_message(item.get("exception_info"))
        key = expectation_id(config)
        if key in seen:  # defensive: ids must be unique within a suite
            key = f"{key}#{sum(1 for s in seen if s.startswith(key)) + 1}"[:256]
        seen.add(key)
        if config.get("type") in ROWS_EXPECTATIONS:
            unexpected = result.get("observed_value")
        else:
            unexpected = result.get("unexpected_count")
        shown = [f"error: {mask_value(error)}"] if error else result_examples(config, result, limit=examples)
        success = bool(item.get("success")) and not error
        rows.append(
            {
                "suite": suite,
                "expectation": key,
                "column_name": (expectation_column(config) or None) and expectation_column(config)[:128],
                "severity": meta.get("severity") or config.get("severity") or Severity.CRITICAL,
                "success": success,
                "element_count": _int_or_none(result.get("element_count")),
                "unexpected_count": _int_or_none(unexpected),
                "unexpected_examples": json.dumps([] if success else shown, ensure_ascii=False),
                "rule": meta.get("rule") or config.get("type"),
                "description": config.get("description") or "",
            }
        )
    return rows


def suite_error_row(suite: str, error: str) -> dict:
    """The row of a suite that could not run at all (its batch failed to load): a critical failure."""
    return {
        "suite": suite,
        "expectation": "suite_ran(rule=suite_ran)",
        "column_name": None,
        "severity": Severity.CRITICAL,
        "success": False,
        "element_count": None,
        "unexpected_count": None,
        "unexpected_examples": json.dumps([f"error: {mask_value(error)[:500]}"], ensure_ascii=False),
        "rule": "suite_ran",
        "description": "The suite's batch could be read and validated.",
    }


def _int_or_none(value: Any) -> int | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
