"""A parent pulled ahead (loaded with the child that references it, its latest change lying after the day) whose
latest version is refused is quarantined once, on the day of that change, not also on the child's night."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import insert, select

from crm.core.contracts import APPLICATION_STATUS_CHANGES, CUSTOMERS, LOAN_APPLICATIONS, ApplicationStatus
from crm.core.migrations import upgrade_warehouse
from crm.core.settings import make_engine
from crm.ingest import pull_source_table
from models import source as src
from models.ingest import quarantined_rows, staging


def test_a_refused_parent_pulled_ahead_is_quarantined_once_on_its_own_day(backend):
    source, warehouse = make_engine(backend.source_url), make_engine(backend.warehouse_url)
    src.metadata.create_all(source)
    upgrade_warehouse(warehouse)
    with source.begin() as conn:
        conn.execute(
            insert(src.tables["customers"]),
            [
                {
                    "customer_id": 1,
                    "registered_at": datetime(2026, 1, 1, 9),
                    "signup_channel": "online",
                    "is_technical": False,
                    "updated_at": datetime(2026, 1, 1, 9),
                }
            ],
        )
        # Applied on day 1; its latest version (day 3) lost its status: refused by the contract.
        conn.execute(
            insert(src.tables["loan_applications"]),
            [
                {
                    "application_id": 9,
                    "customer_id": 1,
                    "created_at": datetime(2026, 1, 1, 10),
                    "requested_amount_minor": 500_00,
                    "status": None,
                    "updated_at": datetime(2026, 1, 3, 8),
                }
            ],
        )
        # A status change of day 2 references it: day 2's night pulls the application ahead.
        conn.execute(
            insert(src.tables["application_status_changes"]),
            [
                {
                    "change_id": 22,
                    "application_id": 9,
                    "status": ApplicationStatus.SUBMITTED.value,
                    "changed_at": datetime(2026, 1, 2, 11),
                }
            ],
        )

    def night(day: date) -> None:
        for entity in (CUSTOMERS, LOAN_APPLICATIONS, APPLICATION_STATUS_CHANGES):
            pull_source_table(source, warehouse, entity, day)

    def quarantined() -> list[tuple]:
        q = quarantined_rows.c
        with warehouse.connect() as conn:
            stmt = select(q.as_of, q.business_date, q.rule, q.record_key).where(q.source == "db:loan_applications")
            return [tuple(r) for r in conn.execute(stmt.order_by(q.as_of))]

    night(date(2026, 1, 2))
    assert quarantined() == [], "the refused parent was quarantined on the child's night"
    with warehouse.connect() as conn:
        assert conn.execute(select(staging["loan_applications"].c.application_id)).all() == []

    night(date(2026, 1, 3))
    assert quarantined() == [(date(2026, 1, 3), date(2026, 1, 3), "required", "[9]")]
