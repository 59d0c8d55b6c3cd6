"""A tiny warehouse holding one clean business day of every entity, to validate suites against."""

from __future__ import annotations

from datetime import date, datetime

import pandas as pd
import pytest
from sqlalchemy import text

from crm.core.contracts import ENTITIES
from crm.core.db import write_frame
from crm.core.migrations import upgrade_warehouse
from crm.core.settings import make_engine
from models.ingest import history
from models.warehouse import metadata

AS_OF = date(2026, 1, 12)


def at(hour: int, day: date = AS_OF) -> datetime:
    return datetime(day.year, day.month, day.day, hour)


def good_day() -> dict[str, list[dict]]:
    """Rows of a clean day per entity (all ingested on AS_OF)."""
    earlier = date(2026, 1, 5)
    return {
        "customers": [
            {
                "customer_id": 1,
                "registered_at": at(8, earlier),
                "birth_date": date(1990, 5, 1),
                "signup_channel": "online",
                "is_technical": False,
                "updated_at": at(8),
            },
            {
                "customer_id": 2,
                "registered_at": at(9, earlier),
                "birth_date": None,
                "signup_channel": "offline",
                "is_technical": False,
                "updated_at": at(9),
            },
            {
                "customer_id": 3,
                "registered_at": at(10),
                "birth_date": date(1985, 2, 3),
                "signup_channel": "online",
                "is_technical": False,
                "updated_at": at(10),
            },
        ],
        "customer_contacts": [
            {
                "customer_id": 1,
                "channel": "email",
                "address": "anna@example.com",
                "is_consented": True,
                "updated_at": at(8),
            },
            {"customer_id": 2, "channel": "sms", "address": "+380501234567", "is_consented": True, "updated_at": at(9)},
        ],
        "loan_applications": [
            {
                "application_id": 10,
                "customer_id": 1,
                "created_at": at(8),
                "requested_amount_minor": 50_000,
                "status": "issued",
                "updated_at": at(11),
            },
            {
                "application_id": 11,
                "customer_id": 2,
                "created_at": at(9),
                "requested_amount_minor": 20_000,
                "status": "approved",
                "updated_at": at(10),
            },
        ],
        "application_status_changes": [
            {"change_id": 100, "application_id": 10, "status": "submitted", "changed_at": at(8)},
            {"change_id": 101, "application_id": 10, "status": "approved", "changed_at": at(9)},
            {"change_id": 102, "application_id": 10, "status": "issued", "changed_at": at(11)},
            {"change_id": 103, "application_id": 11, "status": "approved", "changed_at": at(10)},
        ],
        "loans": [
            {
                "loan_id": 1000,
                "application_id": 10,
                "customer_id": 1,
                "issued_at": at(11),
                "principal_minor": 50_000,
                "daily_rate_bp": 80,
                "term_days": 30,
                "due_on": date(2026, 2, 11),
                "status": "active",
                "closed_at": None,
                "updated_at": at(11),
            },
        ],
        "payments": [
            {
                "payment_id": 5000,
                "loan_id": 1000,
                "customer_id": 1,
                "paid_at": at(15),
                "payment_type": "principal",
                "amount_minor": 10_000,
                "updated_at": at(15),
            },
            {
                "payment_id": 5001,
                "loan_id": 1000,
                "customer_id": 1,
                "paid_at": at(15),
                "payment_type": "interest",
                "amount_minor": 500,
                "updated_at": at(15),
            },
        ],
        "orders": [
            {
                "order_id": 1,
                "customer_id": 3,
                "ordered_at": at(12),
                "amount_minor": 120_000,
                "product_group": "gold",
                "sales_channel": "store",
                "status": "completed",
                "updated_at": at(12),
            },
        ],
        "app_events": [
            {"event_id": "e1", "customer_id": 1, "event_type": "login", "platform": "android", "occurred_at": at(8)},
            {
                "event_id": "e2",
                "customer_id": 3,
                "event_type": "registration",
                "platform": "web",
                "occurred_at": at(10),
            },
        ],
        "message_events": [
            {
                "event_id": "m1",
                "message_id": "msg1",
                "customer_id": 1,
                "channel": "push",
                "event_type": "delivered",
                "occurred_at": at(9),
                "campaign_id": None,
                "provider": "push-gateway",
            },
        ],
    }


def batch_rows(day: dict[str, list[dict]], as_of: date = AS_OF) -> list[dict]:
    """ingest_batches rows matching a day's data: one source per entity, nothing quarantined."""
    out = []
    for name, rows in day.items():
        source = f"db:{name}" if ENTITIES[name].origin == "source_db" else f"file:{name}/{name}_{as_of}.csv"
        out.append(
            {
                "as_of": as_of,
                "source": source,
                "entity": name,
                "rows_read": len(rows),
                "rows_loaded": len(rows),
                "rows_quarantined": 0,
                "rows_duplicate": 0,
            }
        )
    return out


class TinyWarehouse:
    """A migrated SQLite warehouse with helpers to write rows."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        upgrade_warehouse(self.engine)

    def write(self, table_name: str, rows: list[dict], as_of: date = AS_OF) -> None:
        table = metadata.tables[table_name]
        frame = pd.DataFrame(rows)
        if table_name.startswith("stg_"):
            frame["ingested_on"] = pd.Timestamp(as_of)
        if table_name == "quarantined_rows" and "business_date" not in frame:
            frame["business_date"] = frame["as_of"]
        with self.engine.begin() as conn:
            # quarantined_rows has a surrogate key only: plain inserts there.
            write_frame(conn, table, frame, on_conflict="error" if table_name == "quarantined_rows" else "update")
            entity = ENTITIES.get(table_name.removeprefix("stg_"))
            if table_name.startswith("stg_") and entity is not None and entity.versioned:
                # The day's versions, as ingestion records them (overwritten here: tests plant bad values).
                versions = frame.assign(valid_from=frame[entity.updated_column], valid_to=None)
                write_frame(conn, history[entity.name], versions, on_conflict="update")

    def write_day(self, day: dict[str, list[dict]], as_of: date = AS_OF) -> None:
        for name, rows in day.items():
            if rows:
                self.write(f"stg_{name}", rows, as_of)
        batches = batch_rows(day, as_of)
        self.write("ingest_batches", batches)
        self.write(
            "ingest_coverage",
            [{"business_date": b["as_of"], **{k: v for k, v in b.items() if k != "as_of"}} for b in batches],
        )

    def execute(self, sql: str, **params) -> None:
        with self.engine.begin() as conn:
            conn.execute(text(sql), params)


@pytest.fixture
def warehouse(tmp_path) -> TinyWarehouse:
    """An empty, migrated SQLite warehouse."""
    store = TinyWarehouse(f"sqlite:///{tmp_path / 'warehouse.db'}")
    yield store
    store.engine.dispose()


@pytest.fixture
def good_warehouse(warehouse) -> TinyWarehouse:
    """The tiny warehouse holding one clean day."""
    warehouse.write_day(good_day())
    return warehouse
