"""Row-level validation: every row ends valid, rejected with its rule, or duplicate."""

from datetime import date

import numpy as np
import pandas as pd
import pytest

from crm.core.contracts import APP_EVENTS, CUSTOMER_CONTACTS, LOANS, MESSAGE_EVENTS, PAYMENTS
from crm.ingest.validation import MissingColumnsError, validate_frame

AS_OF = date(2026, 1, 10)
KNOWN = {"customers": pd.Index([1, 2, 3]), "loans": pd.Index([10, 11])}


def app_events(**overrides) -> pd.DataFrame:
    row = {
        "event_id": "e1",
        "customer_id": "1",
        "event_type": "login",
        "platform": "web",
        "occurred_at": "2026-01-10T08:00:00",
    }
    rows = [row | {"event_id": f"e{i}"} for i in range(3)]
    frame = pd.DataFrame(rows, dtype=object)
    for column, value in overrides.items():
        frame.loc[1, column] = value
    return frame


@pytest.mark.parametrize(
    ("column", "value", "rule"),
    [
        ("customer_id", "", "required"),
        ("customer_id", None, "required"),
        ("customer_id", "abc", "type"),
        ("customer_id", "1.5", "type"),
        ("occurred_at", "not-a-date", "type"),
        ("event_type", "teleport", "allowed_values"),
        ("occurred_at", "2026-01-11T00:00:00", "not_in_future"),
        ("customer_id", "99", "known_reference"),
    ],
)
def test_a_bad_value_rejects_its_row_with_the_rule_it_broke(column, value, rule):
    result = validate_frame(
        app_events(**{column: value}), APP_EVENTS, as_of=AS_OF, known_ids=KNOWN, row_numbers=np.array([1, 2, 3])
    )
    assert len(result.valid) == 2
    assert result.rejected[["row_number", "rule"]].to_dict("records") == [{"row_number": 2, "rule": rule}]
    assert column in result.rejected.loc[0, "reason"]
    assert '"event_id": "e1"' in result.rejected.loc[0, "record"]


def test_the_last_second_of_the_business_day_is_not_in_the_future():
    result = validate_frame(app_events(occurred_at="2026-01-10T23:59:59"), APP_EVENTS, as_of=AS_OF, known_ids=KNOWN)
    assert result.rejected.empty


def test_repeated_keys_count_as_duplicates_and_keep_the_first_row():
    frame = pd.concat([app_events(), app_events().iloc[[0]].assign(platform="ios")], ignore_index=True)
    result = validate_frame(frame, APP_EVENTS, as_of=AS_OF, known_ids=KNOWN)
    assert (len(result.valid), len(result.rejected), result.duplicates) == (3, 0, 1)
    assert result.valid.loc[result.valid.event_id == "e0", "platform"].item() == "web"
    assert result.rows_read == 4


def test_missing_columns_make_the_whole_batch_unusable():
    with pytest.raises(MissingColumnsError, match="missing columns occurred_at"):
        validate_frame(app_events().drop(columns="occurred_at"), APP_EVENTS, as_of=AS_OF)


def test_valid_rows_are_typed():
    result = validate_frame(app_events(), APP_EVENTS, as_of=AS_OF, known_ids=KNOWN)
    assert str(result.valid.customer_id.dtype) == "Int64"
    assert str(result.valid.occurred_at.dtype).startswith("datetime64")


def test_timestamps_with_an_offset_are_stored_in_utc():
    result = validate_frame(
        app_events(occurred_at="2026-01-10T10:00:00+02:00"), APP_EVENTS, as_of=AS_OF, known_ids=KNOWN
    )
    assert result.valid.loc[1, "occurred_at"] == pd.Timestamp("2026-01-10T08:00:00")


def test_negative_money_and_unknown_loans_are_rejected_in_database_rows():
    frame = pd.DataFrame(
        {
            "payment_id": [1, 2, 3],
            "loan_id": [10, 10, 12],
            "customer_id": [1, 1, 1],
            "paid_at": pd.to_datetime(["2026-01-09"] * 3),
            "payment_type": ["interest", "principal", "interest"],
            "amount_minor": [500, -100, 500],
            "updated_at": pd.to_datetime(["2026-01-09"] * 3),
        }
    )
    result = validate_frame(frame, PAYMENTS, as_of=AS_OF, known_ids=KNOWN)
    assert result.rejected["rule"].tolist() == ["non_negative", "known_reference"]
    assert result.rejected["reason"].tolist()[1] == "loan_id 12 is not a known loans"
    assert result.valid.payment_id.tolist() == [1]


def test_json_numbers_and_strings_mix_in_one_column():
    frame = pd.DataFrame(
        [
            {
                "event_id": "m1",
                "message_id": "x",
                "customer_id": 1,
                "channel": "sms",
                "event_type": "sent",
                "occurred_at": "2026-01-10T01:00:00",
                "campaign_id": None,
                "provider": "sms-gateway",
            },
            {
                "event_id": "m2",
                "message_id": "x",
                "customer_id": "abc",
                "channel": "sms",
                "event_type": "sent",
                "occurred_at": "2026-01-10T01:00:00",
                "campaign_id": "c",
                "provider": "sms-gateway",
            },
        ],
        dtype=object,
    )
    result = validate_frame(frame, MESSAGE_EVENTS, as_of=AS_OF, known_ids=KNOWN)
    assert result.valid.event_id.tolist() == ["m1"]
    assert result.valid.campaign_id.tolist() == [None]
    assert result.rejected.rule.tolist() == ["type"]


def test_booleans_parse_from_text():
    frame = pd.DataFrame(
        {
            "customer_id": ["1", "2", "3"],
            "channel": ["sms"] * 3,
            "address": ["+380671234567"] * 3,
            "is_consented": ["true", "0", "maybe"],
            "updated_at": ["2026-01-01"] * 3,
        }
    )
    result = validate_frame(frame, CUSTOMER_CONTACTS, as_of=AS_OF, known_ids=KNOWN)
    assert result.valid.is_consented.tolist() == [True, False]
    assert result.rejected.rule.tolist() == ["type"]


# --------------------------------------------------------------------------- strict types (issue 8)


def message_events(value_column: str, value, **extra) -> pd.DataFrame:
    """Two JSON-line records: a good one, then one whose `value_column` holds `value`."""
    row = {
        "event_id": "m0",
        "message_id": "x",
        "customer_id": 1,
        "channel": "sms",
        "event_type": "sent",
        "occurred_at": "2026-01-10T01:00:00",
        "campaign_id": "c",
        "provider": "sms-gateway",
    }
    frame = pd.DataFrame([row, {**row, "event_id": "m1", value_column: value, **extra}], dtype=object)
    return frame


@pytest.mark.parametrize(
    ("column", "value", "rule"),
    [
        ("customer_id", True, "type"),  # a boolean is not an integer (it used to become customer 1)
        ("customer_id", 10.0, "type"),
        ("customer_id", 1e1, "type"),
        ("customer_id", "+10", "type"),
        ("customer_id", "10.0", "type"),
        ("customer_id", "1e1", "type"),
        ("customer_id", [1], "type"),
        ("customer_id", "9" * 20, "type"),  # beyond BIGINT
        ("customer_id", 2**63, "type"),  # a JSON integer beyond BIGINT too
        ("provider", {"a": 1}, "type"),  # an object is not text (it used to be stored as its repr)
        ("provider", ["a"], "type"),
        ("provider", 1.5, "type"),
        ("campaign_id", True, "type"),  # it used to become "True"
        ("occurred_at", 1767225600, "type"),  # epoch seconds are not ISO 8601
        ("occurred_at", "1900-01-01T00:00:00", "plausible_date"),
        ("occurred_at", "1969-12-31T23:59:59", "plausible_date"),
        ("message_id", "e" * 65, "max_length"),
    ],
)
def test_json_values_of_the_wrong_type_are_quarantined_under_their_rule(column, value, rule):
    result = validate_frame(message_events(column, value), MESSAGE_EVENTS, as_of=AS_OF, known_ids=KNOWN, origin="json")
    assert result.valid.event_id.tolist() == ["m0"]
    assert result.rejected[["record_key", "rule"]].to_dict("records") == [{"record_key": '["m1"]', "rule": rule}]
    assert result.rejected.loc[0, "reason"].startswith(column)


@pytest.mark.parametrize(
    ("value", "stored"),
    [
        (10, 10),
        ("10", 10),
        (" 10 ", 10),
        ("-0", 0),
        ("0010", 10),
        (9007199254740993, 9007199254740993),
        (-(2**63), -(2**63)),
        (2**63 - 1, 2**63 - 1),
    ],
)
def test_json_integers_and_digit_strings_are_accepted_exactly(value, stored):
    known = {"customers": pd.Index([1, stored])}
    result = validate_frame(
        message_events("customer_id", value), MESSAGE_EVENTS, as_of=AS_OF, known_ids=known, origin="json"
    )
    assert result.rejected.empty
    assert result.valid.customer_id.tolist() == [1, stored]


def test_integers_beyond_two_to_the_53_are_exact_in_csv_and_json():
    big = 9007199254740993
    known = {"customers": pd.Index([1, big])}
    for origin, value in (("json", big), ("csv", str(big)), ("json", "9223372036854775807")):
        result = validate_frame(
            message_events("customer_id", value), MESSAGE_EVENTS, as_of=AS_OF, known_ids=None, origin=origin
        )
        assert result.valid.customer_id.tolist()[1] == int(value), origin
    result = validate_frame(
        message_events("customer_id", big), MESSAGE_EVENTS, as_of=AS_OF, known_ids=known, origin="json"
    )
    assert result.rejected.empty


def test_a_json_integer_is_accepted_as_text():
    result = validate_frame(message_events("campaign_id", 12345), MESSAGE_EVENTS, as_of=AS_OF, origin="json")
    assert result.valid.campaign_id.tolist() == ["c", "12345"]


@pytest.mark.parametrize("value", ["+10", "10.0", "1e1", "0x10", "١٠"])
def test_csv_integers_are_decimal_digits_only(value):
    result = validate_frame(app_events(customer_id=value), APP_EVENTS, as_of=AS_OF, known_ids=KNOWN, origin="csv")
    assert result.rejected.rule.tolist() == ["type"]


def test_an_optional_column_absent_from_every_record_is_null():
    frame = message_events("provider", "p").drop(columns="campaign_id")
    result = validate_frame(frame, MESSAGE_EVENTS, as_of=AS_OF, known_ids=KNOWN, origin="json")
    assert result.rejected.empty
    assert result.valid.campaign_id.tolist() == [None, None]


def test_the_plausibility_floor_is_a_parameter_and_its_first_instant_is_plausible():
    frame = app_events(occurred_at="2000-01-01T00:00:00")
    assert validate_frame(frame, APP_EVENTS, as_of=AS_OF, known_ids=KNOWN, origin="csv").rejected.empty
    later = validate_frame(
        frame, APP_EVENTS, as_of=AS_OF, known_ids=KNOWN, origin="csv", plausible_since=date(2000, 1, 2)
    )
    assert later.rejected.rule.tolist() == ["plausible_date"]
    assert "before 2000-01-02" in later.rejected.reason[0]


def test_an_over_long_field_quarantines_its_row_with_its_row_number():
    result = validate_frame(
        app_events(event_id="d" * 200_000),
        APP_EVENTS,
        as_of=AS_OF,
        known_ids=KNOWN,
        origin="csv",
        row_numbers=np.array([1, 2, 3]),
    )
    assert result.valid.event_id.tolist() == ["e0", "e2"]
    assert result.rejected[["row_number", "rule"]].to_dict("records") == [{"row_number": 2, "rule": "max_length"}]
    assert len(result.rejected.record[0]) < 70_000  # what was received, cut with a marker
    assert result.rejected.record[0].endswith("…(cut)")


def test_quarantine_keeps_json_lines_as_received():
    frame = message_events("customer_id", True)
    received = ['{"event_id": "m0"}', '{"event_id": "m1", "customer_id": true, "extra": [1]}']
    result = validate_frame(frame, MESSAGE_EVENTS, as_of=AS_OF, known_ids=KNOWN, origin="json", received=received)
    assert result.rejected.record.tolist() == [received[1]]


def test_a_json_integer_beyond_bigint_is_quarantined_with_its_digits():
    result = validate_frame(message_events("customer_id", 2**64), MESSAGE_EVENTS, as_of=AS_OF, origin="json")
    assert result.rejected.reason.tolist() == [f"customer_id '{str(2**64)[:40]}' is not a valid int"]


@pytest.mark.parametrize("known", [pd.Index([1, 1, 2, 3]), pd.Index([1.0, 2.0, 3.0]), pd.Index([3, 2, 1])])
def test_references_are_checked_against_any_index_of_known_keys(known):
    result = validate_frame(
        app_events(customer_id="99"), APP_EVENTS, as_of=AS_OF, known_ids={"customers": known}, origin="csv"
    )
    assert result.rejected.rule.tolist() == ["known_reference"]
    assert result.valid.customer_id.tolist() == [1, 1]


def test_database_dates_are_typed_and_a_missing_required_one_is_empty():
    loans = pd.DataFrame(
        {
            "loan_id": [1, 2],
            "application_id": [5, 6],
            "customer_id": [1, 2],
            "issued_at": pd.to_datetime(["2026-01-09"] * 2),
            "principal_minor": [100, 100],
            "daily_rate_bp": [10, 10],
            "term_days": [14, 14],
            "due_on": [date(2026, 1, 23), None],
            "status": ["active", "active"],
            "closed_at": pd.to_datetime([None, None]),
            "updated_at": pd.to_datetime(["2026-01-09"] * 2),
        }
    )
    result = validate_frame(loans, LOANS, as_of=AS_OF)
    assert result.valid.due_on.tolist() == [pd.Timestamp("2026-01-23")]
    assert result.rejected[["rule", "reason"]].to_dict("records") == [
        {"rule": "required", "reason": "due_on is required but empty"}
    ]
