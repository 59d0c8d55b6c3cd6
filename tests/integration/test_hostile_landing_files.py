"""Hand-written hostile landing files (issue 8) against SQLite and PostgreSQL: a file is loaded or rejected
by name, never crashes the run, never blocks other files, never stores a wrong value silently."""

from __future__ import annotations

import json
import os
from datetime import date

import pytest

from crm.core.errors import OperatorError
from crm.core.storage import LocalStore, open_store
from crm.ingest import FileStatus, SourceStatus, request_retry
from models.ingest import staging
from tests.integration.landing import batch, load_zone, manifest, quarantine, rows, warehouse_with_customers

DAY = date(2026, 1, 5)
CSV_KEY = "app_events/app_events_2026-01-05.csv"
JSONL_KEY = "message_events/sms-gateway_2026-01-05.jsonl"
HEADER = "event_id,customer_id,event_type,platform,occurred_at\n"
BIG = 9007199254740993  # 2^53 + 1: a float64 turns it into ...992


def app_row(event_id: str, customer_id: object = 1) -> str:
    return f"{event_id},{customer_id},login,web,2026-01-05T01:00:00"


def message(event_id: str, **overrides) -> str:
    record = {
        "event_id": event_id,
        "message_id": "msg-1",
        "customer_id": 1,
        "channel": "sms",
        "event_type": "sent",
        "occurred_at": "2026-01-05T02:00:00",
        "campaign_id": "welcome",
        "provider": "sms-gateway",
    }
    record.update(overrides)
    return json.dumps({k: v for k, v in record.items() if v is not ...}, ensure_ascii=False)


@pytest.fixture
def zone(backend):
    return open_store(backend.landing_url)


@pytest.fixture
def warehouse(backend):
    return warehouse_with_customers(backend.warehouse_url, [1, 2, 10, BIG])


def write(zone, key: str, text: str) -> None:
    zone.write_bytes(key, text.encode())


def good_jsonl(zone) -> None:
    write(zone, JSONL_KEY, message("m1") + "\n" + message("m2") + "\n")


def test_a_key_longer_than_the_quarantine_column_is_cut_and_the_good_rows_load(backend, zone, warehouse):
    # Defect 1: on PostgreSQL `COPY quarantined_rows ... record_key` crashed the task after two retries.
    write(zone, CSV_KEY, HEADER + app_row("k" * 300) + "\n" + app_row("good") + "\n")
    good_jsonl(zone)
    counts = load_zone(zone, warehouse, DAY)

    assert counts[f"file:{CSV_KEY}"]["status"] == SourceStatus.LOADED
    assert batch(warehouse, f"file:{CSV_KEY}") == {
        "rows_read": 2,
        "rows_loaded": 1,
        "rows_quarantined": 1,
        "rows_duplicate": 0,
    }
    held = quarantine(warehouse, f"file:{CSV_KEY}")
    assert held.rule.tolist() == ["max_length"] and held.row_number.tolist() == [1]
    key = held.record_key.item()
    assert len(key) == 256 and key.startswith('["kkk') and key.endswith("…(truncated)")
    assert counts[f"file:{JSONL_KEY}"]["rows_loaded"] == 2  # the unrelated file loads too
    assert set(manifest(warehouse).status) == {FileStatus.LOADED}


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (HEADER.replace("platform", "event_type") + app_row("a") + "\n", "the header repeats column(s) 'event_type'"),
        ("x" * 140_000 + "\n" + app_row("a") + "\n", "missing columns event_id"),
    ],
)
def test_a_csv_shape_that_crashed_the_task_rejects_only_its_file_once(backend, zone, warehouse, text, reason):
    # Defect 2: these blocked every later file of that run and of every following run.
    write(zone, CSV_KEY, text)
    good_jsonl(zone)
    counts = load_zone(zone, warehouse, DAY)
    assert counts[f"file:{CSV_KEY}"]["status"] == SourceStatus.FAILED
    assert counts[f"file:{CSV_KEY}"]["error"].startswith(f"{CSV_KEY}: ")
    assert reason in counts[f"file:{CSV_KEY}"]["error"]
    assert counts[f"file:{JSONL_KEY}"]["rows_loaded"] == 2
    files = manifest(warehouse).set_index("file_key")
    assert files.loc[CSV_KEY, "status"] == FileStatus.FAILED and reason in files.loc[CSV_KEY, "error"]

    # The next runs do not read it again; it was reported on the day it was found.
    again = load_zone(zone, warehouse, date(2026, 1, 6))
    assert again[f"file:{CSV_KEY}"]["status"] == SourceStatus.ALREADY_REJECTED
    assert manifest(warehouse).set_index("file_key").loc[CSV_KEY, "as_of"] == DAY

    # A fixed file under a new name loads; an explicit retry reads the old name again.
    write(zone, "app_events/app_events-fixed_2026-01-05.csv", HEADER + app_row("a") + "\n")
    fixed = load_zone(zone, warehouse, date(2026, 1, 6))
    assert fixed["file:app_events/app_events-fixed_2026-01-05.csv"]["rows_loaded"] == 1
    write(zone, CSV_KEY, HEADER + app_row("b") + "\n")  # fixed in place: new bytes are a new checksum anyway
    cleared = request_retry(warehouse, CSV_KEY)
    assert [r["status"] for r in cleared] == [FileStatus.FAILED]
    retried = load_zone(zone, warehouse, date(2026, 1, 7))
    assert retried[f"file:{CSV_KEY}"]["status"] == SourceStatus.LOADED


def test_a_retry_of_the_same_bytes_reads_them_again(backend, zone, warehouse):
    write(zone, CSV_KEY, "not,a,header\n")
    assert load_zone(zone, warehouse, DAY)[f"file:{CSV_KEY}"]["status"] == SourceStatus.FAILED
    request_retry(warehouse, CSV_KEY)
    assert load_zone(zone, warehouse, DAY)[f"file:{CSV_KEY}"]["status"] == SourceStatus.FAILED  # read, rejected again
    with pytest.raises(OperatorError, match=r"no rejected or misplaced landing file 'app_events/nothing\.csv'"):
        request_retry(warehouse, "app_events/nothing.csv")


def test_an_over_long_csv_field_quarantines_its_row_under_max_length_with_the_right_number(backend, zone, warehouse):
    # Defect 3: the whole file was rejected, "near data row 5" for data row 4.
    lines = [app_row("a"), app_row("b"), app_row("c"), app_row("d" * 200_000), app_row("e")]
    write(zone, CSV_KEY, HEADER + "\n".join(lines) + "\n")
    load_zone(zone, warehouse, DAY)
    held = quarantine(warehouse, f"file:{CSV_KEY}")
    assert held[["row_number", "rule"]].to_dict("records") == [{"row_number": 4, "rule": "max_length"}]
    loaded = rows(warehouse, staging["app_events"]).event_id.tolist()
    assert sorted(loaded) == ["a", "b", "c", "e"]


def test_json_lines_with_unicode_line_separators_inside_strings_load_whole(backend, zone, warehouse):
    # Defect 4: str.splitlines turned two records into four malformed rows (rows_read 6 for 4 lines).
    lines = [
        message("m1", provider="sms\u2028gateway"),
        message("m2", campaign_id="a\u0085b"),
        message("m3"),
        message("m4"),
    ]
    write(zone, JSONL_KEY, "\n".join(lines) + "\n")
    load_zone(zone, warehouse, DAY)
    assert batch(warehouse, f"file:{JSONL_KEY}") == {
        "rows_read": 4,
        "rows_loaded": 4,
        "rows_quarantined": 0,
        "rows_duplicate": 0,
    }
    stored = rows(warehouse, staging["message_events"]).set_index("event_id")
    assert stored.loc["m1", "provider"] == "sms\u2028gateway" and stored.loc["m2", "campaign_id"] == "a\u0085b"


def test_an_optional_key_absent_from_every_line_is_null(backend, zone, warehouse):
    # Defect 5: "missing columns campaign_id" rejected the file.
    write(zone, JSONL_KEY, message("m1", campaign_id=...) + "\n" + message("m2", campaign_id=...) + "\n")
    counts = load_zone(zone, warehouse, DAY)
    assert counts[f"file:{JSONL_KEY}"]["rows_loaded"] == 2
    assert rows(warehouse, staging["message_events"]).campaign_id.isna().all()


def test_json_values_are_stored_exactly_or_quarantined_under_type(backend, zone, warehouse):
    # Defect 6: true became customer 1, objects their repr, true "True", 2^53+1 became ...992,
    # 1e1 / +10 / 10.0 customer 10, and 1900 was accepted.
    cases = {
        "bool-id": {"customer_id": True},
        "object-text": {"provider": {"a": 1}},
        "array-text": {"message_id": [1, 2]},
        "bool-text": {"campaign_id": True},
        "float-id": {"customer_id": 1e1},
        "plus-id": {"customer_id": "+10"},
        "decimal-id": {"customer_id": 10.0},
        "year-1900": {"occurred_at": "1900-01-01T00:00:00"},
        "big-id": {"customer_id": BIG},
        "digits-id": {"customer_id": "10"},
    }
    write(zone, JSONL_KEY, "\n".join(message(name, **values) for name, values in cases.items()) + "\n")
    load_zone(zone, warehouse, DAY)

    stored = rows(warehouse, staging["message_events"]).set_index("event_id")
    assert sorted(stored.index) == ["big-id", "digits-id"]
    assert int(stored.loc["big-id", "customer_id"]) == BIG
    assert int(stored.loc["digits-id", "customer_id"]) == 10
    held = quarantine(warehouse, f"file:{JSONL_KEY}").set_index("record_key")
    expected = {f'["{name}"]': "type" for name in cases if name not in ("big-id", "digits-id", "year-1900")}
    expected['["year-1900"]'] = "plausible_date"
    assert held.rule.to_dict() == expected
    assert json.loads(held.loc['["object-text"]', "record"])["provider"] == {"a": 1}  # the line as received


def test_a_dates_rule_does_not_depend_on_the_other_rows_of_its_file(backend, zone, warehouse):
    # One value with nanoseconds made pandas parse the whole batch at ns resolution, where years
    # 0001 and 9999 do not exist: they were quarantined as "not a valid timestamp" only in its company.
    stamps = [
        "0001-01-01T00:00:00",
        "1969-12-31T23:59:59",
        "1970-01-01T00:00:00.123456789",
        "9999-12-31T23:59:59",
        "2026-13-01T00:00:00",
        "2027-01-01T00:00:00",
    ]
    lines = [f"d{i},1,login,web,{stamp}" for i, stamp in enumerate(stamps, 1)]
    write(zone, CSV_KEY, HEADER + "\n".join(lines) + "\n")
    write(zone, JSONL_KEY, message("j1", occurred_at="0001-01-01T00:00:00+05:00") + "\n" + message("j2") + "\n")
    load_zone(zone, warehouse, DAY)

    held = quarantine(warehouse, f"file:{CSV_KEY}")
    assert held[["row_number", "rule"]].to_dict("records") == [
        {"row_number": 1, "rule": "plausible_date"},
        {"row_number": 2, "rule": "plausible_date"},
        {"row_number": 4, "rule": "not_in_future"},
        {"row_number": 5, "rule": "type"},
        {"row_number": 6, "rule": "not_in_future"},
    ]
    assert held.reason[0] == "occurred_at 0001-01-01 00:00:00 is before 1970-01-01 (implausible)"
    assert held.reason[2] == "occurred_at 9999-12-31 23:59:59 is after the business day 2026-01-05"
    assert rows(warehouse, staging["app_events"]).event_id.tolist() == ["d3"]
    assert quarantine(warehouse, f"file:{JSONL_KEY}").rule.tolist() == ["plausible_date"]


def test_misplaced_files_are_recorded_once_with_their_reason(backend, zone, warehouse):
    # Defect 7: files at the root or in a misspelled folder were ignored, a nested one was loaded.
    misplaced = {
        "app_events_2026-01-05.csv": "a file at the landing root",
        "app_event/app_events_2026-01-05.csv": "unknown entity folder 'app_event'",
        "app_events/nested/x_2026-01-05.csv": "in a nested folder",
        "app_events/events-final(2).csv": "the name breaks the landing-file contract",
    }
    for key in misplaced:
        write(zone, key, HEADER + app_row("n1") + "\n")
    good_jsonl(zone)
    counts = load_zone(zone, warehouse, DAY)

    assert rows(warehouse, staging["app_events"]).empty  # the nested file is not loaded
    files = manifest(warehouse).set_index("file_key")
    for key, reason in misplaced.items():
        assert counts[f"file:{key}"]["status"] == SourceStatus.MISPLACED
        assert files.loc[key, "status"] == FileStatus.MISPLACED
        assert files.loc[key, "error"].startswith(f"{key}: misplaced: ") and reason in files.loc[key, "error"]
    assert files.loc["app_event/app_events_2026-01-05.csv", "entity"] == "unknown"

    later = load_zone(zone, warehouse, date(2026, 1, 6))
    assert not any(c["status"] == SourceStatus.MISPLACED for c in later.values())  # reported once
    request_retry(warehouse, "app_events/nested/x_2026-01-05.csv")
    retried = load_zone(zone, warehouse, date(2026, 1, 6))
    assert [s for s, c in retried.items() if c["status"] == SourceStatus.MISPLACED] == [
        "file:app_events/nested/x_2026-01-05.csv"
    ]


class ReadCountingStore(LocalStore):
    """The landing folder, noting which files were read (listing is free, reading the history is not)."""

    def __init__(self, root: str) -> None:
        super().__init__(root)
        self.reads: list[str] = []

    def read_bytes(self, key: str) -> bytes:
        self.reads.append(key)
        return super().read_bytes(key)


def test_a_file_whose_version_is_unchanged_is_not_read_again_and_a_touched_or_changed_one_is(backend, warehouse):
    zone = ReadCountingStore(backend.landing_url)
    write(zone, CSV_KEY, HEADER + app_row("e1") + "\n")
    write(zone, JSONL_KEY, "not json\n{}\n")  # rejected: also not read again while it is unchanged
    first = load_zone(zone, warehouse, DAY)
    assert first[f"file:{CSV_KEY}"]["status"] == SourceStatus.LOADED and sorted(zone.reads) == sorted(
        [CSV_KEY, JSONL_KEY]
    )

    zone.reads.clear()
    again = load_zone(zone, warehouse, DAY)
    assert again[f"file:{CSV_KEY}"]["status"] == SourceStatus.ALREADY_LOADED
    assert again[f"file:{JSONL_KEY}"]["status"] == SourceStatus.ALREADY_REJECTED
    assert zone.reads == []

    path = zone.root / CSV_KEY
    os.utime(path, ns=(path.stat().st_mtime_ns + 10**9, path.stat().st_mtime_ns + 10**9))  # touched, same bytes
    assert load_zone(zone, warehouse, DAY)[f"file:{CSV_KEY}"]["status"] == SourceStatus.ALREADY_LOADED
    assert zone.reads == [CSV_KEY]
    zone.reads.clear()
    assert load_zone(zone, warehouse, DAY)[f"file:{CSV_KEY}"]["status"] == SourceStatus.ALREADY_LOADED
    assert zone.reads == []  # the new version was remembered

    write(zone, CSV_KEY, HEADER + app_row("e2") + "\n")  # same size, other bytes, a new version
    changed = load_zone(zone, warehouse, DAY)[f"file:{CSV_KEY}"]
    assert changed["status"] == SourceStatus.CHANGED and changed["rows_loaded"] == 1 and zone.reads == [CSV_KEY]
