"""Benchmark: one business day through the night's flows at scale: ingest, quality, reconcile.

Simulates a company, catches the warehouse up to the day before the last (the heaviest batch
there is), then runs the flows for the last day. Each stage runs in its own process (its own
peak RSS); the time is the flow call alone, after a warm-up flow started Prefect's server.
Run by hand, not in CI:
    python benchmarks/bench_day.py --customers 1000000 --days 60 --backend sqlite
    python benchmarks/bench_day.py --customers 1000000 --days 60 --backend postgresql
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.bench_ingest import SIMULATE, fresh_workdir, run_stage

FLOW = """
import sys, json, time
from datetime import date
from prefect import flow
from flows.{module} import {name}

@flow(name="warm-up")
def warm_up() -> None:
    pass

warm_up()
started = time.perf_counter()
state = {name}(as_of=date.fromisoformat(sys.argv[1]), return_state=True)
seconds = time.perf_counter() - started
result = state.result(raise_on_failure=False)
keep = ("summary", "fit_for_sending", "expectations", "figures", "critical_failures")
brief = {{k: result[k] for k in keep if isinstance(result, dict) and k in result}} if isinstance(result, dict) else {{}}
print(json.dumps({{"state": state.name, "flow_seconds": round(seconds, 1), **brief}}, default=str))
"""


def flow_stage(label: str, module: str, name: str, day: str, env: dict) -> dict:
    return run_stage(label, FLOW.format(module=module, name=name), [day], env)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/crm-bench-day"))
    args = parser.parse_args()

    _, env = fresh_workdir(args.workdir, args.backend, args.customers, "crm_bench_day")

    results = [run_stage("simulate", SIMULATE, [str(args.customers), str(args.days)], env)]
    last_day = date.fromisoformat(results[0]["result"]["last_day"])
    catch_up = (last_day - timedelta(days=1)).isoformat()
    results.append(flow_stage("ingest catch-up", "ingest", "ingest", catch_up, env))
    results.append(flow_stage("quality catch-up", "quality", "quality", catch_up, env))
    for label, module in (("ingest", "ingest"), ("quality", "quality"), ("reconcile", "reconcile")):
        results.append(flow_stage(f"{label} day", module, module, last_day.isoformat(), env))
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / f"day-{args.backend}-{args.customers}.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
