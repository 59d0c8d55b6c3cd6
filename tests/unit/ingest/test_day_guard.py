"""The day guard: a day after the source's data, or far past the last ingested day, is refused."""

from datetime import date

import pytest

from crm.ingest import day_guard_refusal

NEWEST = date(2026, 1, 20)


@pytest.mark.parametrize(
    ("as_of", "last", "refused"),
    [
        (date(2026, 1, 21), None, False),  # the source's newest day plus one: a night whose changes end at 01:30
        (date(2026, 1, 22), None, True),  # in the future of the source
        (date(2030, 1, 1), None, True),  # the fresh warehouse case
        (date(2026, 1, 19), date(2026, 1, 12), False),  # seven days after the last ingested one
        (date(2026, 1, 20), date(2026, 1, 12), True),  # eight
        (date(2026, 1, 5), date(2026, 1, 19), False),  # replaying an earlier day is always fine
    ],
)
def test_days_are_refused_at_the_guards_boundaries(as_of, last, refused):
    reason = day_guard_refusal(as_of, NEWEST, last, max_gap_days=7)
    assert (reason is not None) == refused


def test_the_refusal_says_what_to_do():
    future = day_guard_refusal(date(2030, 1, 1), NEWEST, None, max_gap_days=7)
    assert "newest change is on 2026-01-20" in future and "--as-of" in future
    gap = day_guard_refusal(date(2026, 1, 20), NEWEST, date(2026, 1, 12), max_gap_days=7)
    assert "8 days after the last ingested day 2026-01-12" in gap
    assert "crm backfill nightly --start 2026-01-13 --end 2026-01-20" in gap


def test_an_empty_source_has_nothing_to_ingest():
    assert "holds no rows yet" in day_guard_refusal(date(2026, 1, 1), None, None, max_gap_days=7)
