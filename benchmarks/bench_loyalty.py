"""Benchmark: the loyalty ledger at N members on SQLite or PostgreSQL; time and peak memory per stage.

A synthetic warehouse (the staging and history tables the ingestion writes) holds a year of
activity for N members: ~3 purchases and ~2 interest payments per member, 3% of purchases
returned, loans with some written off. Then:
- `first-run`: the programme's first run posts the whole year at once (the bulk rebuild);
- `nightly`: the next business day, one day of activity (~N/120 purchases and interest
  payments, ~N/365 sign-ups, returns of earlier purchases), recalculated and checked;
- `report`: the day's report figures (liability, expiring, flows, tiers, migration, intersection);
- `replay`: `--replay-days K` business days posted one by one into a fresh ledger database (the
  day-by-day rebuild; a year is extrapolated from it).
Each stage runs in its own process so its peak RSS is its own. Run by hand, not in CI:
    python benchmarks/bench_loyalty.py --customers 100000 --backend sqlite --replay-days 7
    python benchmarks/bench_loyalty.py --customers 1000000 --backend postgresql
`--reuse` starts from the synthetic year a previous run generated (a copy of the SQLite file, a
PostgreSQL template database `<prefix>_snap_<n>`) instead of generating it again.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bench_ingest import run_stage
from benchmarks.bench_segments import postgres_database, restore_sqlite_snapshot, take_sqlite_snapshot

GENERATE = r"""
import sys, json
from datetime import date, datetime, timedelta
import numpy as np, pandas as pd
from crm.core.contracts import ENTITIES
from crm.core.db import write_frame
from crm.core.migrations import upgrade_warehouse
from crm.core.settings import get_settings, warehouse_engine
from models.ingest import history, staging

n = int(sys.argv[1]); start = date.fromisoformat(sys.argv[2]); days = int(sys.argv[3])
rng = np.random.default_rng(42)
engine = warehouse_engine(get_settings()); upgrade_warehouse(engine)
t0 = np.datetime64(start) - np.timedelta64(1, "D")
last = np.datetime64(start) + np.timedelta64(days - 1, "D")

def stamp(day_offsets):
    # a time of day inside each business day
    return (np.datetime64(start, "s") + (day_offsets * 86400 + rng.integers(28800, 72000, len(day_offsets))).astype("timedelta64[s]"))

def put(entity, frame, versions=None):
    e = ENTITIES[entity]
    frame = frame.assign(ingested_on=pd.to_datetime(frame[e.known_at_column]).dt.normalize())
    with engine.begin() as conn:
        if e.versioned:
            h = (versions if versions is not None else frame).copy()
            h["valid_from"] = h[e.updated_column]
            if "valid_to" not in h:
                h["valid_to"] = pd.NaT
            write_frame(conn, history[entity], h, on_conflict="error")
            latest = frame.sort_values(e.updated_column).drop_duplicates(list(e.key), keep="last")
            write_frame(conn, staging[entity], latest.drop(columns=["valid_to"], errors="ignore"), on_conflict="error")
        else:
            write_frame(conn, staging[entity], frame, on_conflict="error")

# members: registered over the year (a few before it), the last day's sign-ups included
reg_day = rng.integers(-30, days + 1, n)
reg = stamp(reg_day)
customers = pd.DataFrame({
    "customer_id": np.arange(1, n + 1), "registered_at": reg,
    "birth_date": (np.datetime64("1960-01-01") + rng.integers(0, 15000, n).astype("timedelta64[D]")),
    "signup_channel": np.where(rng.random(n) < 0.6, "online", "offline"),
    "is_technical": rng.random(n) < 0.001, "updated_at": reg})
put("customers", customers)

# purchases: ~3 a member a year (~N/120 a day), after registration; 3% returned later
k = 3 * n * (days + 1) // 365
buyer = rng.integers(1, n + 1, k)
day = np.maximum(rng.integers(0, days + 1, k), reg_day[buyer - 1].clip(0))
at = stamp(day)
orders = pd.DataFrame({
    "order_id": np.arange(1, k + 1), "customer_id": buyer, "ordered_at": at,
    "amount_minor": rng.lognormal(10.5, 0.8, k).astype("int64"),
    "product_group": rng.choice(["gold", "silver", "diamonds", "watches", "pawn_redemption"], k),
    "sales_channel": rng.choice(["online", "store"], k), "status": "completed", "updated_at": at})
ret = rng.random(k) < 0.03
ret_day = np.minimum(day + rng.integers(1, 30, k), days)
returned = ret & (ret_day > day)
later = orders[returned].assign(status="returned", updated_at=stamp(ret_day[returned]))
first = orders.assign(valid_to=pd.NaT)
first.loc[returned, "valid_to"] = later["updated_at"].to_numpy()
both = pd.concat([first, later.assign(valid_to=pd.NaT)], ignore_index=True)
e = ENTITIES["orders"]
versions = both.assign(ingested_on=pd.to_datetime(both["updated_at"]).dt.normalize(), valid_from=both["updated_at"])
with engine.begin() as conn:
    write_frame(conn, history["orders"], versions, on_conflict="error")
    latest = both.sort_values("updated_at").drop_duplicates("order_id", keep="last").drop(columns="valid_to")
    write_frame(conn, staging["orders"], latest.assign(ingested_on=pd.to_datetime(latest["updated_at"]).dt.normalize()), on_conflict="error")

# loans (half the members), 3% written off; interest ~2 a member a year
m = n // 2
loan_day = rng.integers(0, days + 1, m)
issued = stamp(loan_day)
off = rng.random(m) < 0.03
loans = pd.DataFrame({
    "loan_id": np.arange(1, m + 1), "application_id": np.arange(1, m + 1), "customer_id": rng.integers(1, n + 1, m),
    "issued_at": issued, "principal_minor": rng.integers(100_000, 2_000_000, m), "daily_rate_bp": 80, "term_days": 30,
    "due_on": (pd.to_datetime(issued) + pd.Timedelta(days=30)).normalize(),
    "status": np.where(off, "written_off", "active"), "closed_at": pd.Series(np.where(off, issued, np.datetime64("NaT")), dtype="datetime64[s]"),
    "updated_at": issued})
put("loans", loans)
p = 2 * n * (days + 1) // 365
pday = rng.integers(0, days + 1, p)
paid = stamp(pday)
payments = pd.DataFrame({
    "payment_id": np.arange(1, p + 1), "loan_id": rng.integers(1, m + 1, p), "customer_id": rng.integers(1, n + 1, p),
    "paid_at": paid, "payment_type": "interest", "amount_minor": rng.integers(500, 20_000, p), "updated_at": paid})
put("payments", payments)
print(json.dumps({"customers": n, "orders": int(k), "order_versions": int(len(both)), "loans": m, "payments": int(p)}))
"""

POST = r"""
import sys, json, time
from datetime import date
from crm.core.settings import get_settings, make_engine, warehouse_engine
from crm.loyalty import LoyaltyConfig, create_ledger_tables, post_loyalty_day
day = date.fromisoformat(sys.argv[1]); ledger_url = sys.argv[2] if len(sys.argv) > 2 else ""
source = warehouse_engine(get_settings())
ledger = make_engine(ledger_url) if ledger_url else source
t = time.perf_counter()
r = post_loyalty_day(source, ledger, day, LoyaltyConfig())
print(json.dumps({"day": str(day), "entries": r.entries_added, "allocations": r.allocations_added, "touched": r.members_touched,
  "joined": r.joined, "tier_changes": r.tier_changes, "events": r.events, "violations": len(r.violations), "seconds": round(time.perf_counter() - t, 1)}))
"""

REPLAY = r"""
import sys, json, time
from datetime import date, timedelta
from crm.core.settings import get_settings, make_engine, warehouse_engine
from crm.loyalty import LoyaltyConfig, create_ledger_tables, post_loyalty_day
first = date.fromisoformat(sys.argv[1]); k = int(sys.argv[2]); ledger = make_engine(sys.argv[3])
create_ledger_tables(ledger)
source = warehouse_engine(get_settings())
times = []
for i in range(k):
    t = time.perf_counter(); r = post_loyalty_day(source, ledger, first + timedelta(days=i), LoyaltyConfig()); times.append(round(time.perf_counter() - t, 2))
print(json.dumps({"days": k, "seconds_per_day": times, "median": sorted(times)[len(times) // 2]}))
"""

REPORT = r"""
import sys, json
from datetime import date
from crm.core.settings import get_settings, warehouse_engine
from crm.loyalty import LoyaltyConfig, read_report, flows_chart
e = warehouse_engine(get_settings()); day = date.fromisoformat(sys.argv[1])
f = read_report(e, e, day, LoyaltyConfig())
png = flows_chart(f["flows"], day)
print(json.dumps({"liability": f["liability"], "expiring_30": f["expiring_30"], "intersection": f["intersection"], "png_bytes": len(png)}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=365, help="Days of history before the measured night.")
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--replay-days", type=int, default=0, help="Also post this many days one by one (rebuild).")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/crm-bench-loyalty"))
    parser.add_argument("--db-prefix", default="crm_bench_loyalty", help="PostgreSQL database names' prefix.")
    parser.add_argument(
        "--reuse", action="store_true", help="start from the synthetic year a previous run generated (its snapshot)"
    )
    parser.add_argument("--first-run-only", action="store_true", help="stop after the first run")
    args = parser.parse_args()

    from datetime import date, timedelta

    start = date(2025, 1, 1)
    year_end = start + timedelta(days=args.days - 1)
    night = year_end + timedelta(days=1)
    work = args.workdir / f"{args.backend}-{args.customers}"
    work.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, CRM_HOME=str(work), PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    wh, snap = f"{args.db_prefix}_{args.customers}", f"{args.db_prefix}_snap_{args.customers}"
    if args.backend == "postgresql":
        env["CRM_WAREHOUSE_URL"] = postgres_database(wh, template=snap if args.reuse else None)
        replay_url = postgres_database(f"{args.db_prefix}_replay_{args.customers}")
    else:
        for suffix in ("", "-wal", "-shm"):
            (work / f"warehouse.db{suffix}").unlink(missing_ok=True)
            (work / f"replay.db{suffix}").unlink(missing_ok=True)
        env["CRM_WAREHOUSE_URL"] = f"sqlite:///{work / 'warehouse.db'}"
        replay_url = f"sqlite:///{work / 'replay.db'}"
        if args.reuse:
            restore_sqlite_snapshot(work)
    results = []
    if not args.reuse:
        results.append(run_stage("generate", GENERATE, [str(args.customers), str(start), str(args.days)], env))
        if args.backend == "sqlite":
            take_sqlite_snapshot(work)
        else:
            postgres_database(snap, template=wh)
    results.append(run_stage("first-run (a year at once)", POST, [str(year_end)], env))
    if args.first_run_only:
        return
    results.append(run_stage("nightly (one day)", POST, [str(night)], env))
    results.append(run_stage("nightly re-run", POST, [str(night)], env))
    results.append(run_stage("report", REPORT, [str(night)], env))
    if args.replay_days:
        results.append(run_stage("replay day by day", REPLAY, [str(start), str(args.replay_days), replay_url], env))
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / f"loyalty-{args.backend}-{args.customers}.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
