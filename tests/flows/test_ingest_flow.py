"""The `ingest` flow end to end on a simulated company, on SQLite and PostgreSQL, from a folder and from S3."""

from __future__ import annotations

from datetime import datetime, timedelta

import pandas as pd
from sqlalchemy import func, inspect, select

from crm.core.contracts import ENTITIES, SOURCE_ENTITIES
from crm.core.settings import make_engine
from crm.core.storage import open_store
from crm.ingest.bulk import missing_indexes
from crm.simulator import FaultConfig
from flows.ingest import ingest
from flows.quality import quality
from models import source as src
from tests.flows.conftest import batches, count_file_records, simulate_company, warehouse_snapshot


def source_rows_until(source_url: str, entity, as_of) -> int:
    table = src.tables[entity.name]
    upper = datetime.combine(as_of + timedelta(days=1), datetime.min.time())
    with make_engine(source_url).connect() as conn:
        return conn.execute(
            select(func.count()).select_from(table).where(table.c[entity.updated_column] < upper)
        ).scalar_one()


def test_a_clean_day_loads_every_row_and_a_rerun_changes_nothing(backend):
    summary = simulate_company(backend.source_url, backend.landing_url)
    day = summary.last_day

    first = ingest(as_of=day)
    assert first["rows_loaded"] > 0 and first["rows_quarantined"] == 0 and first["failed_sources"] == []
    assert missing_indexes(make_engine(backend.warehouse_url)) == []  # the initial load built what it set aside
    before = warehouse_snapshot(backend.warehouse_url)
    for entity in SOURCE_ENTITIES:
        assert len(before[entity.table_name]) == source_rows_until(backend.source_url, entity, day), entity.name

    again = ingest(as_of=day)
    assert again["rows_loaded"] == 0 and again["rows_read"] == 0
    assert_same_warehouse(before, warehouse_snapshot(backend.warehouse_url))


def test_every_faulty_row_is_loaded_quarantined_or_counted_as_duplicate(backend):
    summary = simulate_company(backend.source_url, backend.landing_url, faults=FaultConfig(rate=0.03))
    day = summary.last_day
    ingest(as_of=day)

    counts = batches(backend.warehouse_url, day)
    assert (counts.rows_read == counts.rows_loaded + counts.rows_quarantined + counts.rows_duplicate).all()
    files = counts[counts.source.str.startswith("file:")]
    assert len(files) == len(open_store(backend.landing_url).list_keys(""))
    for row in files.itertuples():
        assert row.rows_read == count_file_records(backend.landing_url, row.source.removeprefix("file:")), row.source
    for entity in SOURCE_ENTITIES:
        read = counts.loc[counts.source == f"db:{entity.name}", "rows_read"].sum()
        assert read == source_rows_until(backend.source_url, entity, day), entity.name

    snapshot = warehouse_snapshot(backend.warehouse_url)
    quarantine = snapshot["quarantined_rows"]
    assert {"required", "type", "not_in_future", "known_reference", "non_negative"} <= set(quarantine.rule)
    assert counts.rows_duplicate.sum() > 0
    assert (quarantine.reason.str.len() > 0).all() and (quarantine.record.str.len() > 0).all()
    file_rows = quarantine[quarantine.source.str.startswith("file:")]
    assert file_rows.row_number.notna().all()
    # Loaded rows are only the valid ones: nothing negative, nothing after the day.
    assert (snapshot["stg_payments"].amount_minor >= 0).all()
    assert (pd.to_datetime(snapshot["stg_app_events"].occurred_at) < pd.Timestamp(day + timedelta(days=1))).all()


def test_a_malformed_file_fails_the_run_by_name_and_the_other_files_still_load(sqlite_backend):
    summary = simulate_company(
        sqlite_backend.source_url, sqlite_backend.landing_url, faults=FaultConfig(rate=0.0, malformed_file=True)
    )
    state = ingest(as_of=summary.last_day, return_state=True)

    assert state.is_failed()
    manifest = warehouse_snapshot(sqlite_backend.warehouse_url)["landing_files"]
    failed = manifest[manifest.status == "failed"]
    assert len(failed) == 1
    key = failed.file_key.item()
    assert failed.error.item().startswith(f"{key}: ")
    assert key in state.message
    loaded = manifest[manifest.status == "loaded"]
    assert len(loaded) == len(open_store(sqlite_backend.landing_url).list_keys("")) - 1


def test_a_changed_file_is_detected_by_checksum_and_only_its_new_rows_load(sqlite_backend):
    summary = simulate_company(sqlite_backend.source_url, sqlite_backend.landing_url)
    day = summary.last_day
    ingest(as_of=day)
    zone = open_store(sqlite_backend.landing_url)
    key = f"app_events/app_events_{day.isoformat()}.csv"
    data = zone.read_bytes(key)
    last_line = data.decode().rstrip("\n").rsplit("\n", 1)[-1].split(",")
    last_line[0] = "late-correction-1"
    zone.write_bytes(key, data + (",".join(last_line) + "\n").encode())

    ingest(as_of=day)
    counts = batches(sqlite_backend.warehouse_url, day).set_index("source").loc[f"file:{key}"]
    original = count_file_records(sqlite_backend.landing_url, key) - 1
    assert counts.rows_read == original + original + 1  # both versions, added up in the day's batch
    assert counts.rows_loaded == original + 1
    manifest = warehouse_snapshot(sqlite_backend.warehouse_url)["landing_files"]
    assert (manifest.file_key == key).sum() == 2  # one row per checksum: the change is on record


def test_landing_files_are_read_from_s3(sqlite_backend, s3_landing):
    summary = simulate_company(sqlite_backend.source_url, s3_landing, customers=150, days=5)
    ingest(as_of=summary.last_day)
    counts = batches(sqlite_backend.warehouse_url, summary.last_day)
    files = counts[counts.source.str.startswith("file:")]
    keys = [k for k, _ in open_store(s3_landing).list_keys("")]
    assert sorted(files.source.str.removeprefix("file:")) == sorted(keys)
    for row in files.itertuples():
        assert row.rows_loaded == count_file_records(s3_landing, row.source.removeprefix("file:"))


def test_days_ingested_one_by_one_end_like_a_single_catch_up(sqlite_backend, tmp_path, monkeypatch):
    summary = simulate_company(sqlite_backend.source_url, sqlite_backend.landing_url, days=6)
    for offset in range(5, -1, -1):
        ingest(as_of=summary.last_day - timedelta(days=offset))
    daily = warehouse_snapshot(sqlite_backend.warehouse_url)

    catch_up_url = f"sqlite:///{tmp_path / 'catch_up.db'}"
    monkeypatch.setenv("CRM_WAREHOUSE_URL", catch_up_url)
    ingest(as_of=summary.last_day)
    single = warehouse_snapshot(catch_up_url)
    for name in [e.table_name for e in SOURCE_ENTITIES]:
        assert_same_rows(daily[name].drop(columns="ingested_on"), single[name].drop(columns="ingested_on"), name)


def test_a_parent_changed_after_the_day_lands_with_the_children_that_reference_it(backend):
    # The source keeps only latest versions: replaying an earlier day sees payments and status
    # changes of loans and applications whose newest change lies after that day.
    summary = simulate_company(backend.source_url, backend.landing_url, customers=400, days=16)
    day = summary.last_day - timedelta(days=3)
    result = ingest(as_of=day)
    assert result["rows_quarantined"] == 0 and result["failed_sources"] == []

    snapshot = warehouse_snapshot(backend.warehouse_url)
    cut = pd.Timestamp(day + timedelta(days=1))
    pulled_ahead = {
        e.name: int((pd.to_datetime(snapshot[e.table_name][e.updated_column]) >= cut).sum()) for e in SOURCE_ENTITIES
    }
    assert pulled_ahead["loans"] + pulled_ahead["loan_applications"] > 0, (
        "this seed should change some parents after the day"
    )
    for entity in SOURCE_ENTITIES:
        children = snapshot[entity.table_name]
        for column, parent_name in entity.references.items():
            parent = snapshot[f"stg_{parent_name}"]
            orphans = children[column].dropna()[~children[column].dropna().isin(parent[ENTITIES[parent_name].key[0]])]
            assert orphans.empty, f"{entity.name}.{column} -> {parent_name}: {orphans.tolist()[:5]}"

    checked = quality(as_of=day)
    assert checked["fit_for_sending"], checked["summary"]
    # The parent's own change still comes through its window later: the warehouse ends complete.
    ingest(as_of=summary.last_day)
    later = warehouse_snapshot(backend.warehouse_url)
    for entity in SOURCE_ENTITIES:
        assert len(later[entity.table_name]) == source_rows_until(backend.source_url, entity, summary.last_day), (
            entity.name
        )


def assert_same_rows(left: pd.DataFrame, right: pd.DataFrame, name: str) -> None:
    pd.testing.assert_frame_equal(
        left.reset_index(drop=True), right.reset_index(drop=True), check_dtype=False, obj=name
    )


def assert_same_warehouse(left: dict, right: dict) -> None:
    assert left.keys() == right.keys()
    for name in left:
        assert_same_rows(left[name], right[name], name)


# --------------------------------------------------------------------------- issue 8: findings, retries, the day guard


def cli(*args: str):
    from typer.testing import CliRunner

    from cli import app

    return CliRunner().invoke(app, list(args))


def test_a_rejected_file_exits_2_is_reported_once_and_read_again_on_request(sqlite_backend):
    summary = simulate_company(
        sqlite_backend.source_url,
        sqlite_backend.landing_url,
        customers=120,
        days=3,
        faults=FaultConfig(rate=0.0, malformed_file=True),
    )
    day = summary.last_day.isoformat()
    key = f"app_events/app_events_{day}.csv"

    first = cli("run", "ingest", "--as-of", day)
    assert first.exit_code == 2, first.output  # a finding, not a crash (1)
    assert "Traceback" not in first.output
    assert f"1 landing file(s) rejected or misplaced, see the ingest-summary artifact: {key}" in first.output

    again = cli("run", "ingest", "--as-of", day)
    assert again.exit_code == 0, again.output  # reported on the day it was found, not every night
    manifest = warehouse_snapshot(sqlite_backend.warehouse_url)["landing_files"].set_index("file_key")
    assert manifest.loc[key, "status"] == "failed"

    retry = cli("landing", "retry", f"file:{key}")
    assert retry.exit_code == 0 and "the next ingest reads it again" in retry.output
    assert cli("run", "ingest", "--as-of", day).exit_code == 2  # read again: still broken


def test_the_day_guard_refuses_the_future_and_long_gaps_unless_forced(sqlite_backend):
    summary = simulate_company(sqlite_backend.source_url, sqlite_backend.landing_url, customers=100, days=10)
    first, last = summary.last_day - timedelta(days=9), summary.last_day

    refused = cli("run", "ingest", "--as-of", "2030-01-01")
    assert refused.exit_code == 3
    assert refused.output.strip() == (
        f"error: refusing to ingest 2030-01-01: 2030-01-01 is in the future of the source's data "
        f"(its newest change is on {last}); check --as-of; pass --force to ingest it anyway"
    )
    # A deployment run has no CLI in front: the flow refuses by itself, before loading anything.
    state = ingest(as_of=last + timedelta(days=2), return_state=True)
    assert state.is_failed() and "is in the future of the source's data" in state.message
    with make_engine(sqlite_backend.warehouse_url).connect() as conn:  # refused before even migrating
        assert not inspect(conn).has_table("ingest_batches")  # nothing stamped with a day that has not come

    ingest(as_of=first)
    gap = ingest(as_of=first + timedelta(days=8), return_state=True)
    assert gap.is_failed() and f"8 days after the last ingested day {first}" in gap.message
    forced = ingest(as_of=first + timedelta(days=8), force=True)
    assert forced["rows_loaded"] > 0


def test_a_backfill_into_the_future_of_the_source_is_refused_before_any_run(sqlite_backend):
    summary = simulate_company(sqlite_backend.source_url, sqlite_backend.landing_url, customers=60, days=3)
    start, end = summary.last_day, summary.last_day + timedelta(days=5)
    refused = cli("backfill", "ingest", "--start", start.isoformat(), "--end", end.isoformat())
    assert refused.exit_code == 3
    assert refused.output.strip() == (
        f"error: refusing to ingest up to {end}: {end} is in the future of the source's data "
        f"(its newest change is on {summary.last_day}); check --end; pass --force to ingest it anyway"
    )
    with make_engine(sqlite_backend.warehouse_url).connect() as conn:
        assert not inspect(conn).has_table("ingest_batches")  # no day of the range was run
