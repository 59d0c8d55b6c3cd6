"""Sending tasks: apply delivery reports, decide whether the day may send, dispatch per provider, report."""

from __future__ import annotations

from datetime import date

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.blocks.system import Secret
from prefect.cache_policies import NO_CACHE
from prefect.client.orchestration import get_client
from prefect.concurrency.asyncio import ConcurrencySlotAcquisitionError
from prefect.concurrency.sync import concurrency
from prefect.runtime import flow_run

from crm.core.settings import warehouse_engine
from crm.sending import (
    DispatchDecision,
    MissingCredentialError,
    SendingConfig,
    apply_delivery_reports,
    build_provider,
    check_dispatch,
    delivery_reports_markdown,
    dispatch_markdown,
    dispatch_messages,
    load_sending_config,
    read_funnel,
    read_skip_reasons,
    refusal_markdown,
    resolve_credentials,
)


def provider_limit_name(provider: str) -> str:
    """The Prefect global concurrency limit that keeps two runs from dispatching to `provider` at once."""
    return f"provider-{provider}"


def ensure_provider_limits(config: SendingConfig | None = None) -> list[str]:
    """Create (or keep) a one-slot global concurrency limit per provider in use; return their names."""
    config = config or load_sending_config()
    names = [provider_limit_name(p) for p in config.used_providers()]
    with get_client(sync_client=True) as client:
        for name in names:
            client.upsert_global_concurrency_limit_by_name(name, limit=1)
    return names


def _load_secret_block(name: str) -> str:
    """The block's value; "" when no such block exists (the caller names the block in a one-line error)."""
    try:
        return Secret.load(name).get()
    except ValueError:  # Prefect: "Unable to find block document named ..."
        return ""


def _worth_retrying(task, task_run, state) -> bool:
    """A missing concurrency limit or credential will not appear by waiting: fail at once, naming it."""
    error = state.result(raise_on_failure=False)
    return not isinstance(error, (ConcurrencySlotAcquisitionError, MissingCredentialError))


@task(
    name="apply-delivery-reports",
    task_run_name="apply delivery reports {as_of}",
    retries=1,
    retry_delay_seconds=10,
    cache_policy=NO_CACHE,
)
def apply_delivery_reports_task(as_of: date, since: date | None = None) -> dict[str, int]:
    """Move outbox states forward from the providers' reports ingested for `as_of` (idempotent, set-based)."""
    counts = apply_delivery_reports(warehouse_engine(), as_of, since=since)
    get_run_logger().info("delivery reports applied for %s: %s", as_of, counts)
    create_markdown_artifact(
        key="delivery-reports",
        markdown=delivery_reports_markdown(as_of, counts),
        description=f"Delivery reports {as_of}",
    )
    return counts


@task(
    name="check-dispatch",
    task_run_name="check send gate {as_of}",
    retries=1,
    retry_delay_seconds=10,
    cache_policy=NO_CACHE,
)
def check_dispatch_task(as_of: date, force_closed_gate: bool, send_past_days: bool) -> DispatchDecision:
    """Whether the day may send: the send gate (unless forced) and not a past day (unless asked)."""
    with warehouse_engine().connect() as conn:
        decision = check_dispatch(conn, as_of, force_closed_gate=force_closed_gate, send_past_days=send_past_days)
    logger = get_run_logger()
    if not decision.allowed:
        logger.warning("dispatch %s refused (%s): %s", as_of, decision.refusal, "; ".join(decision.reasons))
    elif decision.forced_closed_gate:
        logger.warning("send gate CLOSED for %s, sending anyway (forced): %s", as_of, "; ".join(decision.reasons))
    return decision


@task(
    name="dispatch-provider",
    task_run_name="dispatch {provider_name} {as_of}",
    # A retry claims again what the failed try left in `sending`, under the same message ids.
    retries=2,
    retry_delay_seconds=[30, 120],
    retry_condition_fn=_worth_retrying,
    cache_policy=NO_CACHE,
    tags=["sending"],
)
def dispatch_provider(provider_name: str, as_of: date, decision: DispatchDecision) -> dict:
    """Send the day's messages of every channel this provider serves, holding the provider's concurrency slot."""
    logger = get_run_logger()
    config = load_sending_config()
    spec = config.providers[provider_name]
    channels = config.channels_of(provider_name)
    provider = build_provider(
        provider_name, spec, secrets=resolve_credentials(provider_name, spec, load_secret_block=_load_secret_block)
    )
    try:
        # strict: a missing limit is an error, not a silent no-op; the lease frees the slot of a killed run.
        with concurrency(
            provider_limit_name(provider_name), occupy=1, strict=True, lease_duration=config.lease_seconds
        ):
            counts = dispatch_messages(
                warehouse_engine(),
                provider,
                as_of,
                channels,
                run_label=str(flow_run.id or "local"),
                chunk_rows=config.chunk_rows,
                forced_closed_gate=decision.forced_closed_gate,
                send_past_days=decision.past_day,
                on_chunk=lambda c: logger.info(
                    "%s: chunk %d, %d sent, %d failed, %d re-sent so far",
                    provider_name,
                    c.chunks,
                    c.sent,
                    c.failed,
                    c.resent,
                ),
            )
    finally:
        provider.close()
    logger.info(
        "%s (%s): claimed %d, sent %d, failed %d (rejected %d, unavailable %d), re-sent after a kill %d, "
        "retried requests %d, skipped %s, waiting for quiet hours %d",
        provider_name,
        ", ".join(channels),
        counts.claimed,
        counts.sent,
        counts.failed,
        counts.rejected,
        counts.unavailable,
        counts.resent,
        counts.retried_requests,
        counts.skipped,
        counts.waiting,
    )
    return counts.as_dict()


@task(name="publish-dispatch-report", task_run_name="publish dispatch report {as_of}", cache_policy=NO_CACHE)
def publish_dispatch_report(as_of: date, decision: DispatchDecision, runs: list[dict]) -> None:
    """The dispatch summary artifact: per provider, per skip reason and per campaign step (no address shown)."""
    if not decision.allowed:
        create_markdown_artifact(
            key="dispatch-summary", markdown=refusal_markdown(decision), description=f"Dispatch {as_of}"
        )
        return
    with warehouse_engine().connect() as conn:
        funnel = read_funnel(conn, as_of, as_of)
        skips = read_skip_reasons(conn, as_of, as_of)
    create_markdown_artifact(
        key="dispatch-summary",
        markdown=dispatch_markdown(decision, runs, funnel, skips),
        description=f"Dispatch {as_of}",
    )


@task(name="ensure-provider-limits", task_run_name="ensure provider concurrency limits")
def ensure_missing_provider_limits() -> list[str]:
    """Create the one-slot limit of each provider in use that has none yet (an existing limit is kept as set).

    `nightly` runs it before dispatch, so a night on a server that `infra/prefect-setup.sh` has not
    prepared (the embedded default, a fresh test server) still sends guarded instead of failing.
    """
    from prefect.exceptions import ObjectNotFound

    created = []
    with get_client(sync_client=True) as client:
        for name in (provider_limit_name(p) for p in load_sending_config().used_providers()):
            try:
                client.read_global_concurrency_limit_by_name(name)
            except ObjectNotFound:
                client.upsert_global_concurrency_limit_by_name(name, limit=1)
                created.append(name)
    if created:
        get_run_logger().warning("created concurrency limits %s (1 slot each)", ", ".join(created))
    return created
