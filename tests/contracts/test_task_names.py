"""Issue 9: every task and flow run has a readable name in the Prefect UI (no generated `name-3f2` suffixes or slugs)."""

from __future__ import annotations

import importlib
import pkgutil

from prefect import Flow, Task

import flows
import tasks


def test_every_task_has_an_explicit_readable_run_name():
    found = []
    for module in pkgutil.iter_modules(tasks.__path__):
        for value in vars(importlib.import_module(f"tasks.{module.name}")).values():
            if isinstance(value, Task):
                found.append(value)
                assert value.task_run_name, f"{value.name} has no task_run_name"
                assert " " in str(value.task_run_name), f"{value.name}: {value.task_run_name!r} is not words"
    assert len(found) >= 15


def test_every_flow_names_its_runs_by_the_day_or_range_it_works_on():
    found = {}
    for module in pkgutil.iter_modules(flows.__path__):
        for value in vars(importlib.import_module(f"flows.{module.name}")).values():
            if isinstance(value, Flow):
                found[value.name] = value
                assert value.flow_run_name, f"flow {value.name} has no flow_run_name (its runs get generated names)"
    assert {"nightly", "ingest", "quality", "reconcile", "segments", "score-churn", "loyalty", "campaigns"} <= set(
        found
    ), sorted(found)
    assert {"dispatch", "delivery-reports", "backfill", "train-churn", "score-churn-chunks"} <= set(found)
