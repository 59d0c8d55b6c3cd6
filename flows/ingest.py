"""`ingest`: pull the source database by watermark and load the landing files of a business day."""

from __future__ import annotations

from datetime import date

from prefect import flow
from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.futures import wait
from prefect.states import Failed

from crm.core.contracts import LANDING_ENTITIES, SOURCE_ENTITIES
from crm.core.errors import Finding
from tasks.common import check_preconditions, flow_failure, migrate_warehouse, resolve_as_of, run_name
from tasks.ingest import (
    FilesRejected,
    build_entity_indexes,
    build_indexes,
    find_landing_files,
    load_landing_files_task,
    prepare_initial_load,
    publish_ingest_report,
    pull_source_table_task,
    refresh_statistics_task,
)


class IngestionFailed(Finding):
    """Landing files were rejected or misplaced; everything else loaded, and the report names them."""


@flow(name="ingest", flow_run_name=run_name("ingest"), description=__doc__)
def ingest(as_of: date | None = None, force: bool = False):
    """Ingest one business day: source tables in reference order, then landing files, then the report.

    Re-running a day changes nothing; a day's late files are picked up by the next run. Settings,
    connections and the day guard are checked first (`force` passes the guard, and is logged).
    A rejected or misplaced file is a finding: after loading everything else and publishing the
    report, the run ends `Failed` with `IngestionFailed` naming the files (the CLI exits 2).
    """
    as_of = resolve_as_of(as_of)
    checked = check_preconditions("ingest", as_of, force=force, return_state=True)
    if checked.is_failed():
        return flow_failure(checked)  # bad settings or an unreachable server: one line, no retries, no traceback
    migrate_warehouse(build_indexes=False)  # an unfinished initial load goes on without them
    set_aside = prepare_initial_load()  # an empty warehouse loads its history without secondary indexes
    # PostgreSQL: each loaded entity's indexes built and its tables measured (one at a time) while the load goes on.
    builds: list = []

    def build_indexes_of(entity_name: str) -> None:
        if set_aside:
            builds.append(build_entity_indexes.submit(entity_name))

    stages = len(SOURCE_ENTITIES) + len(LANDING_ENTITIES)
    progress = create_progress_artifact(progress=0.0, key="ingest-progress", description=f"Ingestion {as_of}")
    counts: list[dict] = []
    for done, entity in enumerate(SOURCE_ENTITIES, start=1):
        counts.append(pull_source_table_task(entity.name, as_of))
        build_indexes_of(entity.name)
        update_progress_artifact(progress, progress=100.0 * done / stages)
    found = find_landing_files(as_of, return_state=True).result()  # its state is `Misplaced` when it found some
    counts.extend(found["misplaced"])
    for done, entity in enumerate(LANDING_ENTITIES, start=len(SOURCE_ENTITIES) + 1):
        if entity.name in found["files"]:
            # A rejected file fails its task (red where the fault is); its rows still go in the report.
            loaded = load_landing_files_task(entity.name, as_of, return_state=True)
            rows = loaded.result(raise_on_failure=False)
            if isinstance(rows, FilesRejected):
                rows = rows.rows
            elif isinstance(rows, BaseException):
                raise rows  # the task itself broke (a bug, a server gone): the run fails with that error
            counts.extend(rows)
            build_indexes_of(entity.name)
        update_progress_artifact(progress, progress=100.0 * done / stages)
    wait(builds)  # a build that failed is left to `build_indexes`
    measured = [name for b in builds if b.state.is_completed() for name in b.result()["analyzed"]]
    build_indexes()  # after an initial load, or one killed half way: no-op otherwise
    # PostgreSQL plans the next steps on measured tables, not empty ones (those measured alongside are done).
    refresh_statistics_task(counts, measured)
    report = publish_ingest_report(as_of, counts)
    if report["failed_sources"]:
        message = (
            f"ingestion {as_of}: {len(report['failed_sources'])} landing file(s) rejected or misplaced, see the "
            f"ingest-summary artifact: {', '.join(s.removeprefix('file:') for s in report['failed_sources'])}"
        )
        # A finding, not a crash: a returned state ends the run without a traceback.
        return Failed(message=message[:2000], data=IngestionFailed(message))
    return report


if __name__ == "__main__":
    import sys

    ingest(date.fromisoformat(sys.argv[1]) if len(sys.argv) > 1 else None)
