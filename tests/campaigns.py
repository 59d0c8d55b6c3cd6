"""Helpers for campaign tests: a month of planning on a simulated company, campaign folders of a test's own."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import yaml
from sqlalchemy import Engine, select

from crm.campaigns import plan_campaigns
from crm.core.db import read_frame
from tests.sending import set_gate


def write_campaigns(folder: Path, *campaigns: dict) -> Path:
    """Campaign files of a test's own (`<id>.yaml`); returns the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    for campaign in campaigns:
        (folder / f"{campaign['id']}.yaml").write_text(yaml.safe_dump(campaign))
    return folder


def plan_days(engine: Engine, first: date, last: date, **kwargs) -> list:
    """Open the gate and plan every day from `first` to `last`, oldest first."""
    results = []
    day = first
    while day <= last:
        set_gate(engine, day)
        results.append(plan_campaigns(engine, day, **kwargs))
        day += timedelta(days=1)
    return results


def table(engine: Engine, t) -> pd.DataFrame:
    """A whole table as a frame."""
    with engine.connect() as conn:
        return read_frame(conn, select(t))


def seed_entity(engine: Engine, entity_name: str, rows: list[dict], *, ingested_on: date) -> None:
    """Rows of a contract entity as ingestion writes them: the latest version in stg_*, every version in hist_*."""
    from crm.core.contracts import ENTITIES
    from crm.core.db import write_frame
    from crm.ingest import record_versions
    from models.ingest import staging

    entity = ENTITIES[entity_name]
    frame = pd.DataFrame(rows)
    for column in entity.columns:
        if column.kind == "timestamp" and column.name in frame:
            frame[column.name] = pd.to_datetime(frame[column.name])
        if column.kind == "date" and column.name in frame:
            frame[column.name] = pd.to_datetime(frame[column.name])
    with engine.begin() as conn:
        write_frame(
            conn, staging[entity_name], frame.assign(ingested_on=pd.Timestamp(ingested_on)), on_conflict="update"
        )
        if entity.versioned:
            record_versions(conn, entity, frame, ingested_on)


def seed_customers(engine: Engine, ids, *, registered_at: str, birth_date: str | None = None, day: date) -> None:
    """Customers registered at one time, with consented e-mail, push and SMS contacts (+380 numbers)."""
    from tests.sending import address, seed_contacts

    seed_entity(
        engine,
        "customers",
        [
            {
                "customer_id": i,
                "registered_at": registered_at,
                "birth_date": birth_date,
                "signup_channel": "online",
                "is_technical": False,
                "updated_at": registered_at,
            }
            for i in ids
        ],
        ingested_on=day,
    )
    seed_contacts(
        engine,
        [(i, ch, address(i, ch), True, pd.Timestamp(registered_at)) for i in ids for ch in ("push", "email", "sms")],
        ingested_on=day,
    )
