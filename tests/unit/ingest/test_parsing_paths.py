"""The two landing-file readers: Arrow's for plain files, the strict Python parsers for the rest, one outcome.

Every generated file, plain or hostile, parses to the same rows, row numbers, values, unreadable
rows, received lines and file errors through `parse_landing_file` (which takes the fast path when
it can) as through the strict parser alone, and validates to the same result.
"""

import json
from datetime import date

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crm.core.contracts import APP_EVENTS, MESSAGE_EVENTS
from crm.ingest import LandingFile, MalformedFileError, parse_landing_file, parsing
from crm.ingest.validation import MissingColumnsError, validate_frame

DAY = date(2026, 1, 5)
CSV = LandingFile(key="app_events/app_events_2026-01-05.csv", entity=APP_EVENTS, business_date=DAY, size_bytes=0)
JSONL = LandingFile(key="message_events/x_2026-01-05.jsonl", entity=MESSAGE_EVENTS, business_date=DAY, size_bytes=0)
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def strict(data: bytes, landing_file: LandingFile) -> parsing.ParsedFile:
    """The strict parser alone (what every file went through before the fast path)."""
    text = data.decode("utf-8-sig")
    if landing_file.entity.file_format == "csv":
        return parsing._parse_csv(text)
    return parsing._parse_jsonl(text, landing_file.entity.column_names)


def outcome(parse, data: bytes, landing_file: LandingFile):
    """What a parser makes of a file, nulls and dtypes normalised (text is Arrow-backed on the fast path)."""
    try:
        parsed = parse(data, landing_file)
    except MalformedFileError as exc:
        return ("error", str(exc)), None
    frame = parsed.frame.astype(object)
    frame = frame.where(frame.notna(), None)
    values = {name: [(type(v).__name__, v) for v in frame[name]] for name in frame.columns}
    shape = (
        list(parsed.frame.columns),
        len(parsed.frame),
        values,
        parsed.row_numbers.tolist(),
        parsed.unreadable.to_dict("list"),
        parsed.received,
    )
    return shape, parsed


def validated(parsed: parsing.ParsedFile, landing_file: LandingFile):
    entity = landing_file.entity
    try:
        result = validate_frame(
            parsed.frame,
            entity,
            as_of=DAY,
            known_ids={"customers": pd.Index(np.arange(0, 50, dtype=np.int64))},
            row_numbers=parsed.row_numbers,
            origin="csv" if entity.file_format == "csv" else "json",
            received=parsed.received,
        )
    except MissingColumnsError as exc:
        return str(exc)
    return result


def assert_same_outcome(data: bytes, landing_file: LandingFile) -> None:
    fast, fast_parsed = outcome(parse_landing_file, data, landing_file)
    slow, slow_parsed = outcome(strict, data, landing_file)
    assert fast == slow
    if fast_parsed is None:
        return
    a, b = validated(fast_parsed, landing_file), validated(slow_parsed, landing_file)
    if isinstance(a, str) or isinstance(b, str):
        assert a == b
        return
    pd.testing.assert_frame_equal(a.valid, b.valid)
    pd.testing.assert_frame_equal(a.rejected, b.rejected)
    assert a.duplicates == b.duplicates


# -- CSV ---------------------------------------------------------------------------------------------------------

HEADER = "event_id,customer_id,event_type,platform,occurred_at"
FIELD = st.one_of(
    st.sampled_from(["a", "7", " 7 ", "-3", "", "login", "web", "android", "2026-01-05T01:00:00", "2026-13-01", "é"]),
    st.text(alphabet="ab1 é\u2028-:.", max_size=6),
)
PLAIN_ROW = st.lists(FIELD, min_size=5, max_size=5).map(",".join)


@st.composite
def plain_csv(draw) -> bytes:
    header = draw(st.sampled_from([HEADER, " event_id , customer_id,event_type,platform,occurred_at", "event_id,x"]))
    width = header.count(",") + 1
    rows = draw(st.lists(st.lists(FIELD, min_size=width, max_size=width).map(",".join), max_size=8))
    text = "\n".join([header, *rows]) + draw(st.sampled_from(["\n", ""]))
    return (draw(st.sampled_from(["", "\ufeff"])) + text).encode()


@st.composite
def hostile_csv(draw) -> bytes:
    """Plain rows with quoting, carriage returns, blank lines, ragged rows, repeated header columns spliced in."""
    lines = [draw(st.sampled_from([HEADER, "a,a,b", "", " ", '"event_id","x"']))]
    lines += draw(
        st.lists(
            st.one_of(
                PLAIN_ROW, st.sampled_from(['a,"b,c",d,e,f', 'x,"un', "", "a,b", "a,b,c,d,e,f", "q\r", '"", ,,,'])
            ),
            max_size=8,
        )
    )
    text = draw(st.sampled_from(["\n", "\r\n", "\r"])).join(lines)
    return text.encode()


@SETTINGS
@given(plain_csv())
def test_a_plain_csv_file_is_read_by_arrow_into_the_strict_parsers_rows(data):
    text = data.decode("utf-8-sig")
    raw = data.removeprefix(b"\xef\xbb\xbf")
    assert parsing._read_plain_csv(text, raw) is not None  # the fast path took it
    assert_same_outcome(data, CSV)


@SETTINGS
@given(st.one_of(hostile_csv(), st.text(alphabet='ab,"\r\n 1', max_size=40).map(str.encode)))
def test_any_csv_file_gives_the_strict_parsers_outcome(data):
    assert_same_outcome(data, CSV)


@pytest.mark.parametrize(
    "text",
    [
        HEADER + '\n"a",1,login,web,2026-01-05T01:00:00\n',  # quoting
        HEADER + "\r\na,1,login,web,2026-01-05T01:00:00\r\n",  # carriage returns
        HEADER + "\na,1,login,web,2026-01-05T01:00:00\n\nb,1,login,web,2026-01-05T01:00:00\n",  # a blank line
        HEADER + "\na,1,login\n",  # a ragged row (Arrow refuses it)
        "a,a\n1,2\n",  # a repeated column
    ],
)
def test_a_csv_file_that_is_not_plain_takes_the_strict_path(text):
    assert parsing._read_plain_csv(text, text.encode()) is None
    assert_same_outcome(text.encode(), CSV)


# -- JSON lines ----------------------------------------------------------------------------------------------------

KEYS = st.sampled_from([c.name for c in MESSAGE_EVENTS.columns] + ["extra", "x y"])
VALUE = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.integers(min_value=0, max_value=60),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(alphabet='ab 1é\u2028"\\\t{[', max_size=6),
    st.sampled_from(["sms", "email", "sent", "delivered", "2026-01-05T01:00:00", "9", ""]),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.sampled_from(["k"]), st.integers(), max_size=1),
)
RECORD = st.dictionaries(KEYS, VALUE, max_size=9)
GOOD = st.fixed_dictionaries(
    {
        "event_id": st.sampled_from(["e1", "e2", "e3"]),
        "message_id": st.just("m"),
        "customer_id": st.integers(min_value=0, max_value=60),
        "channel": st.sampled_from(["sms", "email", "fax"]),
        "event_type": st.sampled_from(["sent", "delivered"]),
        "occurred_at": st.sampled_from(["2026-01-05T01:00:00", "2026-01-09T01:00:00", "nope"]),
        "provider": st.sampled_from(["p", "", " "]),
    },
    optional={"campaign_id": st.one_of(st.none(), st.just("c")), "extra": st.integers()},
)


@st.composite
def plain_jsonl(draw) -> bytes:
    records = draw(st.lists(GOOD, min_size=1, max_size=8))
    sep = draw(st.sampled_from([(", ", ": "), (",", ":")]))
    text = "\n".join(json.dumps(r, ensure_ascii=False, separators=sep) for r in records)
    return (text + draw(st.sampled_from(["\n", ""]))).encode()


@st.composite
def any_jsonl(draw) -> bytes:
    lines = draw(
        st.lists(
            st.one_of(
                RECORD.map(lambda r: json.dumps(r, ensure_ascii=False)),
                RECORD.map(json.dumps),  # \u escapes
                GOOD.map(json.dumps),
                st.sampled_from(
                    ["", " ", "{", "[1]", '{"event_id": NaN}', '{"a":1} {"b":2}', '{"event_id":"a","event_id":"b"}']
                ),
            ),
            max_size=8,
        )
    )
    return (draw(st.sampled_from(["\n", "\r\n"])).join(lines) + draw(st.sampled_from(["\n", ""]))).encode()


@SETTINGS
@given(plain_jsonl())
def test_a_plain_jsonl_file_is_read_by_arrow_into_the_strict_parsers_rows(data):
    text = data.decode()
    # Arrow takes the file unless some column is null everywhere (absent or null: only `json` tells).
    fast = parsing._read_plain_jsonl(text, data, MESSAGE_EVENTS)
    assert fast is not None or '"campaign_id": null' in text or '"campaign_id":null' in text
    assert_same_outcome(data, JSONL)


@SETTINGS
@given(any_jsonl())
def test_any_jsonl_file_gives_the_strict_parsers_outcome(data):
    assert_same_outcome(data, JSONL)


@pytest.mark.parametrize(
    "line",
    [
        '{"event_id": "a\\u00e9"}',  # an escape
        '{"event_id": "a", "extra": [1]}',  # nesting
        '{"event_id": "a", "extra": NaN}',  # NaN (Arrow takes it, `json` does not)
        '{"event_id": "a"} {"event_id": "b"}',  # two objects on a line (Arrow takes them)
        '{"event_id": 7}',  # an integer in a text column (Arrow refuses it)
        '{"event_id": "a\tb"}',  # a raw tab
        '{"customer_id": 1.0, "event_id": "a"}',  # a float in an integer column
        '{"event_id": null}',  # a null key (quarantine keeps `[null]`, apart from a missing key's `[NaN]`)
    ],
)
def test_a_jsonl_file_that_is_not_plain_takes_the_strict_path(line):
    data = f'{{"event_id": "ok"}}\n{line}\n'.encode()
    assert parsing._read_plain_jsonl(data.decode(), data, MESSAGE_EVENTS) is None
    assert_same_outcome(data, JSONL)


def test_json_integers_of_the_fast_path_are_exact_python_ints():
    data = b'{"event_id": "a", "customer_id": 9007199254740993}\n'
    parsed = parsing._read_plain_jsonl(data.decode(), data, MESSAGE_EVENTS)
    value = parsed.frame.loc[0, "customer_id"]
    assert type(value) is int and value == 9007199254740993
