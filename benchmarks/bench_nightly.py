"""Benchmark: the whole nightly run (every step of the DAG) for one business day at scale.

Simulates a company, catches the warehouse up (one `nightly` for the day before the last, also
training a first churn model when the churn step exists), then times `nightly` for the last day
in its own process: wall time and peak RSS per step (the subflow runs, from the Prefect API;
memory sampled every 0.2 s), and Prefect's own overhead (the run's wall time minus the time
spent inside task functions). Run by hand, not in CI:
    python benchmarks/bench_nightly.py --customers 100000 --days 120 --backend sqlite
    python benchmarks/bench_nightly.py --customers 1000000 --days 120 --backend postgresql
(120 days: the churn model needs its 60-day horizon and history before the first snapshot.)
At 1M the preparation (simulation, catch-up night, first model) takes most of an hour: `--prepare-only`
stops after it and keeps a snapshot (the work folder copied, the PostgreSQL warehouse as a template
database); `--reuse` restores that snapshot and times the night alone, as often as wanted.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.bench_ingest import SIMULATE, fresh_workdir, run_stage, work_env
from benchmarks.bench_segments import PG_ADMIN_BASE, postgres_database

NIGHT = """
import asyncio, json, sys, threading, time
from datetime import date
import psutil
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterParentFlowRunId, TaskRunFilter, TaskRunFilterFlowRunId
from flows.nightly import nightly

samples = []
def sample():
    me = psutil.Process()
    while True:
        samples.append((time.time(), me.memory_info().rss))
        time.sleep(0.2)
threading.Thread(target=sample, daemon=True).start()

@flow(name="warm-up")
def warm_up() -> None:
    pass

warm_up()
day = date.fromisoformat(sys.argv[1])
extra = json.loads(sys.argv[2])
started = time.perf_counter()
state = nightly(as_of=day, return_state=True, **extra)
wall = time.perf_counter() - started

async def steps():
    async with get_client() as client:
        run = await client.read_flow_run(state.state_details.flow_run_id)
        children = await client.read_flow_runs(flow_run_filter=FlowRunFilter(parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[run.id])))
        ids = [run.id, *[c.id for c in children]]
        tasks, offset = [], 0
        while True:  # the API pages at 200
            page = await client.read_task_runs(task_run_filter=TaskRunFilter(flow_run_id=TaskRunFilterFlowRunId(any_=ids)), limit=200, offset=offset)
            tasks += page
            offset += len(page)
            if len(page) < 200:
                return run, children, tasks

run, children, tasks = asyncio.run(steps())
out = []
for child in sorted(children, key=lambda c: c.start_time or c.expected_start_time):
    if child.start_time is None or child.end_time is None:
        out.append({"step": child.name, "state": child.state_name})
        continue
    start, end = child.start_time.timestamp(), child.end_time.timestamp()
    peak = max((rss for t, rss in samples if start <= t <= end), default=0)
    out.append({"step": child.name.rsplit(" ", 1)[0], "state": child.state_name, "seconds": round(end - start, 1),
                "peak_rss_mb": round(peak / 2**20)})
# Time covered by task functions (overlapping task runs, e.g. chunks on threads, merged once).
spans = sorted((t.start_time.timestamp(), t.end_time.timestamp()) for t in tasks if t.start_time and t.end_time)
inside, reach = 0.0, float("-inf")
for begin, finish in spans:
    if finish > reach:
        inside += finish - max(begin, reach)
        reach = finish
print(json.dumps({"state": state.name, "message": (state.message or "")[:300], "wall_seconds": round(wall, 1),
                  "peak_rss_mb": round(max(r for _, r in samples) / 2**20), "task_seconds": round(inside, 1),
                  "prefect_overhead_share": round(max(wall - inside, 0) / wall, 3), "steps": out}))
"""

TRAIN = """
import json, sys
from datetime import date
try:
    from flows.churn import train_churn
except ImportError:
    print(json.dumps({"trained": False})); raise SystemExit(0)
state = train_churn(as_of=date.fromisoformat(sys.argv[1]), return_state=True)
print(json.dumps({"trained": True, "state": state.name}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=120)
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/crm-bench-nightly"))
    parser.add_argument("--prepare-only", action="store_true", help="stop after the first model (and its snapshot)")
    parser.add_argument("--reuse", action="store_true", help="restore the snapshot of --prepare-only, time the night")
    args = parser.parse_args()

    work = args.workdir / f"{args.backend}-{args.customers}"
    prepared = work.with_name(work.name + "-prepared")
    wh, snap = f"crm_bench_night_wh_{args.customers}", f"crm_bench_night_snap_{args.customers}"
    results = []
    if args.reuse:
        if not prepared.exists():
            raise SystemExit(f"no prepared world in {prepared}: run with --prepare-only first")
        shutil.rmtree(work, ignore_errors=True)
        shutil.copytree(prepared, work, symlinks=True)
        env = work_env(work)
        if args.backend == "postgresql":
            env["CRM_WAREHOUSE_URL"] = postgres_database(wh, template=snap)
            env["CRM_SOURCE_URL"] = PG_ADMIN_BASE() + f"/crm_bench_night_src_{args.customers}"
        last_day = date.fromisoformat((work / "last_day.txt").read_text().strip())
    else:
        _, env = fresh_workdir(args.workdir, args.backend, args.customers, "crm_bench_night")
        results.append(run_stage("simulate", SIMULATE, [str(args.customers), str(args.days)], env))
        last_day = date.fromisoformat(results[0]["result"]["last_day"])
        (work / "last_day.txt").write_text(last_day.isoformat())
        before = (last_day - timedelta(days=1)).isoformat()
        results.append(run_stage("nightly catch-up", NIGHT, [before, "{}"], env))
        results.append(run_stage("train churn model", TRAIN, [before], env))
        if args.prepare_only:
            shutil.rmtree(prepared, ignore_errors=True)
            shutil.copytree(work, prepared, symlinks=True)
            if args.backend == "postgresql":
                postgres_database(snap, template=wh)
    if not args.prepare_only:
        results.append(run_stage("nightly", NIGHT, [last_day.isoformat(), "{}"], env))
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    label = "prepare" if args.prepare_only else "reuse" if args.reuse else "full"
    (out / f"nightly-{args.backend}-{args.customers}-{label}.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
