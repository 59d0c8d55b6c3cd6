"""Tasks and helpers every flow shares: the business date of a run, pre-flight checks, the warehouse schema."""

from __future__ import annotations

from datetime import date

from prefect import get_run_logger, task
from prefect.runtime import flow_run
from prefect.states import Failed, State

from crm.core.dates import business_day_before
from crm.core.errors import Finding, InfrastructureError, OperatorError, crm_error, one_line
from crm.core.migrations import current_revision, upgrade_warehouse
from crm.core.settings import get_settings, warehouse_engine
from crm.ingest import build_missing_indexes
from tasks.checks import check_job


def resolve_as_of(as_of: date | None) -> date:
    """`as_of`, or for a scheduled run the day before its scheduled start (never the wall clock)."""
    if as_of is not None:
        return as_of
    if flow_run.id is None:  # outside a flow run Prefect would answer with the wall clock
        raise OperatorError("as_of is required outside a scheduled flow run; pass --as-of YYYY-MM-DD")
    return business_day_before(flow_run.scheduled_start_time, get_settings().business_timezone)


def run_name(job: str):
    """A `flow_run_name` callable: `<job> <business day>`, also for a scheduled run without `as_of`
    (the day before its scheduled start), so the run list shows which day each run works on."""

    def name() -> str:
        as_of = flow_run.parameters.get("as_of")
        if as_of is None and flow_run.scheduled_start_time is not None:
            try:
                as_of = business_day_before(flow_run.scheduled_start_time, get_settings().business_timezone)
            except Exception:  # a bad setting fails the run's first task with one line, not its name
                as_of = "scheduled"
        return f"{job} {as_of}"

    return name


def retry_transient(task, task_run, state) -> bool:
    """Prefect `retry_condition_fn`: retry IO failures, never bad input, unreachable servers found up front, or findings."""
    exc = state.data if isinstance(state.data, BaseException) else None
    return exc is None or not isinstance(crm_error(exc), OperatorError | InfrastructureError | Finding)


@task(name="check-preconditions", task_run_name="check settings and connections for {job} {as_of}")
def check_preconditions(job: str, as_of: date, force: bool = False) -> None:
    """Fail fast, without retries, when settings are wrong or a database or the landing zone does not answer.

    Ingesting jobs also pass the day guard: a day after the source's data or far past the last
    ingested day is refused unless `force`, which is logged.
    """
    forced = check_job(job, as_of, force=force)
    if forced:
        get_run_logger().warning("forced past the day guard for %s: %s", as_of, forced)


def flow_failure(state: State) -> State:
    """A failed task's state as its flow's final state: the error's one line as message, the error as data.

    Returned (not raised) by a flow, it ends the run without a traceback; called in-process the
    flow raises the original error, which the CLI maps to its exit code.
    """
    exc = state.result(raise_on_failure=False)
    return Failed(message=one_line(exc, 2000), data=exc)


@task(
    name="migrate-warehouse",
    task_run_name="migrate warehouse schema",
    retries=1,
    retry_delay_seconds=5,
    retry_condition_fn=retry_transient,
)
def migrate_warehouse(build_indexes: bool = True) -> str | None:
    """Bring the warehouse schema to the newest Alembic revision; return that revision.

    Also builds the secondary indexes an initial load killed half way left missing (reads name
    them in SQLite hints), except for `ingest`, which finishes such a load first and builds them then.
    """
    engine = warehouse_engine()
    upgrade_warehouse(engine)
    if build_indexes:
        built = build_missing_indexes(engine)
        if built:
            get_run_logger().warning("built %d warehouse indexes an unfinished initial load left missing", len(built))
    return current_revision(engine)
