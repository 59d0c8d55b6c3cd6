"""`prefect.yaml` and the CLI: entrypoints import, parameters bind, schedules parse."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from prefect.flows import load_flow_from_entrypoint
from typer.testing import CliRunner

from cli import app

ROOT = Path(__file__).resolve().parents[2]
DEPLOYMENTS = yaml.safe_load((ROOT / "prefect.yaml").read_text())["deployments"]


@pytest.mark.parametrize("deployment", DEPLOYMENTS, ids=[d["name"] for d in DEPLOYMENTS])
def test_every_deployment_entrypoint_imports_and_its_parameters_bind(deployment):
    flow = load_flow_from_entrypoint(str(ROOT / deployment["entrypoint"]))
    properties = flow.parameters.properties
    params = dict(deployment.get("parameters") or {})
    if "as_of" in properties:
        bound = flow.validate_parameters(params | {"as_of": "2026-01-05"})
        assert str(bound["as_of"]) == "2026-01-05"
    else:  # a range job: backfill
        bound = flow.validate_parameters(params | {"start": "2026-01-01", "end": "2026-01-03"})
        assert (str(bound["start"]), str(bound["end"])) == ("2026-01-01", "2026-01-03")


def test_every_schedule_is_a_cron_in_the_business_timezone():
    from prefect.client.schemas.schedules import CronSchedule

    from crm.core.settings import Settings

    scheduled = [d for d in DEPLOYMENTS if d.get("schedules")]
    assert scheduled
    business_timezone = Settings().business_timezone
    for deployment in scheduled:
        for schedule in deployment["schedules"]:
            CronSchedule(cron=schedule["cron"], timezone=schedule["timezone"])
            assert schedule["timezone"] == business_timezone, deployment["name"]


def test_the_flows_require_a_business_date_outside_a_scheduled_run():
    from tasks.common import resolve_as_of

    with pytest.raises(ValueError, match="as_of is required"):
        resolve_as_of(None)


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["db"],
        ["run"],
        ["simulate", "--help"],
        ["run", "ingest", "--help"],
        ["run", "loyalty", "--help"],
        ["loyalty", "what-if", "--help"],
        ["backfill", "--help"],
        ["demo", "--help"],
    ],
)
def test_the_cli_explains_itself(command):
    result = CliRunner().invoke(app, command + ([] if "--help" in command else ["--help"]))
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


def test_the_cli_rejects_a_malformed_business_date():
    result = CliRunner().invoke(app, ["run", "ingest", "--as-of", "31/01/2026"])
    assert result.exit_code != 0
    assert "not a date like" in result.output


def test_the_landing_file_contract_in_docs_is_generated_from_the_code():
    from crm.ingest import landing_contract_markdown

    committed = (ROOT / "docs" / "landing-files.md").read_text()
    assert committed == landing_contract_markdown(), "run: crm docs landing-contract > docs/landing-files.md"
