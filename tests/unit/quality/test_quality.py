"""Quality logic on tiny inputs: GX results to rows, severity and verdict, volume bands, integration health."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from crm.core.privacy import mask_value
from crm.quality import (
    HealthInputs,
    HealthThresholds,
    QualityConfig,
    VolumeBand,
    classify_integrations,
    integration_health_markdown,
    integration_name,
    load_quality_config,
    mask_result,
    quality_markdown,
    quality_verdict,
    result_rows,
    suite_table,
    volume_bands,
)
from crm.quality.results import expectation_id

AS_OF = date(2026, 1, 12)
ROOT = Path(__file__).resolve().parents[3]


def gx_result(
    type_: str, success: bool, result: dict, *, severity="critical", rule="r", exception=None, **kwargs
) -> dict:
    """One item of `ExpectationSuiteValidationResult.to_json_dict()["results"]`."""
    return {
        "success": success,
        "expectation_config": {
            "type": type_,
            "kwargs": kwargs,
            "meta": {"severity": severity, "rule": rule},
            "severity": severity,
        },
        "result": result,
        "exception_info": exception
        or {"raised_exception": False, "exception_message": None, "exception_traceback": None},
    }


def test_importing_the_flow_does_not_import_great_expectations():
    code = "import sys, flows.quality, expectations; assert 'great_expectations' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, timeout=120)


# --------------------------------------------------------------------------- results -> rows


def test_a_failed_column_expectation_becomes_a_row_with_keyed_masked_examples():
    item = gx_result(
        "expect_column_values_to_be_in_set",
        False,
        {
            "element_count": 10,
            "unexpected_count": 2,
            "partial_unexpected_list": ["fax", "anna@example.com"],
            "partial_unexpected_index_list": [
                {"event_id": "e1", "platform": "fax"},
                {"event_id": "anna@example.com", "platform": "x"},
            ],
        },
        rule="allowed_values",
        column="platform",
        value_set=["web"],
    )
    [row] = result_rows("app_events", {"results": [item]})
    assert row["expectation"] == "expect_column_values_to_be_in_set(column=platform, rule=allowed_values)"
    assert (row["suite"], row["column_name"], row["severity"], row["success"]) == (
        "app_events",
        "platform",
        "critical",
        False,
    )
    assert (row["element_count"], row["unexpected_count"]) == (10, 2)
    examples = json.loads(row["unexpected_examples"])
    assert examples == ["event_id=e1, platform=fax", "event_id=a***@e***.com, platform=x"]


def test_an_sql_expectation_counts_its_rows_and_shows_them():
    item = gx_result(
        "expect_no_unexpected_rows",
        False,
        {
            "observed_value": 3,
            "details": {"unexpected_rows": [{"loan_id": 7, "status": "active"}, {"loan_id": 8, "status": "overdue"}]},
        },
        rule="repaid_loan_closed",
        unexpected_rows_query="SELECT ...",
    )
    item["expectation_config"]["meta"]["column"] = "loan_id"
    [row] = result_rows("payments", {"results": [item]}, examples=1)
    assert row["unexpected_count"] == 3 and row["column_name"] == "loan_id"
    assert row["expectation"] == "expect_no_unexpected_rows(column=loan_id, rule=repaid_loan_closed)"
    assert json.loads(row["unexpected_examples"]) == ["loan_id=7, status=active"]


def test_aggregate_schema_and_error_results_explain_themselves():
    rows = result_rows(
        "payments",
        {
            "results": [
                gx_result(
                    "expect_table_row_count_to_be_between",
                    False,
                    {"observed_value": 2},
                    severity="warning",
                    rule="volume",
                    min_value=50,
                    max_value=200,
                ),
                gx_result(
                    "expect_table_columns_to_match_set",
                    False,
                    {"observed_value": ["a"], "details": {"mismatched": {"missing": ["b"], "unexpected": ["c"]}}},
                    rule="schema",
                ),
                gx_result(
                    "expect_column_values_to_be_unique",
                    True,
                    {},
                    rule="unique_key",
                    exception={"k": {"raised_exception": True, "exception_message": "boom"}},
                    column="x",
                ),
                gx_result(
                    "expect_column_values_to_not_be_null",
                    True,
                    {"element_count": 5, "unexpected_count": 0},
                    rule="required",
                    column="x",
                ),
            ]
        },
    )
    volume, schema, error, passed = rows
    assert json.loads(volume["unexpected_examples"]) == ["observed 2 (expected min_value=50, max_value=200)"]
    assert (
        volume["severity"] == "warning" and volume["expectation"] == "expect_table_row_count_to_be_between(rule=volume)"
    )
    assert json.loads(schema["unexpected_examples"]) == ["missing columns: b", "unexpected columns: c"]
    assert error["success"] is False and json.loads(error["unexpected_examples"]) == ["error: boom"]
    assert passed["success"] is True and json.loads(passed["unexpected_examples"]) == []


def test_expectation_ids_do_not_depend_on_the_days_bounds():
    a = {
        "type": "expect_table_row_count_to_be_between",
        "kwargs": {"min_value": 1, "max_value": 9},
        "meta": {"rule": "volume"},
    }
    b = {
        "type": "expect_table_row_count_to_be_between",
        "kwargs": {"min_value": 5, "max_value": 90},
        "meta": {"rule": "volume"},
    }
    assert expectation_id(a) == expectation_id(b)


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("anna@example.com", "a***@e***.com"),
        ("+380501234567", "+38********67"),
        ("2026-01-12 10:00:00.000000", "2026-01-12 10:00:00.000000"),
        (
            "occurred_at 2026-01-14 08:00:00 is after the business day 2026-01-12",
            "occurred_at 2026-01-14 08:00:00 is after the business day 2026-01-12",
        ),
        ("0501-23-45-67", "050********67"),
        (12345678901, "12345678901"),
        (None, "null"),
    ],
)
def test_examples_are_masked_but_dates_stay_legible(value, shown):
    assert mask_value(value) == shown


def test_gx_results_are_masked_before_data_docs_render_them():
    masked = mask_result(
        {
            "partial_unexpected_list": ["anna@example.com"],
            "partial_unexpected_index_list": [{"event_id": "anna@example.com"}],
            "partial_unexpected_counts": [{"value": "anna@example.com", "count": 1}],
            "details": {"unexpected_rows": [{"address": "+380501234567"}]},
        }
    )
    assert "anna@example.com" not in json.dumps(masked) and "+380501234567" not in json.dumps(masked)


# --------------------------------------------------------------------------- verdict


def _row(suite, rule, severity, success, count=None, examples=()):
    return {
        "suite": suite,
        "rule": rule,
        "expectation": f"x(rule={rule})",
        "column_name": None,
        "severity": severity,
        "success": success,
        "element_count": None,
        "unexpected_count": count,
        "unexpected_examples": json.dumps(list(examples)),
        "description": "",
    }


def test_a_critical_failure_makes_the_day_unfit_and_the_summary_names_it():
    rows = [
        _row("ingestion", "quarantine_share_critical", "critical", False, 4, ["source=db:payments, rule=non_negative"]),
        _row("payments", "volume", "warning", False, None, ["observed 2"]),
        _row("payments", "required", "critical", True),
    ]
    verdict = quality_verdict(rows, AS_OF)
    assert not verdict.fit_for_sending and (verdict.critical_failures, verdict.warning_failures) == (1, 1)
    assert "quarantine_share_critical" in verdict.summary and "db:payments" in verdict.summary
    assert "1 warning" in verdict.summary


def test_warnings_alone_keep_the_day_fit():
    verdict = quality_verdict(
        [_row("payments", "volume", "warning", False), _row("loans", "required", "critical", True)], AS_OF
    )
    assert verdict.fit_for_sending and verdict.warning_failures == 1 and "volume" in verdict.summary


def test_all_passed_is_fit_and_nothing_ran_is_not():
    assert quality_verdict([_row("loans", "required", "critical", True)], AS_OF).fit_for_sending
    assert not quality_verdict([], AS_OF).fit_for_sending


def test_the_markdown_and_tables_list_failures_first():
    rows = [
        _row("loans", "required", "critical", True),
        _row("loans", "known_reference", "critical", False, 2, ["loan_id=1"]),
    ]
    table = suite_table(rows, "loans")
    assert [r["outcome"] for r in table] == ["FAILED", "passed"] and table[0]["examples"] == "loan_id=1"
    assert list(table[0])[:3] == ["outcome", "severity", "rule"]  # the reason first, readable at 1600 px
    assert "(" not in table[0]["check"]  # words, not a call repr
    text = quality_markdown(rows, quality_verdict(rows, AS_OF), AS_OF, "s3://reports/data-docs/2026-01-12/index.html")
    assert "NOT fit for sending" in text and "known_reference" in text and "data-docs/2026-01-12" in text


# --------------------------------------------------------------------------- volume


def history(counts: dict[date, int], entity="payments") -> pd.DataFrame:
    return pd.DataFrame([{"as_of": d, "entity": entity, "rows_loaded": n} for d, n in counts.items()])


def test_no_volume_band_before_enough_history():
    band = VolumeBand(min_history_days=3)
    assert volume_bands(history({date(2026, 1, 10): 100, date(2026, 1, 11): 100}), ["payments"], band) == {}


def test_the_band_surrounds_the_median_and_silent_days_count_as_zero():
    band = VolumeBand(low_factor=0.5, high_factor=2.0, slack_rows=10, min_history_days=3)
    frame = pd.concat(
        [
            history({date(2026, 1, 9): 100, date(2026, 1, 10): 120, date(2026, 1, 11): 5000}),
            history({date(2026, 1, 9): 7}, "orders"),
        ]
    )
    bands = volume_bands(frame, ["payments", "orders"], band)
    assert bands["payments"] == (50, 250)  # median 120: [60-10, 240+10]
    assert bands["orders"] == (0, 10)  # 7, 0, 0 -> median 0


# --------------------------------------------------------------------------- integration health


@pytest.mark.parametrize(
    ("source", "integration"),
    [
        ("db:loans", "db:loans"),
        ("file:app_events/app_events_2026-01-12.csv", "file:app_events"),
        ("file:message_events/sms-gateway_2026-01-12.jsonl.gz", "file:message_events/sms-gateway"),
        ("file:message_events/push_2026-01-12.jsonl", "file:message_events/push"),
    ],
)
def test_sources_group_into_integrations(source, integration):
    assert integration_name(source) == integration


def health_inputs(batches, failed=(), reasons=(), recent=()) -> HealthInputs:
    return HealthInputs(
        batches=pd.DataFrame(
            batches,
            columns=["as_of", "source", "entity", "rows_read", "rows_loaded", "rows_quarantined", "rows_duplicate"],
        ),
        failed_files=pd.DataFrame(failed, columns=["file_key", "error"]),
        reasons=pd.DataFrame(reasons, columns=["source", "rule", "rows", "example"]),
        recent=pd.DataFrame(recent, columns=["as_of", "source"]),
    )


def test_integrations_are_ok_problems_or_many_errors_with_their_reasons():
    d = AS_OF
    inputs = health_inputs(
        batches=[
            (d, "db:loans", "loans", 1000, 1000, 0, 0),
            (d, "db:payments", "payments", 1000, 995, 5, 0),  # 0.5%: problems
            (d, "file:app_events/app_events_2026-01-12.csv", "app_events", 100, 90, 10, 0),  # 10%: many errors
            (d, "file:message_events/push_2026-01-12.jsonl", "message_events", 50, 50, 0, 0),
        ],
        failed=[
            (
                "message_events/sms-gateway_2026-01-12.jsonl",
                "message_events/sms-gateway_2026-01-12.jsonl: not UTF-8 text",
            )
        ],
        reasons=[
            ("db:payments", "non_negative", 5, "amount_minor -5 is negative"),
            (
                "file:app_events/app_events_2026-01-12.csv",
                "not_in_future",
                7,
                "occurred_at 2026-01-14 08:00:00 is after the business day 2026-01-12",
            ),
            (
                "file:app_events/app_events_2026-01-12.csv",
                "known_reference",
                3,
                "customer_id 99 is not a known customers",
            ),
        ],
    )
    health = classify_integrations(
        inputs, HealthThresholds(problems_share=0.001, many_errors_share=0.01, top_reasons=3)
    ).set_index("integration")
    assert health.loc["db:loans", "status"] == "ok"
    assert health.loc["db:payments", "status"] == "problems"
    assert health.loc["file:app_events", "status"] == "many errors"
    assert health.loc["file:message_events/sms-gateway", "status"] == "many errors"
    assert health.loc["file:message_events/push", "status"] == "ok"
    assert health.loc["file:app_events", "top_reasons"][0].startswith("not_in_future: 7 (e.g. occurred_at 2026-01-14")
    assert "not UTF-8" in health.loc["file:message_events/sms-gateway", "top_reasons"][0]
    assert health.loc["db:customers", "status"] == "ok" and health.loc["db:customers", "rows_read"] == 0
    assert (health.loc["db:payments", "rows_read"], health.loc["db:payments", "rows_quarantined"]) == (1000, 5)
    # Worst first.
    assert list(classify_integrations(inputs, HealthThresholds())["status"])[:3] == [
        "many errors",
        "many errors",
        "problems",
    ]
    text = integration_health_markdown(classify_integrations(inputs, HealthThresholds()), AS_OF)
    assert "file:message_events/sms-gateway" in text and "many errors" in text and "non_negative" in text


def test_a_daily_feed_that_went_silent_has_problems():
    d = AS_OF
    recent = [
        (date(2026, 1, 10), "file:app_events/app_events_2026-01-10.csv"),
        (date(2026, 1, 11), "file:app_events/app_events_2026-01-11.csv"),
        (date(2026, 1, 10), "db:orders"),
    ]
    health = classify_integrations(
        health_inputs(batches=[(d, "db:loans", "loans", 10, 10, 0, 0)], recent=recent), HealthThresholds()
    ).set_index("integration")
    assert health.loc["file:app_events", "status"] == "problems"
    assert "no rows today" in health.loc["file:app_events", "top_reasons"][-1]
    assert health.loc["db:orders", "status"] == "ok"  # it did not deliver every recent day


def test_the_config_file_parses_and_matches_the_defaults():
    config = load_quality_config()
    assert config == QualityConfig()
    assert config.ingestion.quarantine_share_warning < config.ingestion.quarantine_share_critical
