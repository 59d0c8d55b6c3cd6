"""The Docker work-pool path of infra/README.md, short of starting a container (no container runtime
here): `infra/prefect-setup.sh docker` creates the pool from `infra/docker/work-pool.json` on a real
Prefect server, `prefect deploy --pool crm-docker` puts the nightly deployment on it, and the Docker
worker's own job configuration, built for a flow run of it as the worker builds it, runs the CRM
image with the settings resolved from Secret blocks and Variables (no secret in the pool or the repo).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
TEMPLATE = ROOT / "infra" / "docker" / "work-pool.json"

pytestmark = [pytest.mark.postgres]


def _cli(args: list[str], api: str, **extra: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env |= {"PREFECT_API_URL": api, "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}", "PYTHONPATH": str(ROOT), **extra}
    return subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def test_the_docker_template_keeps_every_field_of_the_docker_worker():
    from prefect_docker.worker import DockerWorker

    ours = json.loads(TEMPLATE.read_text())
    theirs = DockerWorker.get_default_base_job_template()
    # A newer prefect-docker that adds or renames a field shows here, not on a production worker.
    assert ours["job_configuration"] == theirs["job_configuration"]
    assert set(ours["variables"]["properties"]) == set(theirs["variables"]["properties"])
    env = ours["variables"]["properties"]["env"]["default"]
    # Secrets by reference only: the URLs with passwords live in Secret blocks.
    assert env["CRM_WAREHOUSE_URL"] == "{{ prefect.blocks.secret.crm-warehouse-url }}"
    assert env["CRM_SOURCE_URL"] == "{{ prefect.blocks.secret.crm-source-url }}"


def test_a_nightly_run_on_the_docker_pool_gets_the_crm_image_and_resolved_settings(prefect_server):
    from prefect.blocks.system import Secret
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import VariableCreate
    from prefect_docker.worker import DockerWorkerJobConfiguration

    suffix = uuid.uuid4().hex[:6]
    warehouse = f"postgresql+psycopg://crm:pw-{suffix}@db:5432/crm"
    Secret(value=warehouse).save("crm-warehouse-url", overwrite=True)
    Secret(value="postgresql+psycopg://reader:pw@replica:5432/backend").save("crm-source-url", overwrite=True)

    async def variables():
        async with get_client() as client:
            for name, value in {
                "crm_landing_url": "s3://landing/exports",
                "crm_reports_url": "s3://reports/crm",
            }.items():
                if await client.read_variable_by_name(name) is None:
                    await client.create_variable(VariableCreate(name=name, value=value))

    asyncio.run(variables())

    setup = _cli(["bash", "infra/prefect-setup.sh", "docker"], prefect_server)
    assert setup.returncode == 0, setup.stderr
    assert "crm-docker" in setup.stdout
    deploy = _cli(
        [str(BIN / "prefect"), "--no-prompt", "deploy", "--name", "nightly", "--pool", "crm-docker"],
        prefect_server,
        CRM_REPO_DIR="/opt/crm",  # where the image holds the repo (infra/docker/Dockerfile)
    )
    assert deploy.returncode == 0, deploy.stdout + deploy.stderr

    async def configuration():
        async with get_client() as client:
            deployment = await client.read_deployment_by_name("nightly/nightly")
            pool = await client.read_work_pool("crm-docker")
            run = await client.create_flow_run_from_deployment(deployment.id, parameters={"as_of": "2026-03-01"})
            flow = await client.read_flow(deployment.flow_id)
            values = {**(deployment.job_variables or {}), **(run.job_variables or {})}
            # What DockerWorker does for each flow run it picks up (BaseWorker._get_configuration).
            config = await DockerWorkerJobConfiguration.from_template_and_values(
                pool.base_job_template, values, client=client
            )
            config.prepare_for_flow_run(run, deployment, flow)
            await client.delete_flow_run(run.id)
            return deployment, pool, run, config

    deployment, pool, run, config = asyncio.run(configuration())
    assert pool.type == "docker"
    assert deployment.work_pool_name == "crm-docker"
    assert deployment.pull_steps == [{"prefect.deployments.steps.set_working_directory": {"directory": "/opt/crm"}}]
    assert config.image == "crm:latest"
    assert config.volumes == ["crm-data:/data"]
    assert config.auto_remove is True
    assert config.command == "prefect flow-run execute"
    assert config.env["PREFECT__FLOW_RUN_ID"] == str(run.id)
    # Settings resolved at run time from the server's Secret blocks and Variables, not stored in the pool.
    assert config.env["CRM_WAREHOUSE_URL"] == warehouse
    assert config.env["CRM_SOURCE_URL"].startswith("postgresql+psycopg://reader:")
    assert config.env["CRM_LANDING_URL"] == "s3://landing/exports"
    assert config.env["CRM_HOME"] == "/data"
    assert warehouse not in json.dumps(pool.base_job_template)


def test_the_setup_script_refuses_an_unknown_pool_type():
    done = _cli(["bash", "infra/prefect-setup.sh", "kubernetes"], "http://127.0.0.1:9/api")
    assert done.returncode == 3
    assert "usage" in done.stderr
