"""Row-level validation: every row ends valid, rejected with its rule, or duplicate."""

from datetime import date

import numpy as np
import pandas as pd
import pytest

from crm.core.contracts import APP_EVENTS, CUSTOMER_CONTACTS, MESSAGE_EVENTS, PAYMENTS
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
