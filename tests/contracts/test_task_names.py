"""Issue 9: every task run has a readable name in the Prefect UI (no generated `name-3f2` suffixes)."""

from __future__ import annotations

import importlib
import pkgutil

from prefect import Task

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
