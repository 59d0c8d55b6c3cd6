"""Benchmark: plan one business day of every shipped campaign for N customers, on SQLite or PostgreSQL.

The warehouse is seeded synthetically in a steady state (no simulation or ingestion to wait for):
N customers with their history versions, contacts (push 15%, e-mail 40%, SMS 60%, 92% consent),
the day's triggers (registrations, abandoned and approved applications, first repayments,
birthdays, segment entries, loyalty events), open campaign entries (default 10% of the base,
entered over the last 30 days) and the last week's outbox (the contact budget). Then each stage
runs in its own process (its own peak RSS): plan the day, then re-plan it (a re-run).

    python benchmarks/bench_campaigns.py --customers 200000 --backend sqlite
    python benchmarks/bench_campaigns.py --customers 1000000 --backend postgresql
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.bench_ingest import postgres_database, run_stage

DAY = "2026-06-15"

SEED = """
import sys, json
from datetime import date, timedelta
import numpy as np, pandas as pd
from crm.campaigns import assign_groups, load_campaigns
from crm.core.db import write_frame
from crm.core.gate import Check, record_verdict
from crm.core.migrations import upgrade_warehouse
from crm.core.settings import warehouse_engine
from crm.core.contracts import ENTITIES
from models.campaigns import campaign_entries
from models.ingest import history, staging
from models.sending import outbox
from models.segments import segment_events

n = int(sys.argv[1]); open_share = float(sys.argv[2]); day = date.fromisoformat(sys.argv[3])
rng = np.random.default_rng(42)
engine = warehouse_engine(); upgrade_warehouse(engine)
D = pd.Timestamp(day); ids = np.arange(1, n + 1, dtype=np.int64)
old = D - pd.Timedelta(days=400)

def write(name, frame, versioned=True):
    with engine.begin() as conn:
        write_frame(conn, staging[name], frame.assign(ingested_on=D), on_conflict="error")
        if versioned:
            updated = ENTITIES[name].updated_column
            write_frame(conn, history[name], frame.assign(valid_from=frame[updated], valid_to=pd.NaT, ingested_on=D), on_conflict="error")

registered = old + pd.to_timedelta(rng.integers(0, 399 * 86400, n), unit="s")
new = rng.random(n) < 0.003  # the day before's registrations
registered = registered.where(~new, D - pd.Timedelta(hours=12))
birth = pd.Timestamp("1960-01-01") + pd.to_timedelta(rng.integers(0, 40 * 365, n), unit="D")
customers = pd.DataFrame({"customer_id": ids, "registered_at": registered, "birth_date": birth,
    "signup_channel": np.where(rng.random(n) < 0.7, "online", "offline"), "is_technical": rng.random(n) < 0.001,
    "updated_at": registered})
write("customers", customers)
frames = []
for channel, share in (("push", 0.15), ("email", 0.40), ("sms", 0.60)):
    has = ids[rng.random(n) < share]
    address = {"push": [f"{i:032x}" for i in has], "email": [f"u{i}@example.com" for i in has],
               "sms": [f"+38067{i:07d}" for i in has]}[channel]
    frames.append(pd.DataFrame({"customer_id": has, "channel": channel, "address": address,
        "is_consented": rng.random(len(has)) < 0.92, "updated_at": old}))
write("customer_contacts", pd.concat(frames, ignore_index=True))
# Applications: 30% of the base, a few turning abandoned or approved on the day.
apps_c = ids[rng.random(n) < 0.30]; m = len(apps_c)
status = rng.choice(["issued", "rejected", "expired", "abandoned", "approved"], m, p=[0.6, 0.2, 0.1, 0.05, 0.05])
today = rng.random(m) < 0.01
created = np.where(today, D + pd.Timedelta(hours=8), old + pd.Timedelta(days=100))
updated = np.where(today, D + pd.Timedelta(hours=10), old + pd.Timedelta(days=100))
apps = pd.DataFrame({"application_id": np.arange(1, m + 1), "customer_id": apps_c, "created_at": pd.to_datetime(created),
    "requested_amount_minor": 500000, "status": status, "updated_at": pd.to_datetime(updated)})
write("loan_applications", apps)
changes = apps.loc[today, ["application_id", "status", "updated_at"]].rename(columns={"updated_at": "changed_at"})
changes.insert(0, "change_id", np.arange(1, len(changes) + 1))
write("application_status_changes", changes, versioned=False)
issued = apps[apps["status"] == "issued"]; k = len(issued)
closed = np.where(rng.random(k) < 0.01, D - pd.Timedelta(days=3) + pd.Timedelta(hours=9), old + pd.Timedelta(days=150))
loans = pd.DataFrame({"loan_id": np.arange(1, k + 1), "application_id": issued["application_id"].to_numpy(),
    "customer_id": issued["customer_id"].to_numpy(), "issued_at": old + pd.Timedelta(days=101), "principal_minor": 500000,
    "daily_rate_bp": 100, "term_days": 30, "due_on": (old + pd.Timedelta(days=131)).normalize(), "status": "repaid",
    "closed_at": pd.to_datetime(closed), "updated_at": pd.to_datetime(closed)})
write("loans", loans)
# Segment entries of the day (pre-churn, churn, deep churn).
seg = []
for name in ("pre_churn", "churn", "deep_churn"):
    who = ids[rng.random(n) < 0.002]
    seg.append(pd.DataFrame({"as_of": D, "kind": "lifecycle_substate", "segment": name, "customer_id": who,
                             "change": "entered", "rule": "bench"}))
with engine.begin() as conn:
    write_frame(conn, segment_events, pd.concat(seg, ignore_index=True), on_conflict="ignore")
# Open entries over the last 30 days, spread over the campaigns with chains.
campaigns = [c for c in load_campaigns() if c.audience.trigger != "loyalty_event"]
who = ids[rng.random(n) < open_share]
pick = rng.integers(0, len(campaigns), len(who))
entries = []
for j, c in enumerate(campaigns):
    members = who[pick == j]
    entries.append(pd.DataFrame({"campaign_id": c.id, "customer_id": members, "wave": 1, "campaign_version": 1,
        "entered_on": D - pd.to_timedelta(rng.integers(1, 31, len(members)), unit="D"),
        "group": assign_groups(members, c.id, c.holdout_share), "exited_on": pd.NaT, "exit_reason": None}))
with engine.begin() as conn:
    write_frame(conn, campaign_entries, pd.concat(entries, ignore_index=True), on_conflict="error")
# The last week's outbox: 5% of the base got one message (the contact budget reads it).
sent = ids[rng.random(n) < 0.05]
box = pd.DataFrame({"message_id": [f"{i:032x}" for i in sent], "as_of": D - pd.to_timedelta(rng.integers(1, 7, len(sent)), unit="D"),
    "campaign_id": "past", "step": 11, "wave": 1, "customer_id": sent, "channel": "email", "template_id": "t",
    "params": "{}", "consent_decision": "consented", "address": "x", "not_before": pd.NaT, "cost_minor": 3,
    "state": "sent", "skip_reason": None, "attempts": 1})
with engine.begin() as conn:
    write_frame(conn, outbox, box, on_conflict="error")
    record_verdict(conn, day, Check.QUALITY, fit_for_sending=True, summary="bench")
    record_verdict(conn, day, Check.RECONCILIATION, fit_for_sending=True, summary="bench")
print(json.dumps({"customers": n, "open_entries": int(len(who)), "contacts": int(sum(len(f) for f in frames))}))
"""

PLAN = """
import sys, json, time
from datetime import date
from crm.campaigns import plan_campaigns
from crm.core.settings import warehouse_engine
started = time.perf_counter()
r = plan_campaigns(warehouse_engine(), date.fromisoformat(sys.argv[1]))
print(json.dumps({"planning_seconds": round(time.perf_counter() - started, 1), "entered": sum(r.entered.values()), "exited": sum(r.exited.values()), "planned": r.planned,
                  "skipped": r.skipped, "enqueued": r.enqueued, "purged": r.purged}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--open-share", type=float, default=0.10, help="share of the base with an open entry")
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/crm-bench-campaigns"))
    args = parser.parse_args()

    work = args.workdir / f"{args.backend}-{args.customers}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    env = dict(os.environ, CRM_HOME=str(work), PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    if args.backend == "postgresql":
        env["CRM_WAREHOUSE_URL"] = postgres_database(f"crm_bench_campaigns_{args.customers}")
    results = [
        run_stage("seed", SEED, [str(args.customers), str(args.open_share), DAY], env),
        run_stage("plan", PLAN, [DAY], env),
        run_stage("re-plan", PLAN, [DAY], env),
    ]
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / f"campaigns-{args.backend}-{args.customers}.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
