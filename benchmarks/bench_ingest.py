"""Benchmark: simulate a company, then ingest it, on SQLite or PostgreSQL; time and peak memory per stage.

Each stage runs in its own process so its peak RSS is its own. Run by hand, not in CI:
    python benchmarks/bench_ingest.py --customers 100000 --days 90 --backend sqlite
    python benchmarks/bench_ingest.py --customers 1000000 --days 90 --backend postgresql
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

PG_ADMIN = os.environ.get("CRM_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")

SIMULATE = """
import sys, json
from datetime import date
from crm.core.settings import get_settings, source_engine
from crm.core.storage import open_store
from crm.simulator import simulate
s = get_settings()
summary = simulate(source_engine(s, create=True), open_store(s.landing), customers=int(sys.argv[1]), days=int(sys.argv[2]), seed=42, start=date(2026, 1, 1))
print(json.dumps({"last_day": summary.last_day.isoformat(), "rows": summary.rows_written}, default=str))
"""

INGEST = """
import sys, json, time
from datetime import date
from crm.core.contracts import LANDING_ENTITIES, SOURCE_ENTITIES
from crm.ingest import pull_source_table, load_landing_files, load_known_ids
from crm.core.storage import open_store
from crm.ingest import list_landing_files
from crm.core.migrations import upgrade_warehouse
from crm.core.settings import get_settings, source_engine, warehouse_engine
from concurrent.futures import ThreadPoolExecutor
from crm.ingest import build_missing_indexes, builds_indexes_alongside, drop_secondary_indexes, entity_tables, is_initial_load, loading_in_bulk, measure_tables, rows_written
from crm.core.db import refresh_statistics
s = get_settings(); day = date.fromisoformat(sys.argv[1])
upgrade_warehouse(warehouse_engine(s))
set_aside = is_initial_load(warehouse_engine(s)) and drop_secondary_indexes(warehouse_engine(s))  # as the ingest flow does
# PostgreSQL: each loaded entity's indexes built and tables measured on a second connection while the load goes on (as the flow does).
alongside = ThreadPoolExecutor(1) if set_aside and builds_indexes_alongside(warehouse_engine(s)) else None
builds = []
def build_and_measure(name):
    return build_missing_indexes(warehouse_engine(s), entity_tables(name)), measure_tables(warehouse_engine(s), entity_tables(name))
def loaded(name):
    if alongside:
        builds.append(alongside.submit(build_and_measure, name))
totals = {}; written = []
for entity in SOURCE_ENTITIES:
    c = pull_source_table(source_engine(s), warehouse_engine(s), entity, day, chunk_rows=s.source_chunk_rows)
    totals[c.source] = c.rows_loaded
    written.append({"entity": entity.name, "rows_loaded": c.rows_loaded})
    loaded(entity.name)
zone = open_store(s.landing)
files, _ = list_landing_files(zone, day)
bulk = loading_in_bulk(warehouse_engine(s))  # once per run, as the loading task does
for entity in LANDING_ENTITIES:  # entity by entity, as the flow
    mine = [f for f in files if f.entity.name == entity.name]
    if not mine:
        continue
    with warehouse_engine(s).connect() as conn:
        known = load_known_ids(conn, entity)
    for c in load_landing_files(zone, warehouse_engine(s), mine, day, known, bulk=bulk):
        totals[entity.name] = totals.get(entity.name, 0) + c.rows_loaded
        written.append({"entity": entity.name, "rows_loaded": c.rows_loaded})
    loaded(entity.name)
started = time.perf_counter()
built = [name for b in builds for name in b.result()[0]]  # waiting for the last builds counts as index time
measured = [name for b in builds for name in b.result()[1]]
totals["indexes_built_alongside"] = len(built)
built += build_missing_indexes(warehouse_engine(s))  # as the ingest flow does at its end
totals["indexes_built"], totals["index_build_seconds"] = len(built), round(time.perf_counter() - started, 1)
started = time.perf_counter()
totals["tables_analyzed_alongside"] = len(measured)
totals["tables_analyzed"] = len(refresh_statistics(warehouse_engine(s), rows_written(written, measured=measured)))  # as the flow does
totals["analyze_seconds"] = round(time.perf_counter() - started, 1)
print(json.dumps(totals))
"""

# The raw floor: the same rows copied without validation, history or bookkeeping, by the engine's
# bulk path (SQLite executemany in one transaction per chunk, PostgreSQL COPY) into a fresh
# database with the stg_ tables' schema (keys included). Reading is timed too: it is part of any load.
RAW_FLOOR = """
import sys, json, io, time
import pandas as pd
from sqlalchemy import Column, MetaData, Table, select
from crm.core.contracts import ENTITIES, SOURCE_ENTITIES
from crm.core.settings import get_settings, make_engine, source_engine
from crm.core.storage import open_store
from models import source as src
from models.ingest import staging
s = get_settings(); target = make_engine(sys.argv[1])
raw = MetaData()  # the stg_ tables' columns and keys, without NOT NULL (no validation here)
tables = {name: Table(t.name, raw, *[Column(c.name, c.type, primary_key=c.primary_key) for c in t.columns])
          for name, t in staging.items()}
raw.drop_all(target); raw.create_all(target)
begun = time.perf_counter()
read_s = write_s = 0.0; rows = 0

def write(table, frame):
    global write_s, rows
    frame = frame[[c.name for c in table.columns if c.name in frame.columns]]
    started = time.perf_counter()
    with target.begin() as conn:
        if conn.dialect.name == "postgresql":
            buffer = io.StringIO(); frame.to_csv(buffer, index=False, header=False); data = buffer.getvalue()
            with conn.connection.cursor() as cur:
                with cur.copy(f"COPY {table.name} ({', '.join(frame.columns)}) FROM STDIN (FORMAT csv)") as copy:
                    copy.write(data)
        else:
            sql = f"INSERT INTO {table.name} ({', '.join(frame.columns)}) VALUES ({', '.join('?' * len(frame.columns))})"
            columns = []
            for name in frame.columns:
                col = frame[name]
                if pd.api.types.is_datetime64_any_dtype(col):
                    col = col.dt.strftime("%Y-%m-%d %H:%M:%S.%f")
                columns.append(col.astype(object).where(col.notna(), None).tolist())
            conn.connection.driver_connection.executemany(sql, zip(*columns))
    write_s += time.perf_counter() - started; rows += len(frame)

source = source_engine(s)
for entity in SOURCE_ENTITIES:
    with source.connect().execution_options(stream_results=True) as conn:
        started = time.perf_counter()
        for chunk in pd.read_sql(select(src.tables[entity.name]), conn, chunksize=s.source_chunk_rows):
            read_s += time.perf_counter() - started
            write(tables[entity.name], chunk.drop_duplicates([*entity.key]))
            started = time.perf_counter()
zone = open_store(s.landing)
for key, _ in zone.list_keys(""):
    entity = ENTITIES.get(key.split("/")[0])
    if entity is None or not key.endswith((".csv", ".jsonl")):
        continue
    started = time.perf_counter()
    data = io.BytesIO(zone.read_bytes(key))
    frame = pd.read_csv(data) if key.endswith(".csv") else pd.read_json(data, lines=True)
    read_s += time.perf_counter() - started
    frame = frame.drop_duplicates(list(entity.key))  # the simulator without faults repeats no key across files
    write(tables[entity.name], frame)
print(json.dumps({"rows": rows, "seconds": round(time.perf_counter() - begun, 1), "read_seconds": round(read_s, 1), "write_seconds": round(write_s, 1),
                  "rows_per_second_write": round(rows / max(write_s, 1e-9))}))
"""

INGEST_FLOW = """
import sys, json
from datetime import date
from flows.ingest import ingest
print(json.dumps(ingest(as_of=date.fromisoformat(sys.argv[1]))))
"""


class ServerCpu:
    """CPU seconds of the PostgreSQL backends serving some databases while a stage runs (sampled from /proc:
    the server's share of a load, which the stage's own CPU time leaves out)."""

    def __init__(self, databases: tuple[str, ...]) -> None:
        self.databases, self.seen, self.done = databases, {}, threading.Event()
        self.thread = threading.Thread(target=self.sample, daemon=True)
        self.ticks = os.sysconf("SC_CLK_TCK")

    def sample(self) -> None:
        needles = [f" {name} ".encode() for name in self.databases]
        while not self.done.wait(0.2):
            for pid in filter(str.isdigit, os.listdir("/proc")):
                try:
                    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
                    if not any(needle in cmdline for needle in needles):
                        continue
                    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                except OSError:
                    continue  # ended between the listing and the read
                self.seen[pid] = (int(fields[11]) + int(fields[12])) / self.ticks  # utime + stime

    def __enter__(self) -> ServerCpu:
        if self.databases:
            self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.done.set()

    @property
    def seconds(self) -> float | None:
        return round(sum(self.seen.values()), 1) if self.databases else None


def run_stage(name: str, code: str, args: list[str], env: dict, server_dbs: tuple[str, ...] = ()) -> dict:
    """Run one stage in a child process; return its wall time, peak RSS and printed result (and, with
    `server_dbs`, the CPU time of the PostgreSQL backends serving those databases)."""
    started = time.perf_counter()
    command = [sys.executable, "-c", code, *args]
    if os.environ.get("CRM_BENCH_PROFILE"):  # a folder: each stage's py-spy flame graph goes there
        folder = Path(os.environ["CRM_BENCH_PROFILE"])
        folder.mkdir(parents=True, exist_ok=True)
        svg = folder / (re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-") + ".txt")
        command = [
            str(Path(sys.executable).with_name("py-spy")),
            "record",
            "--idle",
            "--threads",
            "--subprocesses",  # the SQLite initial load's reading process too
            "-r",
            "50",
            "--format",
            "raw",
            "-o",
            str(svg),
            "--",
            *command,
        ]
    with ServerCpu(server_dbs) as server:
        proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True)
        _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    # The result is the last JSON line (py-spy, when profiling, prints its own lines after it).
    output = [line for line in proc.stdout.read().strip().splitlines() if line.startswith("{")] or [""]
    if status != 0:
        raise SystemExit(f"{name} failed with status {status}")
    result = {
        "stage": name,
        "seconds": round(seconds, 1),
        "peak_rss_mb": round(usage.ru_maxrss / 1024),
        # CPU of the stage's process (not of a PostgreSQL server): less sensitive to a shared machine's load.
        "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 1),
        "server_cpu_seconds": server.seconds,  # PostgreSQL only: its backends for the stage's databases
        "result": json.loads(output[-1]),
    }
    print(json.dumps(result), flush=True)
    return result


def fresh_workdir(workdir: Path, backend: str, customers: int, prefix: str) -> tuple[Path, dict]:
    """An empty work folder and the child processes' environment (PostgreSQL databases `<prefix>_wh/src_<n>`)."""
    work = workdir / f"{backend}-{customers}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    env = work_env(work)
    if backend == "postgresql":
        env["CRM_WAREHOUSE_URL"] = postgres_database(f"{prefix}_wh_{customers}")
        env["CRM_SOURCE_URL"] = postgres_database(f"{prefix}_src_{customers}")
    return work, env


def work_env(work: Path) -> dict:
    """The child processes' environment for the work folder `work` (warehouse and source on SQLite there)."""
    return dict(
        os.environ,
        CRM_HOME=str(work),
        CRM_LANDING_URL=str(work / "landing"),
        CRM_REPORTS_URL=str(work / "reports"),
        PREFECT_HOME=str(work / "prefect"),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_LOGGING_LEVEL="WARNING",
    )


def postgres_database(name: str, template: str | None = None) -> str:
    """A fresh database `name` (a copy of `template` when given: a snapshot kept by a benchmark); its URL."""
    from sqlalchemy import create_engine, text

    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        copy = ""
        if template:
            # PostgreSQL 15 copies a template through the WAL by default: minutes for a 1M warehouse; files: seconds.
            file_copy = conn.execute(text("SHOW server_version_num")).scalar_one() >= "150000"
            copy = f' TEMPLATE "{template}"' + (" STRATEGY FILE_COPY" if file_copy else "")
        conn.execute(text(f'CREATE DATABASE "{name}"' + copy))
    admin.dispose()
    return PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/crm-bench"))
    parser.add_argument(
        "--prefix", default="crm_bench", help="PostgreSQL databases are <prefix>_wh/src/raw_<customers>"
    )
    parser.add_argument(
        "--via-flow", action="store_true", help="ingest through the Prefect flow (adds server start-up)"
    )
    parser.add_argument("--reuse-source", action="store_true", help="keep the simulated source from a previous run")
    parser.add_argument(
        "--raw-floor", action="store_true", help="also copy the same rows by the engine's bulk path (the floor)"
    )
    args = parser.parse_args()

    work = args.workdir / f"{args.backend}-{args.customers}"
    env = dict(
        os.environ, CRM_HOME=str(work), CRM_LANDING_URL=str(work / "landing"), PREFECT_SERVER_ANALYTICS_ENABLED="false"
    )
    if args.backend == "postgresql":
        env["CRM_WAREHOUSE_URL"] = postgres_database(f"{args.prefix}_wh_{args.customers}")
        if not args.reuse_source:
            env["CRM_SOURCE_URL"] = postgres_database(f"{args.prefix}_src_{args.customers}")
        else:
            env["CRM_SOURCE_URL"] = PG_ADMIN.rsplit("/", 1)[0] + f"/{args.prefix}_src_{args.customers}"
    else:
        (work / "warehouse.db").unlink(missing_ok=True)
        for suffix in ("-wal", "-shm"):
            (work / f"warehouse.db{suffix}").unlink(missing_ok=True)

    results = []
    state_file = work / "last_day.txt"
    if not args.reuse_source:
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        simulated = run_stage("simulate", SIMULATE, [str(args.customers), str(args.days)], env)
        results.append(simulated)
        state_file.write_text(simulated["result"]["last_day"])
    last_day = state_file.read_text().strip()
    pg = args.backend == "postgresql"
    names = {part: f"{args.prefix}_{part}_{args.customers}" for part in ("wh", "src", "raw")}
    results.append(
        run_stage(
            "ingest-flow" if args.via_flow else "ingest",
            INGEST_FLOW if args.via_flow else INGEST,
            [last_day],
            env,
            server_dbs=(names["wh"], names["src"]) if pg else (),
        )
    )
    if args.raw_floor:
        raw_url = (
            postgres_database(f"{args.prefix}_raw_{args.customers}")
            if args.backend == "postgresql"
            else f"sqlite:///{work / 'raw.db'}"
        )
        (work / "raw.db").unlink(missing_ok=True)
        floor = run_stage("raw floor", RAW_FLOOR, [raw_url], env, server_dbs=(names["raw"], names["src"]) if pg else ())
        results.append(floor)
        ingest = results[-2]
        ratios = {
            "ingest_over_raw_floor": round(ingest["seconds"] / floor["result"]["seconds"], 2),
            # both stages whole (process start, imports, schema): the like-for-like figures
            "stage_wall_ratio": round(ingest["seconds"] / floor["seconds"], 2),
            "stage_cpu_ratio": round(ingest["cpu_seconds"] / floor["cpu_seconds"], 2),
            # PostgreSQL: the stage's CPU and its server backends' (the work a load costs, whoever does it)
            "client_and_server_cpu_ratio": round(
                (ingest["cpu_seconds"] + ingest["server_cpu_seconds"])
                / (floor["cpu_seconds"] + floor["server_cpu_seconds"]),
                2,
            )
            if pg
            else None,
            "load_average": os.getloadavg(),
        }
        results.append(ratios)
        print(json.dumps(ratios), flush=True)
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / f"ingest-{args.backend}-{args.customers}.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
