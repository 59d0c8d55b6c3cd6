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
    files, misplaced = list_landing_files(zone, DAY)
    assert [f.key for f in files] == [
        "app_events/app_events_2026-01-04.csv",
        "app_events/app_events_2026-01-05.csv",
        "message_events/sms-gateway_2026-01-05.jsonl.gz",
    ]
    assert [m.key for m in misplaced] == ["app_events/events-final(2).csv"]


def test_csv_rows_with_the_wrong_number_of_fields_are_kept_as_unreadable_rows():
    data = b"event_id,customer_id,event_type,platform,occurred_at\na,1,login,web,2026-01-05T01:00:00\nb,1,login\n\nc,2,login,web,2026-01-05T02:00:00\n"
    frame, numbers, unreadable, _ = parse_landing_file(data, csv_file())
    assert frame.event_id.tolist() == ["a", "c"]
    assert numbers.tolist() == [1, 4]
    assert unreadable.row_number.tolist() == [2]
    assert "3 fields, the header has 5" in unreadable.reason[0]


def test_jsonl_lines_that_are_not_json_are_kept_as_unreadable_rows():
    data = b'{"event_id": "a", "customer_id": 1}\n{broken\n[1, 2]\n'
    frame, _numbers, unreadable, _ = parse_landing_file(data, jsonl_file())
    assert frame.event_id.tolist() == ["a"]
    assert unreadable.row_number.tolist() == [2, 3]


def test_gzip_files_are_read():
    data = gzip.compress(b'{"event_id": "a"}\n')
    frame, _, _, _ = parse_landing_file(data, jsonl_file("message_events/sms-gateway_2026-01-05.jsonl.gz"))
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


# --------------------------------------------------------------------------- hostile files (issue 8)

HEADER = "event_id,customer_id,event_type,platform,occurred_at\n"


def test_a_csv_header_that_repeats_a_column_fails_the_file_by_name():
    data = (HEADER.replace("platform", "event_type") + "a,1,login,web,2026-01-05T01:00:00\n").encode()
    with pytest.raises(MalformedFileError, match=r"the header repeats column\(s\) 'event_type'"):
        parse_landing_file(data, csv_file())


def test_a_first_line_longer_than_the_csv_modules_limit_is_read():
    # The csv module's default field limit is 131,072 characters: it used to crash the task.
    data = ("x" * 200_000 + "," + HEADER).encode()
    frame, _, _, _ = parse_landing_file(data, csv_file())
    assert frame.columns.tolist() == ["x" * 200_000, *HEADER.strip().split(",")] and len(frame) == 0


def test_an_over_long_csv_field_is_a_row_not_a_file_error_and_keeps_its_row_number():
    rows = ["a,1,login,web,2026-01-05T01:00:00", "b,1,login,web,2026-01-05T01:00:00"]
    rows += ["c,1,login,web,2026-01-05T01:00:00", "d" * 200_000 + ",1,login,web,2026-01-05T01:00:00"]
    frame, numbers, unreadable, _ = parse_landing_file((HEADER + "\n".join(rows) + "\n").encode(), csv_file())
    assert numbers.tolist() == [1, 2, 3, 4]
    assert len(frame.loc[3, "event_id"]) == 200_000 and unreadable.empty


def test_json_lines_are_split_on_newline_only_not_on_unicode_line_separators():
    line1 = '{"event_id": "a\u2028b", "provider": "x\u0085y"}'
    line2 = '{"event_id": "c\u2029d", "provider": "\\u000bz\\u001c"}'  # JSON escapes: raw controls are invalid
    frame, numbers, unreadable, received = parse_landing_file(f"{line1}\r\n{line2}\n".encode(), jsonl_file())
    assert frame.event_id.tolist() == ["a\u2028b", "c\u2029d"]
    assert frame.provider.tolist() == ["x\u0085y", "\u000bz\u001c"]
    assert numbers.tolist() == [1, 2] and unreadable.empty
    assert received == [line1, line2]


def test_json_integers_stay_exact_python_ints_beyond_two_to_the_53():
    frame, _, _, _ = parse_landing_file(b'{"event_id": "a", "customer_id": 9007199254740993}\n', jsonl_file())
    value = frame.loc[0, "customer_id"]
    assert type(value) is int and value == 9007199254740993


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ('{"event_id": NaN}', "NaN is not a JSON value"),
        ('{"event_id": "a", "customer_id": ' + "9" * 5000 + "}", "not valid JSON"),
        ("[" * 100_000 + "]" * 100_000, "not valid JSON"),
        ('{"event_id": "a\\u0000b"}', "NUL or an unpaired surrogate"),
        ('{"event_id": "\\ud800"}', "NUL or an unpaired surrogate"),
        ("\u2028", "not valid JSON"),
    ],
)
def test_json_lines_no_database_could_store_are_unreadable_rows_not_crashes(line, reason):
    good = '{"event_id": "ok"}'
    frame, _, unreadable, _ = parse_landing_file(f"{good}\n{line}\n".encode(), jsonl_file())
    assert frame.event_id.tolist() == ["ok"]
    assert unreadable.row_number.tolist() == [2]
    assert reason in unreadable.reason[0]


def test_only_contract_columns_of_json_lines_are_kept():
    keys = ", ".join(f'"k{i}": {i}' for i in range(2000))
    frame, _, _, _ = parse_landing_file(('{"event_id": "a", ' + keys + "}\n").encode(), jsonl_file())
    assert list(frame.columns) == ["event_id"]


def test_a_corrupt_gzip_file_fails_by_name():
    data = gzip.compress(b'{"event_id": "a"}\n')
    with pytest.raises(MalformedFileError, match="not a gzip file"):
        parse_landing_file(data[:12] + b"\xff" * 20 + data[32:], jsonl_file("message_events/x_2026-01-05.jsonl.gz"))


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("app_events_2026-01-05.csv", "a file at the landing root"),
        ("app_event/app_events_2026-01-05.csv", "unknown entity folder 'app_event'"),
        ("app_events/nested/x_2026-01-05.csv", "in a nested folder: files go directly in app_events/"),
        ("app_events/App Events 2026-01-05.csv", "the name breaks the landing-file contract"),
        ("app_events/app_events_2026-01-05.jsonl", "app_events files are .csv, not .jsonl"),
        ("app_events/app_events_2026-02-30.csv", "2026-02-30 is not a date"),
        ("app_events/" + "a" * 250 + "/" + "b" * 250 + "/x_2026-01-05.csv", "longer than 500 characters"),
        (".DS_Store", "a file at the landing root"),
    ],
)
def test_every_file_outside_the_contract_is_reported_as_misplaced_with_its_reason(tmp_path, key, reason):
    zone = LocalStore(tmp_path)
    zone.write_bytes(key, b"event_id\n")
    zone.write_bytes("app_events/app_events_2026-01-05.csv", b"event_id\n")
    files, misplaced = list_landing_files(zone, DAY)
    assert [f.key for f in files] == ["app_events/app_events_2026-01-05.csv"]
    assert [m.key for m in misplaced] == [key]
    assert reason in misplaced[0].reason


def test_files_not_yet_due_and_files_being_written_are_neither_loaded_nor_misplaced(tmp_path):
    zone = LocalStore(tmp_path)
    zone.write_bytes("app_events/app_events_2026-01-06.csv", b"x")  # tomorrow's file
    zone.write_bytes("somewhere/else_2026-01-09.csv", b"x")  # misplaced, but dated after the day
    (tmp_path / "app_events" / "app_events_2026-01-05.csv.part").write_bytes(b"x")
    assert list_landing_files(zone, DAY) == ([], [])
