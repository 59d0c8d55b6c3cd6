"""Pre-flight checks of a job, shared by the CLI (before Prefect starts) and each flow's first task.

No Prefect import here: a wrong setting or an unreachable server costs the operator one line
and a few seconds, not a temporary Prefect server and a traceback.
"""

from __future__ import annotations

from datetime import date

from crm.core.errors import OperatorError
from crm.core.preflight import preflight
from crm.core.settings import source_engine, warehouse_engine
from crm.ingest import check_business_day, load_ingest_config

JOB_NEEDS = {
    # job: (reads the source, reads the landing zone and passes the day guard, its config files)
    "ingest": (True, True, ("ingest",)),
    "nightly": (True, True, ("ingest", "quality", "reconcile", "segments", "churn", "loyalty", "campaigns", "sending")),
    "quality": (False, False, ("quality",)),
    "reconcile": (True, False, ("reconcile",)),
    "campaigns": (False, False, ("campaigns", "sending")),
    "segments": (False, False, ("segments",)),
    "loyalty": (False, False, ("loyalty",)),
    "train-churn": (False, False, ("churn",)),
    "score-churn": (False, False, ("churn",)),
}


def _load_loyalty_config():
    from crm.loyalty import load_loyalty_config

    return load_loyalty_config()


def check_job(job: str, as_of: date, *, force: bool = False) -> str | None:
    """Everything a job needs before it starts: settings, config files, connections, and the day guard.

    Raises `OperatorError` (exit 3) or `InfrastructureError` (exit 4) with one line; returns the
    day guard's reason when `force` passed it (None otherwise). The CLI calls it before starting
    Prefect; the flows call it as their first task (deployments have no CLI in front).
    """
    if job not in JOB_NEEDS:
        raise OperatorError(f"unknown job {job!r}; known: {', '.join(JOB_NEEDS)}")
    source, ingesting, configs = JOB_NEEDS[job]
    settings = preflight(source=source, landing=ingesting)
    from crm.campaigns import load_campaigns, load_campaigns_config
    from crm.quality import load_quality_config  # after the connections: they fail faster
    from crm.reconcile import load_reconciliation_config
    from crm.segments import load_segments_config
    from crm.sending import load_sending_config

    def load_churn() -> None:
        from crm.churn import load_churn_config, registry_url
        from crm.core.storage import open_store

        url = registry_url(load_churn_config(), settings)
        if url.startswith("s3://"):  # a local registry folder is created on first use
            open_store(url).check_reachable("churn.yaml registry_url")

    loaders = {
        "ingest": load_ingest_config,
        "quality": load_quality_config,
        "reconcile": load_reconciliation_config,
        "campaigns": lambda: (load_campaigns_config(), load_campaigns()),
        "sending": load_sending_config,
        "segments": load_segments_config,
        "loyalty": _load_loyalty_config,
        "churn": load_churn,
    }
    for name in configs:
        loaders[name]()
    if not ingesting:
        return None
    return check_business_day(
        source_engine(settings),
        warehouse_engine(settings),
        as_of,
        max_gap_days=load_ingest_config().max_gap_days,
        force=force,
    )
