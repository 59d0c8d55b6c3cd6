"""The scheduled deployments of `prefect.yaml` get runs from a real Prefect scheduler.

This guards the dependency pins: under SQLAlchemy 2.1 the scheduler fails every loop while
flows still run, so only a test that schedules runs notices (ENGINEERING.md).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import yaml
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId
from prefect.client.schemas.schedules import CronSchedule
from prefect.flows import load_flow_from_entrypoint

ROOT = Path(__file__).resolve().parents[2]
SCHEDULED = [d for d in yaml.safe_load((ROOT / "prefect.yaml").read_text())["deployments"] if d.get("schedules")]


@pytest.mark.usefixtures("prefect_server")
@pytest.mark.parametrize("deployment", SCHEDULED, ids=[d["name"] for d in SCHEDULED])
def test_the_scheduler_creates_runs_for_each_scheduled_deployment(deployment):
    from prefect.server.services.scheduler import schedule_deployments

    flow = load_flow_from_entrypoint(str(ROOT / deployment["entrypoint"]))
    schedules = [CronSchedule(cron=s["cron"], timezone=s["timezone"]) for s in deployment["schedules"]]
    deployment_id = flow.to_deployment(name=f"contract-{deployment['name']}", schedules=schedules).apply()

    asyncio.run(schedule_deployments(perpetual=None))

    async def scheduled_runs():
        async with get_client() as client:
            return await client.read_flow_runs(
                deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id]))
            )

    runs = asyncio.run(scheduled_runs())
    assert runs, "the scheduler created no run"
    minute, hour = deployment["schedules"][0]["cron"].split()[:2]
    assert all(r.state_name == "Scheduled" for r in runs)
    assert all(r.expected_start_time.hour in _values(hour, 24) for r in runs)
    assert all(r.expected_start_time.minute in _values(minute, 60) for r in runs)


def _values(field: str, size: int) -> set[int]:
    """The values a cron field (`*`, `5`, `9-23`, `0,30`) allows."""
    if field == "*":
        return set(range(size))
    out: set[int] = set()
    for part in field.split(","):
        low, _, high = part.partition("-")
        out.update(range(int(low), int(high or low) + 1))
    return out
