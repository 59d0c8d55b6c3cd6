"""The night's own tasks: publish the send gate and the night summary with links to the subflows' runs and key
artifacts."""

from __future__ import annotations

from datetime import date

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId
from prefect.settings import get_current_settings

from crm.core.gate import SendGate, gate_headline, read_send_gate, send_gate_markdown
from crm.core.night import NightStep, StepOutcome, StepStatus, night_summary_markdown
from crm.core.settings import warehouse_engine

# The artifacts a data engineer opens first, per job (in this order).
KEY_ARTIFACTS = {
    "ingest": ("ingest-summary", "ingest-counts"),
    "quality": ("quality-summary", "quality-ingestion", "integration-health"),
    "reconcile": ("reconciliation-summary", "reconciliation-figures"),
}

# The artifact to open first for each step of the night (the night-summary links it next to the run).
STEP_ARTIFACTS = {
    "ingest": ("ingest-summary",),
    "quality": ("quality-summary",),
    "reconcile": ("reconciliation-summary",),
    "delivery-reports": ("delivery-reports",),
    "segments": ("segments-summary",),
    "churn": ("churn-scoring",),
    "loyalty": ("loyalty-report",),
    "campaigns": ("campaigns-plan",),
    "dispatch": ("dispatch-summary",),
}


def ui_url() -> str | None:
    """The Prefect UI's base URL (`PREFECT_UI_URL`), if one is set."""
    url = get_current_settings().ui_url
    return str(url).rstrip("/") if url else None


def run_link(run_id: str, label: str | None = None, base: str | None = None) -> str:
    """A markdown link to a flow run in the Prefect UI, or its id when no UI URL is set."""
    base = base if base is not None else ui_url()
    return f"[{label or run_id}]({base}/runs/flow-run/{run_id})" if base else f"`{run_id}`"


def artifact_links(run_id: str, keys: tuple[str, ...], base: str | None) -> list[str]:
    """Links to a run's artifacts of `keys` (their keys only, without a UI URL)."""
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run_id]))
        )
    ids = {a.key: a.id for a in found if a.key}
    out = []
    for key in keys:
        if key in ids:
            out.append(f"[{key}]({base}/artifacts/artifact/{ids[key]})" if base else f"`{key}`")
    return out


@task(name="publish-send-gate", task_run_name="publish send gate {as_of}")
def publish_send_gate(as_of: date, jobs: dict[str, dict]) -> SendGate:
    """Read the day's send gate and publish the `send-gate` artifact: OPEN or CLOSED, why, and links.

    `jobs`: per job, its run's `state` name and `run_id` (plain values: Prefect would resolve states).
    """
    with warehouse_engine().connect() as conn:
        gate = read_send_gate(conn, as_of)
    base = ui_url()
    runs = []
    for job, done in jobs.items():
        run_id = done["run_id"]
        try:
            artifacts = artifact_links(run_id, KEY_ARTIFACTS.get(job, ()), base) if run_id else []
        except Exception as exc:  # links are a convenience: the gate matters more
            get_run_logger().warning("could not list the artifacts of %s run %s: %s", job, run_id, exc)
            artifacts = []
        runs.append(
            {
                "job": job,
                "state": done["state"],
                "run": run_link(run_id, f"{job} {as_of}", base),
                "artifacts": artifacts,
            }
        )
    create_markdown_artifact(
        key="send-gate", markdown=send_gate_markdown(gate, runs), description=gate_headline(gate)[:500]
    )
    return gate


@task(name="read-send-gate", task_run_name="read send gate {as_of}")
def read_gate(as_of: date) -> SendGate:
    """The day's send gate from the verdicts stored by earlier runs (when the checks are not run tonight)."""
    with warehouse_engine().connect() as conn:
        return read_send_gate(conn, as_of)


@task(name="publish-night-summary", task_run_name="publish night summary {as_of}")
def publish_night_summary(as_of: date, headline: str, outcomes: list[dict]) -> None:
    """The `night-summary` artifact: the headline, then every step's state, time, figures or reason, and run link."""
    base = ui_url()
    links = {}
    for o in outcomes:
        if not o.get("run_id"):
            continue
        try:
            artifacts = artifact_links(o["run_id"], STEP_ARTIFACTS.get(o["step"], ()), base)
        except Exception as exc:  # links are a convenience: the summary matters more
            get_run_logger().warning("could not list the artifacts of %s run %s: %s", o["step"], o["run_id"], exc)
            artifacts = []
        links[o["step"]] = " ".join([run_link(o["run_id"], o["step"], base), *artifacts])
    steps = [
        StepOutcome(
            NightStep(o["step"]),
            StepStatus(o["status"]),
            o["state"],
            o["message"],
            o["seconds"],
            o["run_id"],
            o["figures"],
        )
        for o in outcomes
    ]
    create_markdown_artifact(
        key="night-summary",
        markdown=night_summary_markdown(as_of, headline, steps, links),
        description=headline[:500],
    )


@task(name="check-churn-champion", task_run_name="check churn champion model")
def churn_champion_missing() -> str | None:
    """Why the night cannot score churn (no champion yet: a company before its first training), or None."""
    from crm.churn import load_churn_config, open_registry
    from crm.core.settings import get_settings

    state = open_registry(load_churn_config(), get_settings()).champion_state()
    return None if state.get("champion") else "no champion model yet (crm run train-churn)"
