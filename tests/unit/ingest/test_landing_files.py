"""Landing-file naming and parsing: bad lines are kept as rejected rows, unusable files fail by name."""

import gzip
from datetime import date

import pytest

from crm.core.contracts import APP_EVENTS, MESSAGE_EVENTS
from crm.core.privacy import mask_contacts
from crm.core.storage import LocalStore
from crm.ingest import LandingFile, MalformedFileError, landing_file_key, list_landing_files, parse_landing_file

DAY = date(2026, 1, 5)


def csv_file(key="app_events/app_events_2026-01-05.csv"):
    return LandingFile(key=key, entity=APP_EVENTS, business_date=DAY, size_bytes=0)


def jsonl_file(key="message_events/sms-gateway_2026-01-05.jsonl"):
    return LandingFile(key=key, entity=MESSAGE_EVENTS, business_date=DAY, size_bytes=0)


def test_file_keys_follow_the_contract_and_are_listed_by_business_date(tmp_path):
    zone = LocalStore(tmp_path)
    for day in (date(2026, 1, 4), DAY, date(2026, 1, 6)):
        zone.write_bytes(landing_file_key(APP_EVENTS, "app_events", day), b"x")
    zone.write_bytes(landing_file_key(MESSAGE_EVENTS, "sms-gateway", DAY, compressed=True), b"x")
    zone.write_bytes("app_events/events-final(2).csv", b"x")
    files, misnamed = list_landing_files(zone, DAY)
    assert [f.key for f in files] == [
        "app_events/app_events_2026-01-04.csv",
        "app_events/app_events_2026-01-05.csv",
        "message_events/sms-gateway_2026-01-05.jsonl.gz",
    ]
    assert misnamed == ["app_events/events-final(2).csv"]


def test_csv_rows_with_the_wrong_number_of_fields_are_kept_as_unreadable_rows():
    data = b"event_id,customer_id,event_type,platform,occurred_at\na,1,login,web,2026-01-05T01:00:00\nb,1,login\n\nc,2,login,web,2026-01-05T02:00:00\n"
    frame, numbers, unreadable = parse_landing_file(data, csv_file())
    assert frame.event_id.tolist() == ["a", "c"]
    assert numbers.tolist() == [1, 4]
    assert unreadable.row_number.tolist() == [2]
    assert "3 fields, the header has 5" in unreadable.reason[0]


def test_jsonl_lines_that_are_not_json_are_kept_as_unreadable_rows():
    data = b'{"event_id": "a", "customer_id": 1}\n{broken\n[1, 2]\n'
    frame, _numbers, unreadable = parse_landing_file(data, jsonl_file())
    assert frame.event_id.tolist() == ["a"]
    assert unreadable.row_number.tolist() == [2, 3]


def test_gzip_files_are_read():
    data = gzip.compress(b'{"event_id": "a"}\n')
    frame, _, _ = parse_landing_file(data, jsonl_file("message_events/sms-gateway_2026-01-05.jsonl.gz"))
    assert frame.event_id.tolist() == ["a"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty file"),
        (b"\xff\xfe\x00garbage", "not UTF-8"),
        (b"id\x00,x\n", "binary content"),
    ],
)
def test_unusable_csv_files_fail_with_a_reason(data, message):
    with pytest.raises(MalformedFileError, match=message):
        parse_landing_file(data, csv_file())


def test_a_jsonl_file_with_no_json_line_fails():
    with pytest.raises(MalformedFileError, match="no line is a JSON object"):
        parse_landing_file(b"<html>oops</html>\n", jsonl_file())


def test_contacts_are_masked_in_text():
    text = mask_contacts(
        "customer +380671234567 wrote from olena.k@example.com, token 0123456789abcdef0123456789abcdef"
    )
    assert "380671234567" not in text and "olena.k@example.com" not in text and "0123456789abcdef0123" not in text
    assert "o***@e***.com" in text


def test_masking_leaves_dates_and_amounts_readable():
    text = "paid_at 2026-01-10 12:00:00 amount_minor 1234567890 for loan 42"
    assert mask_contacts(text) == text
    assert "0671234567" not in mask_contacts("call 0671234567")
