"""Every suite passes a clean day and fails a bad one, by the rule that names the problem."""

from __future__ import annotations

import json
import re
from datetime import date, datetime

import pytest

from crm.quality import QualityConfig, validate_suites
from crm.quality.datadocs import external_assets
from expectations import SUITE_NAMES, SuiteContext, build_suites
from tests.expectations.conftest import AS_OF, at, good_day

CONFIG = QualityConfig()


def run(warehouse, *names: str, bands: dict | None = None, docs_dir=None, dialect: str = "sqlite") -> list[dict]:
    context = SuiteContext(as_of=AS_OF, dialect=dialect, config=CONFIG, volume_bands=bands or {})
    return validate_suites(
        warehouse.url, build_suites(context, names or None), examples=CONFIG.examples, docs_dir=docs_dir
    )


def failed(rows: list[dict]) -> dict[str, dict]:
    return {r["rule"]: r for r in rows if not r["success"]}


def test_every_expectation_carries_a_severity_and_a_rule_and_ids_are_unique_per_suite():
    context = SuiteContext(as_of=AS_OF, dialect="postgresql", config=CONFIG, volume_bands={"payments": (1, 10)})
    from crm.quality.results import expectation_id

    for spec in build_suites(context):
        ids = []
        for e in spec.expectations:
            config = e.configuration.to_json_dict()
            assert config["meta"]["severity"] in ("critical", "warning"), config
            assert config["meta"]["rule"], config
            ids.append(expectation_id(config))
        assert len(ids) == len(set(ids)), spec.name


@pytest.mark.parametrize("suite", SUITE_NAMES)
def test_a_clean_day_passes_the_suite(good_warehouse, suite):
    rows = run(good_warehouse, suite)
    assert rows and all(r["suite"] == suite for r in rows)
    assert failed(rows) == {}


def _bad(warehouse, name: str, rows: list[dict], as_of: date = AS_OF) -> None:
    warehouse.write(f"stg_{name}", rows, as_of)


def _row(name: str, index: int = 0, **changes) -> dict:
    return good_day()[name][index] | changes


BAD_DAYS = {
    "customers": [
        (lambda w: _bad(w, "customers", [_row("customers", signup_channel="telepathy")]), "allowed_values", "critical"),
        (
            lambda w: _bad(w, "customers", [_row("customers", registered_at=at(9, date(2026, 1, 13)))]),
            "not_in_future",
            "critical",
        ),
        (
            lambda w: _bad(w, "customers", [_row("customers", birth_date=date(1850, 1, 1))]),
            "plausible_birth_date",
            "warning",
        ),
    ],
    "customer_contacts": [
        (
            lambda w: _bad(w, "customer_contacts", [_row("customer_contacts", customer_id=99)]),
            "known_reference",
            "critical",
        ),
        (
            lambda w: _bad(w, "customer_contacts", [_row("customer_contacts", channel="pigeon")]),
            "allowed_values",
            "critical",
        ),
    ],
    "loan_applications": [
        (
            lambda w: w.execute("DELETE FROM stg_application_status_changes WHERE change_id = 101"),
            "issued_after_approval",
            "critical",
        ),
        (
            lambda w: _bad(w, "loan_applications", [_row("loan_applications", 1, requested_amount_minor=-1)]),
            "non_negative",
            "critical",
        ),
    ],
    "application_status_changes": [
        (
            lambda w: _bad(w, "application_status_changes", [_row("application_status_changes", status="lost")]),
            "allowed_values",
            "critical",
        ),
        (
            lambda w: _bad(
                w, "application_status_changes", [_row("application_status_changes", change_id=999, application_id=77)]
            ),
            "known_reference",
            "critical",
        ),
    ],
    "loans": [
        (lambda w: _bad(w, "loans", [_row("loans", principal_minor=10**12)]), "plausible_range", "warning"),
        (lambda w: _bad(w, "loans", [_row("loans", customer_id=99)]), "known_reference", "critical"),
        (lambda w: _bad(w, "loans", [_row("loans", term_days=0)]), "positive_terms", "critical"),
    ],
    "payments": [
        # The lost-status bug: today's repayment covers the principal, the loan is still active.
        (
            lambda w: _bad(w, "payments", [_row("payments", payment_id=5002, amount_minor=40_000)]),
            "repaid_loan_closed",
            "critical",
        ),
        (lambda w: _bad(w, "payments", [_row("payments", amount_minor=-300)]), "non_negative", "critical"),
        (lambda w: _bad(w, "payments", [_row("payments", loan_id=4242)]), "known_reference", "critical"),
        (lambda w: _bad(w, "payments", [_row("payments", customer_id=2)]), "same_customer_as_loan", "warning"),
    ],
    "orders": [
        (lambda w: _bad(w, "orders", [_row("orders", product_group="cars")]), "allowed_values", "critical"),
        (lambda w: w.execute("ALTER TABLE hist_orders ADD COLUMN coupon TEXT"), "schema", "critical"),
        (
            lambda w: (
                w.execute("ALTER TABLE hist_orders DROP COLUMN amount_minor")
                or w.execute("ALTER TABLE hist_orders ADD COLUMN amount_minor TEXT")
            ),
            "type",
            "critical",
        ),
    ],
    "app_events": [
        (
            lambda w: _bad(w, "app_events", [_row("app_events", occurred_at=at(1, date(2026, 1, 13)))]),
            "not_in_future",
            "critical",
        ),
        (lambda w: _bad(w, "app_events", [_row("app_events", platform="fax")]), "allowed_values", "critical"),
        (lambda w: w.execute("DELETE FROM stg_app_events"), "fresh_rows", "critical"),
    ],
    "message_events": [
        (
            lambda w: w.execute("UPDATE stg_message_events SET occurred_at = '2026-01-11 09:00:00.000000'"),
            "fresh_events",
            "critical",
        ),
        (
            lambda w: _bad(w, "message_events", [_row("message_events", event_type="teleported")]),
            "allowed_values",
            "critical",
        ),
    ],
}
CASES = [(suite, i) for suite, cases in BAD_DAYS.items() for i in range(len(cases))]


@pytest.mark.parametrize(("suite", "case"), CASES, ids=[f"{s}-{BAD_DAYS[s][i][1]}" for s, i in CASES])
def test_a_bad_day_fails_the_suite_by_rule_with_examples(good_warehouse, suite, case):
    spoil, rule, severity = BAD_DAYS[suite][case]
    spoil(good_warehouse)
    problems = failed(run(good_warehouse, suite))
    assert rule in problems, sorted(problems)
    assert problems[rule]["severity"] == severity
    assert json.loads(problems[rule]["unexpected_examples"]), problems[rule]


def test_every_staging_suite_has_a_bad_day():
    assert set(BAD_DAYS) == set(SUITE_NAMES) - {"ingestion"}


def test_volume_outside_the_recent_band_is_a_warning(good_warehouse):
    rows = run(good_warehouse, "payments", bands={"payments": (50, 200)})
    problem = failed(rows)["volume"]
    assert problem["severity"] == "warning"
    assert "observed 2" in json.loads(problem["unexpected_examples"])[0]
    assert failed(run(good_warehouse, "payments", bands={"payments": (1, 5)})) == {}


# --------------------------------------------------------------------------- ingestion suite


def _quarantine(warehouse, source: str, entity: str, rule: str, reason: str, n: int) -> None:
    rows = [
        {
            "as_of": AS_OF,
            "source": source,
            "entity": entity,
            "row_number": i + 1,
            "record_key": f'["x{i}"]',
            "rule": rule,
            "reason": reason,
            "record": "{}",
        }
        for i in range(n)
    ]
    warehouse.write("quarantined_rows", rows)


def test_quarantine_above_one_percent_is_critical_and_names_rules_and_reasons(good_warehouse):
    source = f"file:app_events/app_events_{AS_OF}.csv"
    good_warehouse.execute(
        "UPDATE ingest_coverage SET rows_read = 200, rows_quarantined = 5 WHERE source = :s", s=source
    )
    _quarantine(
        good_warehouse, source, "app_events", "not_in_future", "occurred_at 2026-01-14 is after the business day", 3
    )
    _quarantine(good_warehouse, source, "app_events", "known_reference", "customer_id 99 is not a known customers", 2)
    problems = failed(run(good_warehouse, "ingestion"))
    assert {"quarantine_share_critical", "quarantine_share_warning"} <= set(problems)
    critical = problems["quarantine_share_critical"]
    assert critical["severity"] == "critical"
    examples = " ".join(json.loads(critical["unexpected_examples"]))
    assert "not_in_future" in examples and "known_reference" in examples and "customer_id 99" in examples
    assert source in examples


def test_a_small_quarantine_share_is_only_a_warning(good_warehouse):
    good_warehouse.execute(
        "UPDATE ingest_coverage SET rows_read = 1000, rows_quarantined = 5 WHERE source = 'db:payments'"
    )
    _quarantine(good_warehouse, "db:payments", "payments", "non_negative", "amount_minor -5 is negative", 5)
    problems = failed(run(good_warehouse, "ingestion"))
    assert set(problems) == {"quarantine_share_warning"}


def test_a_failed_landing_file_is_critical_with_its_error(good_warehouse):
    good_warehouse.write(
        "landing_files",
        [
            {
                "file_key": f"message_events/sms-gateway_{AS_OF}.jsonl",
                "checksum": "ab" * 32,
                "entity": "message_events",
                "business_date": AS_OF,
                "size_bytes": 10,
                "status": "failed",
                "error": "no line is a JSON object",
                "as_of": AS_OF,
            }
        ],
    )
    problem = failed(run(good_warehouse, "ingestion"))["failed_files"]
    assert problem["severity"] == "critical"
    assert (
        "sms-gateway" in problem["unexpected_examples"] and "no line is a JSON object" in problem["unexpected_examples"]
    )


def test_a_misplaced_landing_file_closes_the_gate_like_a_rejected_one(good_warehouse):
    good_warehouse.write(
        "landing_files",
        [
            {
                "file_key": "app_event/app_events_2026-01-05.csv",
                "checksum": "cd" * 32,
                "entity": "unknown",
                "business_date": AS_OF,
                "size_bytes": 10,
                "status": "misplaced",
                "error": "app_event/app_events_2026-01-05.csv: misplaced: unknown entity folder 'app_event'",
                "as_of": AS_OF,
            }
        ],
    )
    problem = failed(run(good_warehouse, "ingestion"))["failed_files"]
    assert problem["severity"] == "critical"
    assert "unknown entity folder" in problem["unexpected_examples"]


def test_duplicates_above_the_threshold_are_a_warning(good_warehouse):
    good_warehouse.execute(
        "UPDATE ingest_coverage SET rows_read = 100, rows_duplicate = 5 WHERE source = 'db:payments'"
    )
    problems = failed(run(good_warehouse, "ingestion"))
    assert set(problems) == {"duplicate_share"} and problems["duplicate_share"]["severity"] == "warning"


def test_a_day_never_ingested_fails_the_ingestion_suite(warehouse):
    problems = failed(run(warehouse, "ingestion"))
    assert problems["ingestion_ran"]["severity"] == "critical"


# --------------------------------------------------------------------------- robustness and privacy


def test_a_suite_whose_table_is_gone_is_a_critical_finding_not_a_crash(good_warehouse):
    good_warehouse.execute("DROP TABLE hist_orders")  # the day's versions of orders are checked there
    rows = run(good_warehouse, "orders", "payments")
    problems = {r["suite"]: r for r in rows if not r["success"]}
    assert set(problems) == {"orders"}
    assert problems["orders"]["rule"] == "suite_ran" and problems["orders"]["severity"] == "critical"


def test_examples_and_data_docs_never_show_a_raw_contact(good_warehouse, tmp_path):
    _bad(good_warehouse, "app_events", [_row("app_events", event_id="anna.smith@example.com", platform="fax")])
    docs = tmp_path / "docs"
    rows = run(good_warehouse, "app_events", docs_dir=docs)
    examples = failed(rows)["allowed_values"]["unexpected_examples"]
    assert "anna.smith@example.com" not in examples and "a***@e***.com" in examples
    pages = [p.read_text() for p in docs.rglob("*.html")]
    assert (docs / "index.html").exists() and any("validations" in str(p) for p in docs.rglob("*.html"))
    assert not any("anna.smith@example.com" in page for page in pages)


def test_data_docs_open_without_internet(good_warehouse, tmp_path):
    docs = tmp_path / "docs"
    run(good_warehouse, "app_events", docs_dir=docs)
    pages = list(docs.rglob("*.html"))
    assert len(pages) >= 2  # the index and at least one validation page
    for page in pages:
        html = page.read_text()
        assert external_assets(html) == [], page
        local = re.findall(r'<(?:script|link)\b[^>]*?(?:src|href)="([^"]+\.(?:js|css))"', html)
        assert any("jquery.min.js" in src for src in local), page
        for src in local:
            assert (page.parent / src).resolve().is_file(), (page, src)


def test_datetimes_in_examples_stay_legible(good_warehouse):
    _bad(good_warehouse, "app_events", [_row("app_events", occurred_at=datetime(2026, 1, 14, 8))])
    examples = failed(run(good_warehouse, "app_events"))["not_in_future"]["unexpected_examples"]
    assert "2026-01-14 08:00:00" in examples
