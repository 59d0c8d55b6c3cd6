"""Benchmark: churn training (N customers x 6 snapshots) and scoring (features + predict + write), per stage.

Simulates a company whose customers register over the first 60 days and live until day `--days`,
ingests it (one catch-up), then trains and scores with the crm functions the Prefect tasks call
(no Prefect server in the figures). Each stage runs in its own process so its peak RSS is its own.
Run by hand, not in CI:
    python benchmarks/bench_churn.py --customers 100000 --backend sqlite
    python benchmarks/bench_churn.py --customers 200000 --backend postgresql
    python benchmarks/bench_churn.py --customers 200000 --backend sqlite --reuse-source --stages train,score
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.bench_ingest import INGEST, postgres_database, run_stage

SIMULATE = """
import sys, json
from datetime import date
from crm.core.settings import get_settings, source_engine
from crm.core.storage import open_store
from crm.simulator import simulate
s = get_settings(); customers, days = int(sys.argv[1]), int(sys.argv[2])
source, zone = source_engine(s, create=True), open_store(s.landing)
simulate(source, zone, customers=customers, days=60, seed=42, start=date(2026, 1, 1))
summary = simulate(source, zone, customers=0, days=days - 60)
print(json.dumps({"last_day": summary.last_day.isoformat()}))
"""

TRAIN = """
import sys, json, time
from datetime import date
import pandas as pd
from crm.churn import ChurnConfig, build_snapshot, fit_and_compare, open_registry, plan_snapshots, usable
from crm.core.settings import get_settings, warehouse_engine
as_of = date.fromisoformat(sys.argv[1]); config = ChurnConfig(); engine = warehouse_engine()
t = time.perf_counter()
plan = plan_snapshots(engine, as_of, config)
frames = [build_snapshot(engine, d, as_of, config) for d in plan.used]
frames = [f for f in frames if len(f) and usable(f, config) is None]
frame = pd.concat(frames, ignore_index=True)
features_s = time.perf_counter() - t; t = time.perf_counter()
result = fit_and_compare(frame, plan.kinds, config, None)
fit_s = time.perf_counter() - t
registry = open_registry(config, get_settings())
entry = registry.register(result.challenger, {"as_of": as_of.isoformat(), "model_kind": str(result.challenger_kind),
    "features": result.features, "reference": result.reference, "training_window": [d.isoformat() for d in plan.used],
    "metrics": result.metrics})
registry.promote(entry["version"], as_of, "benchmark")
m = result.metrics
print(json.dumps({"snapshots": len(frames), "rows": len(frame), "features": len(result.features),
    "features_seconds": round(features_s, 1), "fit_compare_seconds": round(fit_s, 1),
    "roc_auc": round(m["gradient_boosting"]["roc_auc"], 4), "recency_roc_auc": round(m["recency"]["roc_auc"], 4),
    "version": entry["version"]}))
"""

SCORE = """
import sys, json, time
from datetime import date
import pandas as pd
from crm.churn import ChurnConfig, customer_ranges, deciles, open_registry, score_range, write_scores
from crm.core.settings import get_settings, warehouse_engine
as_of = date.fromisoformat(sys.argv[1]); config = ChurnConfig(); engine = warehouse_engine()
model, entry, _ = open_registry(config, get_settings()).load_serving()
with engine.connect() as conn:
    ranges = customer_ranges(conn, as_of, config.scoring.chunk_customers)
t = time.perf_counter(); parts = []
for lo, hi in ranges:
    parts.append(score_range(engine, as_of, lo, hi, model, entry, config)[0])
scores = pd.concat(parts, ignore_index=True)
score_s = time.perf_counter() - t; t = time.perf_counter()
scores["decile"] = deciles(scores["probability"].to_numpy(), scores["customer_id"].to_numpy())
scores["model_version"] = entry["version"]
written = write_scores(engine, as_of, scores)
print(json.dumps({"chunks": len(ranges), "scored": written,
    "features_predict_seconds": round(score_s, 1), "write_seconds": round(time.perf_counter() - t, 1)}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=240, help="history length (6 snapshots 30 days apart + 60 horizon)")
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/crm-bench-churn"))
    parser.add_argument("--reuse-source", action="store_true", help="keep the simulated and ingested warehouse")
    parser.add_argument("--stages", default="simulate,ingest,train,score")
    args = parser.parse_args()
    stages = args.stages.split(",")
    work = args.workdir / f"{args.backend}-{args.customers}"
    env = dict(
        os.environ,
        CRM_HOME=str(work),
        CRM_LANDING_URL=str(work / "landing"),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
    )
    if args.backend == "postgresql":
        base = os.environ.get("CRM_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
        names = (f"crm_bench_churn_wh_{args.customers}", f"crm_bench_churn_src_{args.customers}")
        if args.reuse_source:
            env["CRM_WAREHOUSE_URL"], env["CRM_SOURCE_URL"] = (base.rsplit("/", 1)[0] + f"/{n}" for n in names)
        else:
            env["CRM_WAREHOUSE_URL"], env["CRM_SOURCE_URL"] = (postgres_database(n) for n in names)
    if not args.reuse_source:
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
    results = []
    state_file = work / "last_day.txt"
    if "simulate" in stages:
        simulated = run_stage("simulate", SIMULATE, [str(args.customers), str(args.days)], env)
        results.append(simulated)
        state_file.write_text(simulated["result"]["last_day"])
    last_day = state_file.read_text().strip()
    if "ingest" in stages:
        results.append(run_stage("ingest", INGEST, [last_day], env))
    if "train" in stages:
        results.append(run_stage("train", TRAIN, [last_day], env))
    if "score" in stages:
        results.append(run_stage("score", SCORE, [last_day], env))
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / f"churn-{args.backend}-{args.customers}.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
