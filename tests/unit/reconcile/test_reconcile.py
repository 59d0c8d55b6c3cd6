"""Reconciliation logic on tiny frames: figures, divergence, id diffs, caps and summaries (no DB, no Prefect)."""

from datetime import date
from decimal import Decimal

import pandas as pd
import pytest

from crm.core.config import ConfigError, load_config
from crm.core.contracts import CUSTOMER_CONTACTS, LOANS, PAYMENTS, record_keys
from crm.reconcile import (
    EntityCheck,
    MismatchCollector,
    ReconciliationConfig,
    combine_aggregates,
    compare_metrics,
    diff_rows,
    divergence,
    entities_to_diff,
    entity_metrics,
    mark_quarantined,
    trend_markdown,
    verdict_summary,
)

AS_OF = date(2026, 1, 12)
LOAN_CHECK = EntityCheck(business_time="issued_at", status="status", amount="principal_minor")
PAYMENT_CHECK = EntityCheck(
    business_time="paid_at", status="payment_type", amount="amount_minor", amount_by_status=True
)


def aggregates(rows):
    return pd.DataFrame(rows, columns=["grp", "rows_cumulative", "rows_day", "amount_cumulative", "amount_day"])


def test_divergence_is_relative_to_the_source_and_never_divides_by_zero():
    assert divergence(1000, 1000) == 0
    assert divergence(1000, 999) == pytest.approx(0.001)
    assert divergence(0, 3) == 3
    assert divergence(1000, 0) == 1


def test_loan_metrics_count_every_allowed_status_and_sum_money_exactly():
    agg = aggregates([("active", 5, 2, Decimal("5000"), Decimal("2000")), ("repaid", 3, 0, 3000, 0)])
    metrics = entity_metrics(LOANS, LOAN_CHECK, agg)
    assert metrics[("rows", "cumulative")] == 8
    assert metrics[("rows", "day")] == 2
    assert metrics[("rows[status=repaid]", "cumulative")] == 3
    assert metrics[("rows[status=overdue]", "cumulative")] == 0  # allowed but absent: still a figure
    assert metrics[("sum(principal_minor)", "cumulative")] == 8000
    assert isinstance(metrics[("sum(principal_minor)", "day")], int)
    assert ("sum(principal_minor)[status=active]", "day") not in metrics


def test_payment_amounts_are_split_by_payment_type():
    agg = aggregates([("interest", 4, 1, 400, 100), ("principal", 2, 1, 9000, 4000)])
    metrics = entity_metrics(PAYMENTS, PAYMENT_CHECK, agg)
    assert metrics[("sum(amount_minor)[payment_type=interest]", "cumulative")] == 400
    assert metrics[("sum(amount_minor)[payment_type=principal]", "day")] == 4000
    assert metrics[("sum(amount_minor)", "cumulative")] == 9400


def test_an_entity_without_business_time_has_only_cumulative_figures_and_boolean_labels():
    check = EntityCheck(status="is_consented")
    metrics = entity_metrics(CUSTOMER_CONTACTS, check, aggregates([(True, 7, 0, 0, 0), (False, 2, 0, 0, 0)]))
    assert metrics == {
        ("rows", "cumulative"): 9,
        ("rows[is_consented=false]", "cumulative"): 2,
        ("rows[is_consented=true]", "cumulative"): 7,
    }


def test_a_status_outside_the_contract_still_gets_a_figure():
    metrics = entity_metrics(LOANS, LOAN_CHECK, aggregates([("bogus", 1, 0, 10, 0), (None, 1, 0, 5, 0)]))
    assert metrics[("rows[status=bogus]", "cumulative")] == 1
    assert metrics[("rows[status=null]", "cumulative")] == 1


def test_subtracting_in_flight_rows_works_group_by_group():
    total = aggregates([("active", 10, 2, 100, 20), ("repaid", 5, 0, 50, 0)])
    moved = aggregates([("active", 1, 1, 10, 10)])
    out = combine_aggregates([total, moved], sign=[1, -1]).set_index("grp")
    assert out.loc["active", "rows_cumulative"] == 9 and out.loc["active", "amount_day"] == 10
    assert out.loc["repaid", "rows_cumulative"] == 5


def test_compare_marks_figures_beyond_the_threshold_and_keeps_one_sided_ones():
    source = {("rows", "cumulative"): 10_000, ("rows[status=repaid]", "cumulative"): 100}
    warehouse = {
        ("rows", "cumulative"): 9_990,
        ("rows[status=repaid]", "cumulative"): 100,
        ("rows[status=bogus]", "cumulative"): 1,
    }
    figures = compare_metrics("loans", source, warehouse, 0.001).set_index("metric")
    assert figures.loc["rows", "passed"]  # 0.1% exactly passes
    assert figures.loc["rows", "divergence"] == pytest.approx(0.001)
    assert not figures.loc["rows[status=bogus]", "passed"]
    assert figures.loc["rows[status=bogus]", "source_value"] == 0
    assert entities_to_diff(figures.reset_index()) == ["loans"]


def test_only_entities_with_a_failing_figure_are_diffed_unless_any_difference_is_asked_for():
    figures = pd.concat(
        [
            compare_metrics("customers", {("rows", "day"): 5000}, {("rows", "day"): 4999}, 0.001),
            compare_metrics("loans", {("rows", "day"): 10}, {("rows", "day"): 9}, 0.001),
            compare_metrics("orders", {("rows", "day"): 10}, {("rows", "day"): 10}, 0.001),
        ]
    )
    assert entities_to_diff(figures) == ["loans"]
    assert entities_to_diff(figures, "any_difference") == ["customers", "loans"]


def loans(rows):
    return pd.DataFrame(rows, columns=["loan_id", "status", "principal_minor"]).astype(
        {"loan_id": "int64", "principal_minor": "Int64"}
    )


def test_diff_classifies_missing_extra_and_different_ids_in_key_order():
    source = loans([(1, "active", 100), (2, "repaid", 200), (3, "active", 300), (5, "overdue", 500)])
    warehouse = loans([(1, "active", 100), (2, "active", 250), (4, "active", 400), (5, "overdue", 500)])
    out = diff_rows(source, warehouse, key=["loan_id"], status="status", amount="principal_minor")
    assert out.to_dict("records") == [
        {"record_id": "[2]", "kind": "different_status", "source_value": "repaid", "warehouse_value": "active"},
        {"record_id": "[2]", "kind": "different_amount", "source_value": "200", "warehouse_value": "250"},
        {
            "record_id": "[3]",
            "kind": "missing",
            "source_value": "status=active; principal_minor=300",
            "warehouse_value": None,
        },
        {
            "record_id": "[4]",
            "kind": "extra",
            "source_value": None,
            "warehouse_value": "status=active; principal_minor=400",
        },
    ]


def test_an_id_missing_on_one_side_does_not_turn_equal_amounts_into_floats():
    source = pd.DataFrame({"loan_id": [1, 2], "principal_minor": [1000, 2000]})
    warehouse = pd.DataFrame({"loan_id": [1], "principal_minor": [1000]})
    out = diff_rows(source, warehouse, key=["loan_id"], amount="principal_minor")
    assert out[["record_id", "kind", "source_value"]].values.tolist() == [["[2]", "missing", "principal_minor=2000"]]


def test_diff_of_equal_sides_or_an_empty_side():
    source = loans([(1, "active", 100)])
    assert diff_rows(source, source, key=["loan_id"], status="status", amount="principal_minor").empty
    empty = pd.DataFrame(columns=["loan_id", "status", "principal_minor"])
    out = diff_rows(source, empty, key=["loan_id"], status="status", amount="principal_minor")
    assert out[["record_id", "kind"]].values.tolist() == [["[1]", "missing"]]
    out = diff_rows(empty, source, key=["loan_id"], status="status", amount="principal_minor")
    assert out[["record_id", "kind"]].values.tolist() == [["[1]", "extra"]]


def test_diff_treats_two_missing_values_as_equal_and_one_as_a_difference():
    source = loans([(1, None, None), (2, "active", None)])
    warehouse = loans([(1, None, None), (2, "active", 7)])
    out = diff_rows(source, warehouse, key=["loan_id"], status="status", amount="principal_minor")
    assert out[["record_id", "kind", "source_value", "warehouse_value"]].values.tolist() == [
        ["[2]", "different_amount", "null", "7"]
    ]


def test_composite_keys_become_json_lists_like_quarantine_record_keys():
    source = pd.DataFrame(
        {"customer_id": [1, 1, 2], "channel": ["email", "sms", "push"], "is_consented": [True, True, False]}
    )
    warehouse = pd.DataFrame({"customer_id": [1, 2], "channel": ["email", "push"], "is_consented": [False, False]})
    out = diff_rows(source, warehouse, key=["customer_id", "channel"], status="is_consented")
    assert out[["record_id", "kind", "source_value", "warehouse_value"]].values.tolist() == [
        ['[1, "email"]', "different_status", "true", "false"],
        ['[1, "sms"]', "missing", "is_consented=true", None],
    ]
    assert record_keys(pd.DataFrame({"loan_id": pd.Series([42], dtype="int64")}), ["loan_id"]) == ["[42]"]


def test_missing_ids_that_ingestion_rejected_are_marked_quarantined_with_the_rule():
    mismatches = pd.DataFrame(
        {
            "record_id": ["[1]", "[2]", "[3]"],
            "kind": ["missing", "missing", "extra"],
            "source_value": ["a", "b", None],
            "warehouse_value": [None, None, "c"],
        }
    )
    out = mark_quarantined(mismatches, {"[2]": "not_in_future", "[3]": "required"})
    assert out["kind"].tolist() == ["missing", "quarantined", "extra"]
    assert out.loc[1, "warehouse_value"] == "quarantined: not_in_future"
    assert out.loc[2, "warehouse_value"] == "c"


def test_the_collector_counts_exactly_but_stores_at_most_the_cap_per_kind():
    collector = MismatchCollector(cap=3)
    for start in (0, 2):
        chunk = pd.DataFrame(
            {
                "record_id": [f"[{i}]" for i in range(start, start + 2)] + ["[99]"],
                "kind": ["missing", "missing", "extra"],
                "source_value": None,
                "warehouse_value": None,
            }
        )
        collector.add(chunk)
    assert collector.counts == {"missing": 4, "extra": 2}
    kept = collector.frame()
    assert kept[kept.kind == "missing"].record_id.tolist() == ["[0]", "[1]", "[2]"]
    assert (kept.kind == "extra").sum() == 2


def test_the_verdict_names_failing_figures_and_mismatch_counts():
    figures = pd.concat(
        [
            compare_metrics(
                "loans",
                {("rows[status=repaid]", "cumulative"): 100},
                {("rows[status=repaid]", "cumulative"): 70},
                0.001,
            ),
            compare_metrics("orders", {("rows", "cumulative"): 50}, {("rows", "cumulative"): 50}, 0.001),
        ],
        ignore_index=True,
    )
    text = verdict_summary(AS_OF, figures, {"loans": {"different_status": 30, "missing": 0}}, 0.001)
    assert text.startswith("Reconciliation 2026-01-12: 1 of 2 figures diverge")
    assert "loans rows[status=repaid] (cumulative) source 100 vs warehouse 70 (30.00%)" in text
    assert "loans 30 different status" in text and "missing" not in text
    ok = verdict_summary(AS_OF, figures.iloc[1:], {}, 0.001)
    assert "all 1 figures are within 0.10%" in ok and "every figure matches exactly" in ok


def test_trend_shows_the_largest_divergence_per_day_and_marks_failed_days():
    history = pd.DataFrame(
        {
            "as_of": [date(2026, 1, 11), date(2026, 1, 12), date(2026, 1, 12)],
            "entity": ["loans", "loans", "orders"],
            "divergence": [0.0, 0.25, 0.0],
        }
    )
    text = trend_markdown(history, AS_OF, 30, 0.001)
    assert "| 2026-01-12 | 25.00% ✗ | 0.00% |" in text
    assert "| 2026-01-11 | 0.00% |  |" in text
    assert "2026-01-10" not in text  # days never reconciled are left out
    assert "No reconciliation results" in trend_markdown(history.iloc[0:0], AS_OF, 30, 0.001)


def test_config_defaults_match_the_committed_file_and_typos_fail_loudly(tmp_path, monkeypatch):
    assert load_config("reconcile", ReconciliationConfig) == ReconciliationConfig()
    monkeypatch.setenv("CRM_CONFIG_DIR", str(tmp_path))
    (tmp_path / "reconcile.yaml").write_text("entities:\n  loans:\n    status: state\n")
    with pytest.raises(ConfigError, match="loans has no column 'state'"):
        load_config("reconcile", ReconciliationConfig)
    (tmp_path / "reconcile.yaml").write_text("entities:\n  customer_contacts:\n    status: address\n")
    with pytest.raises(ConfigError, match="not a closed list"):
        load_config("reconcile", ReconciliationConfig)
    (tmp_path / "reconcile.yaml").write_text("entities:\n  app_events: {}\n")
    with pytest.raises(ConfigError, match="not a source-database entity"):
        load_config("reconcile", ReconciliationConfig)


def test_the_figures_table_shows_percentages_and_separators_diverging_first():
    from crm.reconcile import figures_table

    figures = pd.DataFrame(
        [
            {
                "entity": "loans",
                "metric": "rows",
                "scope": "day",
                "source_value": 1540,
                "warehouse_value": 1540,
                "divergence": 0.0,
                "threshold": 0.001,
                "passed": True,
            },
            {
                "entity": "loans",
                "metric": "sum(principal_minor)",
                "scope": "cumulative",
                "source_value": 1_000_000,
                "warehouse_value": 948_052,
                "divergence": 0.051948,
                "threshold": 0.001,
                "passed": False,
            },
        ]
    )
    rows = figures_table(figures)
    assert rows[0]["outcome"] == "DIVERGES" and rows[0]["divergence"] == "5.19%"
    assert rows[0]["source"] == "1,000,000" and rows[1]["warehouse"] == "1,540"
