"""Shared fixtures: SQLite and PostgreSQL databases, a local S3 server (moto), a Prefect test server."""

from __future__ import annotations

import os

# Before Prefect or Great Expectations are imported: no network here, and a slow machine.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("DO_NOT_TRACK", "1")

import socket
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass

import pytest
from sqlalchemy import create_engine, text

from crm.core.settings import make_engine

POSTGRES_ADMIN_URL = os.environ.get("CRM_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
BACKENDS = ["sqlite", "postgresql"]


def _postgres_database() -> Iterator[str]:
    name = f"crm_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
        # A throwaway database: commits need not wait for the disk (semantics unchanged, a crash loses it anyway).
        conn.execute(text(f'ALTER DATABASE "{name}" SET synchronous_commit = off'))
    url = POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        yield url
    finally:
        make_engine(url).dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@dataclass
class Backend:
    """The databases and landing zone one test runs against."""

    name: str
    warehouse_url: str
    source_url: str
    landing_url: str


@pytest.fixture(params=BACKENDS)
def backend(request, tmp_path, monkeypatch) -> Iterator[Backend]:
    """A fresh warehouse + source database on SQLite or PostgreSQL and a local landing folder, set in CRM_* env."""
    if request.param == "sqlite":
        yield from _with_env(
            monkeypatch,
            Backend(
                "sqlite",
                f"sqlite:///{tmp_path / 'warehouse.db'}",
                f"sqlite:///{tmp_path / 'source.db'}",
                str(tmp_path / "landing"),
            ),
        )
        return
    warehouse, source = _postgres_database(), _postgres_database()
    try:
        yield from _with_env(
            monkeypatch, Backend("postgresql", next(warehouse), next(source), str(tmp_path / "landing"))
        )
    finally:
        for gen in (warehouse, source):
            gen.close()


@pytest.fixture
def sqlite_backend(tmp_path, monkeypatch) -> Iterator[Backend]:
    """The embedded default only (for tests whose subject is not the database)."""
    yield from _with_env(
        monkeypatch,
        Backend(
            "sqlite",
            f"sqlite:///{tmp_path / 'warehouse.db'}",
            f"sqlite:///{tmp_path / 'source.db'}",
            str(tmp_path / "landing"),
        ),
    )


def _with_env(monkeypatch, backend: Backend) -> Iterator[Backend]:
    monkeypatch.setenv("CRM_HOME", str(os.path.dirname(backend.landing_url)))
    monkeypatch.setenv("CRM_WAREHOUSE_URL", backend.warehouse_url)
    monkeypatch.setenv("CRM_SOURCE_URL", backend.source_url)
    monkeypatch.setenv("CRM_LANDING_URL", backend.landing_url)
    yield backend
    for url in (backend.warehouse_url, backend.source_url):
        make_engine(url).dispose()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """A local S3-compatible server (moto in server mode) on a free loopback port."""
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3_bucket(s3_endpoint, monkeypatch) -> Callable[[str], str]:
    """Makes fresh buckets on the local S3 server (AWS_* env points boto3 at it); returns their names."""
    import boto3

    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")

    def make(prefix: str) -> str:
        bucket = f"{prefix}-{uuid.uuid4().hex[:8]}"
        boto3.client("s3").create_bucket(Bucket=bucket)
        return bucket

    return make


@pytest.fixture
def s3_landing(s3_bucket, monkeypatch) -> str:
    """A fresh landing bucket, set as CRM_LANDING_URL; returns the s3:// URL."""
    url = f"s3://{s3_bucket('landing')}/exports"
    monkeypatch.setenv("CRM_LANDING_URL", url)
    return url


@pytest.fixture(scope="session")
def prefect_server() -> Iterator[str]:
    """One Prefect test server for the whole session (it takes 20-40 s to start here), on PostgreSQL.

    Prefect's own `prefect_test_harness` keeps the server's database in SQLite, whose single writer
    made a busy server answer "database is locked" in CI; a retried state proposal then came back
    rejected (a flow's result lost) or the flow crashed. This is that harness with the server's
    database in a fresh PostgreSQL database, as ENGINEERING.md advises for any busy Prefect server.
    """
    import prefect.context
    import prefect.settings
    from prefect.server.api.server import SubprocessASGIServer
    from prefect.server.database.dependencies import temporary_database_interface

    database = _postgres_database()
    url = next(database).replace("postgresql+psycopg://", "postgresql+asyncpg://")
    try:
        with ExitStack() as stack:
            stack.enter_context(temporary_database_interface())
            stack.enter_context(
                prefect.settings.temporary_settings(
                    updates={prefect.settings.PREFECT_SERVER_DATABASE_CONNECTION_URL: url}
                )
            )
            server = SubprocessASGIServer(port=_free_port())
            prior = SubprocessASGIServer._instances.get(None)
            SubprocessASGIServer._instances[None] = server  # flows find this server, not a second one
            server.start(timeout=120)
            try:
                stack.enter_context(
                    prefect.settings.temporary_settings(
                        updates={
                            prefect.settings.PREFECT_API_URL: server.api_url,
                            # A flow run's heartbeat thread sleeps in whole seconds and is joined at the run's end:
                            # ~0.8 s per flow or subflow run, minutes over the suite. Crash detection is not tested
                            # here (and cannot be turned off by environment variable, so subprocesses keep it).
                            prefect.settings.PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None,
                            # Runs' logs are not shipped to the server (its CPU and the client's): the tests that
                            # read them back turn it on (tests/flows/test_ui.py).
                            prefect.settings.PREFECT_LOGGING_TO_API_ENABLED: False,
                        }
                    )
                )
                stack.enter_context(
                    prefect.context._temporary_global_settings_context(prefect.context.get_settings_context())
                )
                yield server.api_url
                _drain_prefect_workers()
            finally:
                server.stop()
                if prior is not None:
                    SubprocessASGIServer._instances[None] = prior
                else:
                    SubprocessASGIServer._instances.pop(None, None)
    finally:
        database.close()


def _drain_prefect_workers() -> None:
    """Send the last logs and events before the server stops (as Prefect's harness does)."""
    import inspect

    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker
    from prefect.utilities.asyncutils import run_coro_as_sync

    async def drain():
        for drain in (APILogWorker.instance().drain, EventsWorker.drain_all):
            try:
                result = drain()
                if inspect.isawaitable(result):
                    await result
            except RuntimeError:  # a worker that never started
                pass

    run_coro_as_sync(drain())


def pytest_collection_modifyitems(config, items) -> None:
    """Scenario files (those with a `slow` test) run first: with `--dist loadfile` each file goes to one worker,
    and a long file started last ran alone for minutes while the other workers had nothing left to do."""
    scenario_files = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in scenario_files)  # stable: each file's own order is kept
