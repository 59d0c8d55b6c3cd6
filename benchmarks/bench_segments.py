"""Benchmark: segments on a simulated company, SQLite or PostgreSQL; DuckDB over Parquet exports as the yardstick.

Stages, each in its own process (wall time and peak RSS): simulate; ingest up to the day
before the last but one (catch-up); `segments` in full on that day (the first run writes every
membership); ingest the next day and `segments --full` (everything re-derived, only changes
written); ingest the last day and the incremental refresh; then the tables exported to Parquet
and the SAME aggregation statement (compiled for PostgreSQL, run by DuckDB over the Parquet
files) plus the same pandas derivation: the in-process columnar yardstick. Run by hand:
    python benchmarks/bench_segments.py --customers 100000 --days 60 --backend sqlite
    python benchmarks/bench_segments.py --customers 1000000 --days 60 --backend postgresql
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bench_ingest import INGEST, PG_ADMIN, SIMULATE, postgres_database, run_stage

SEGMENTS = """
import sys, json
from datetime import date
from crm.core.migrations import upgrade_warehouse
from crm.core.settings import warehouse_engine
from crm.segments import load_segments_config, refresh_segments
import time
engine = warehouse_engine()
upgrade_warehouse(engine)
config = load_segments_config()
started = time.perf_counter()
run = refresh_segments(engine, date.fromisoformat(sys.argv[1]), config, full=sys.argv[2] == "full")
seconds = round(time.perf_counter() - started, 1)
print(json.dumps({"refresh_s": seconds, "mode": run.mode.value, "computed": run.customers_computed, "aggregated": getattr(run, "customers_aggregated", None), "changed": run.customers_changed, "events": run.events}))
"""

TABLES = (
    "hist_customers",
    "hist_customer_contacts",
    "hist_loan_applications",
    "hist_loans",
    "hist_orders",
    "stg_payments",
    "stg_message_events",
    "stg_app_events",
    "purged_customers",  # who campaigns purged out of the base (empty here: no campaigns run)
)

EXPORT = """
import sys, json
from pathlib import Path
import pandas as pd, pyarrow as pa, pyarrow.parquet as pq
from sqlalchemy import select
from crm.core.settings import warehouse_engine
from models.warehouse import metadata
out = Path(sys.argv[1]); rows = {}
with warehouse_engine().connect() as conn:
    for name in sys.argv[2:]:
        table = metadata.tables[name]
        folder = out / name; folder.mkdir(parents=True, exist_ok=True)
        result = conn.execute(select(table).execution_options(stream_results=True, yield_per=200000))
        columns = list(result.keys()); n = 0
        for i, part in enumerate(result.partitions(200000)):
            frame = pd.DataFrame.from_records(part, columns=columns)
            pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), folder / f"part-{i:04d}.parquet")
            n += len(frame)
        if n == 0:  # DuckDB needs a file to know the columns: an empty one with the table's types
            kinds = {"INTEGER": pa.int64(), "BIGINT": pa.int64(), "DATE": pa.date32(), "BOOLEAN": pa.bool_()}
            schema = pa.schema([(c.name, kinds.get(str(c.type).split("(")[0], pa.string())) for c in table.columns])
            pq.write_table(schema.empty_table(), folder / "part-0000.parquet")
        rows[name] = n
print(json.dumps(rows))
"""

DUCKDB = """
import sys, json, time
from datetime import date
import duckdb
from sqlalchemy.dialects import postgresql
from crm.segments import aggregate_statement, derive_segments, load_segments_config, memberships, typed_aggregates
folder, day = sys.argv[1], date.fromisoformat(sys.argv[2])
config = load_segments_config()
con = duckdb.connect()
con.execute("SET enable_progress_bar = false")  # it draws on stdout, where the stage's result line goes
for name in sys.argv[3:]:
    con.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet('{folder}/{name}/*.parquet')")
sql = str(aggregate_statement(day, config.rfm.window_days).compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}))
started = time.perf_counter()
frame = con.execute(sql).df()
aggregated = time.perf_counter() - started
segments = derive_segments(typed_aggregates(frame), day, config)
long = memberships(segments, config)
total = time.perf_counter() - started
print(json.dumps({"full_s": round(total, 1), "aggregation_s": round(aggregated, 1), "customers": len(segments), "memberships": len(long)}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/crm-bench-segments"))
    parser.add_argument("--reuse-source", action="store_true", help="keep the simulated source of a previous run")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="keep the source and restore the warehouse as a previous run left it after the catch-up (skips both)",
    )
    parser.add_argument(
        "--skip-full-day",
        action="store_true",
        help="run the middle night incremental instead of --full (saves time at 1M)",
    )
    parser.add_argument("--prepare-only", action="store_true", help="stop after the catch-up (and its snapshot)")
    parser.add_argument(
        "--reuse-parquet",
        action="store_true",
        help="with --reuse: keep the previous run's Parquet export (the same simulated days, so the same rows)",
    )
    parser.add_argument(
        "--keep-night",
        action="store_true",
        help="keep a snapshot of the warehouse just before the last night's segments (for --night-only)",
    )
    parser.add_argument(
        "--night-only",
        action="store_true",
        help="restore the --keep-night snapshot and time the last night alone (then DuckDB on the kept Parquet)",
    )
    args = parser.parse_args()

    work = args.workdir / f"{args.backend}-{args.customers}"
    env = dict(
        os.environ, CRM_HOME=str(work), CRM_LANDING_URL=str(work / "landing"), PREFECT_SERVER_ANALYTICS_ENABLED="false"
    )
    wh, snap = f"crm_bench_seg_wh_{args.customers}", f"crm_bench_seg_snap_{args.customers}"
    night = f"crm_bench_seg_night_{args.customers}"
    if args.night_only:
        args.reuse = args.reuse_parquet = True
    if args.backend == "postgresql":
        template = night if args.night_only else snap if args.reuse else None
        env["CRM_WAREHOUSE_URL"] = postgres_database(wh, template=template)
        src = f"crm_bench_seg_src_{args.customers}"
        reuse = args.reuse_source or args.reuse
        env["CRM_SOURCE_URL"] = PG_ADMIN_BASE() + f"/{src}" if reuse else postgres_database(src)
    results = []
    state_file = work / "last_day.txt"
    if args.reuse:
        if args.backend == "sqlite":
            restore_sqlite_snapshot(work, "warehouse-night" if args.night_only else "warehouse-snapshot")
    elif not args.reuse_source:
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        simulated = run_stage("simulate", SIMULATE, [str(args.customers), str(args.days)], env)
        results.append(simulated)
        state_file.write_text(simulated["result"]["last_day"])
    elif args.backend == "sqlite":
        for suffix in ("", "-wal", "-shm"):
            (work / f"warehouse.db{suffix}").unlink(missing_ok=True)
    last = date.fromisoformat(state_file.read_text().strip())
    first, second = last - timedelta(days=2), last - timedelta(days=1)
    if not args.reuse:
        results.append(run_stage(f"ingest catch-up to {first}", INGEST, [first.isoformat()], env))
        if args.backend == "sqlite":
            take_sqlite_snapshot(work)
        else:
            postgres_database(snap, template=wh)
    if args.prepare_only:
        return
    if not args.night_only:
        results.append(run_stage(f"segments full {first} (first run)", SEGMENTS, [first.isoformat(), "full"], env))
        results.append(run_stage(f"ingest {second}", INGEST, [second.isoformat()], env))
        if args.skip_full_day:  # the middle night incremental too: the full recompute is then the first run's
            results.append(run_stage(f"segments incremental {second}", SEGMENTS, [second.isoformat(), "auto"], env))
        else:
            results.append(run_stage(f"segments --full {second}", SEGMENTS, [second.isoformat(), "full"], env))
        results.append(run_stage(f"ingest {last}", INGEST, [last.isoformat()], env))
        if args.keep_night:
            if args.backend == "sqlite":
                take_sqlite_snapshot(work, "warehouse-night")
            else:
                postgres_database(night, template=wh)
    results.append(run_stage(f"segments incremental {last}", SEGMENTS, [last.isoformat(), "auto"], env))
    parquet = work / "parquet"
    if not (args.reuse and args.reuse_parquet and parquet.exists()):
        shutil.rmtree(parquet, ignore_errors=True)
        results.append(run_stage("export to Parquet", EXPORT, [str(parquet), *TABLES], env))
    results.append(run_stage(f"duckdb full {last}", DUCKDB, [str(parquet), last.isoformat(), *TABLES], env))
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / f"segments-{args.backend}-{args.customers}.json").write_text(json.dumps(results, indent=2))


def take_sqlite_snapshot(work: Path, name: str = "warehouse-snapshot") -> None:
    """Copy the work folder's SQLite warehouse (with its WAL) to `<name>.db`."""
    for suffix in ("", "-wal"):
        (work / f"{name}.db{suffix}").unlink(missing_ok=True)
        if (work / f"warehouse.db{suffix}").exists():
            shutil.copyfile(work / f"warehouse.db{suffix}", work / f"{name}.db{suffix}")


def restore_sqlite_snapshot(work: Path, name: str = "warehouse-snapshot") -> None:
    """Replace the work folder's SQLite warehouse by its snapshot `<name>.db`."""
    for suffix in ("", "-wal", "-shm"):
        (work / f"warehouse.db{suffix}").unlink(missing_ok=True)
    for suffix in ("", "-wal"):
        if (work / f"{name}.db{suffix}").exists():
            shutil.copyfile(work / f"{name}.db{suffix}", work / f"warehouse.db{suffix}")


def PG_ADMIN_BASE() -> str:
    return PG_ADMIN.rsplit("/", 1)[0]


if __name__ == "__main__":
    main()
