"""Errors by who must act: settings and config files fail with one line naming the variable or field,
and unreachable servers are recognised by type anywhere in an exception's chain."""

from __future__ import annotations

import sqlite3

import psycopg
import pytest
from botocore.exceptions import EndpointConnectionError, NoCredentialsError
from sqlalchemy.exc import OperationalError

from cli.errors import ExitCode, classify
from crm.core.config import ConfigError, load_config
from crm.core.errors import Finding, InfrastructureError, OperatorError, infrastructure_failure, safe_url
from crm.core.settings import SettingsError, get_settings, source_engine, warehouse_engine
from crm.ingest import IngestConfig
from crm.reconcile import ReconciliationConfig


def _wrapped(inner: BaseException, outer: type[BaseException] = RuntimeError) -> BaseException:
    try:
        try:
            raise inner
        except BaseException as exc:
            raise outer("while doing something") from exc
    except BaseException as exc:
        return exc


def _psycopg_operational() -> OperationalError:
    return OperationalError("SELECT 1", {}, psycopg.OperationalError('could not translate host name "db-host"'))


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (Finding("gate closed"), ExitCode.FINDING),
        (OperatorError("bad"), ExitCode.OPERATOR),
        (ConfigError("config/x.yaml: bad"), ExitCode.OPERATOR),
        (InfrastructureError("down"), ExitCode.INFRASTRUCTURE),
        (_psycopg_operational(), ExitCode.INFRASTRUCTURE),
        (_wrapped(_psycopg_operational()), ExitCode.INFRASTRUCTURE),  # wrapped, as Prefect or a task may
        (_wrapped(ConnectionRefusedError(111, "Connection refused")), ExitCode.INFRASTRUCTURE),
        (EndpointConnectionError(endpoint_url="http://127.0.0.1:1"), ExitCode.INFRASTRUCTURE),
        (NoCredentialsError(), ExitCode.INFRASTRUCTURE),
        (OperationalError("x", {}, sqlite3.OperationalError("unable to open database file")), ExitCode.INFRASTRUCTURE),
        (OperationalError("x", {}, sqlite3.OperationalError("no such table: stg_x")), ExitCode.BUG),
        (_wrapped(OperatorError("bad input"), RuntimeError), ExitCode.OPERATOR),
        (KeyError("x"), ExitCode.BUG),
    ],
)
def test_every_failure_maps_to_one_exit_code(exc, code):
    assert classify(exc)[0] == code


def test_operator_and_infrastructure_messages_are_one_line():
    multi = OperationalError("SELECT 1", {}, psycopg.OperationalError("connection failed\n\tIs the server running?"))
    code, line = classify(multi)
    assert code == ExitCode.INFRASTRUCTURE and "\n" not in line
    assert "connection failed Is the server running?" in line
    assert infrastructure_failure(_wrapped(multi)) is multi


def test_urls_are_printed_without_their_password():
    assert safe_url("postgresql://crm:s3cret@db-host:5432/crm") == "postgresql://crm:***@db-host:5432/crm"


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("CRM_WAREHOUSE_URL", "postgres://crm:s3cret@db/crm", "use postgresql://"),
        ("CRM_SOURCE_URL", "mysql://x@db/crm", "'mysql' is not supported"),
        ("CRM_SOURCE_URL", "not a url", "not a database URL"),
        ("CRM_SOURCE_CHUNK_ROWS", "0", "greater than 0"),
        ("CRM_SOURCE_CHUNK_ROWS", "many", "valid integer"),
        ("CRM_BUSINESS_TIMEZONE", "Mars/Olympus", "not a time zone"),
    ],
)
def test_a_wrong_setting_names_its_variable_on_one_line(monkeypatch, variable, value, message):
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as raised:
        get_settings()
    text = str(raised.value)
    assert text.startswith(f"{variable}=") and message in text and "\n" not in text
    assert "s3cret" not in text


def test_a_missing_sqlite_source_is_refused_and_not_created(tmp_path, monkeypatch):
    missing = tmp_path / "typo" / "source.db"
    monkeypatch.setenv("CRM_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CRM_SOURCE_URL", f"sqlite:///{missing}")
    with pytest.raises(SettingsError, match=r"CRM_SOURCE_URL: the source database .* does not exist"):
        source_engine()
    assert not missing.parent.exists()
    source_engine(create=True)  # `crm simulate` may create it
    assert missing.parent.is_dir()


def test_a_sqlite_warehouse_in_a_missing_folder_is_refused_except_under_the_home(tmp_path, monkeypatch):
    monkeypatch.setenv("CRM_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CRM_WAREHOUSE_URL", f"sqlite:///{tmp_path / 'typo' / 'warehouse.db'}")
    with pytest.raises(SettingsError, match=r"CRM_WAREHOUSE_URL: the folder .*typo does not exist"):
        warehouse_engine()
    assert not (tmp_path / "typo").exists()
    monkeypatch.delenv("CRM_WAREHOUSE_URL")
    warehouse_engine()  # the embedded default is created under CRM_HOME (`make demo`)
    assert (tmp_path / "home").is_dir()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("threshold: -1\n", "threshold: Input should be greater than or equal to 0 (got -1)"),
        ("threshold: [\n", "not valid YAML at line"),
        ("thresold: 0.1\n", "thresold: Extra inputs are not permitted"),
        ("- 1\n", "(top level): Input should be a valid dictionary"),
    ],
)
def test_a_wrong_config_file_names_the_file_and_field_on_one_line(tmp_path, monkeypatch, text, message):
    monkeypatch.setenv("CRM_CONFIG_DIR", str(tmp_path))
    (tmp_path / "reconcile.yaml").write_text(text)
    with pytest.raises(ConfigError) as raised:
        load_config("reconcile", ReconciliationConfig)
    assert isinstance(raised.value, OperatorError)
    assert str(raised.value).startswith(f"{tmp_path / 'reconcile.yaml'}: ") and message in str(raised.value)
    assert "\n" not in str(raised.value)


def test_a_missing_config_folder_is_refused_not_read_as_defaults(tmp_path, monkeypatch):
    monkeypatch.setenv("CRM_CONFIG_DIR", str(tmp_path / "typo"))
    with pytest.raises(ConfigError, match=r"CRM_CONFIG_DIR: the folder .*typo does not exist"):
        load_config("ingest", IngestConfig)


def test_the_committed_ingest_config_is_the_default():
    assert load_config("ingest", IngestConfig) == IngestConfig()


@pytest.mark.parametrize(
    ("exc", "retried"),
    [
        (_psycopg_operational(), True),  # a connection lost mid-run may come back
        (InfrastructureError("cannot reach the warehouse"), False),  # found before any work: retrying only waits
        (OperatorError("bad setting"), False),
        (_wrapped(ConfigError("config/x.yaml: bad")), False),
        (Finding("file rejected"), False),
        (KeyError("x"), True),
    ],
)
def test_tasks_retry_transient_failures_only(exc, retried):
    from prefect.states import Failed

    from tasks.common import retry_transient

    assert retry_transient(None, None, Failed(data=exc)) is retried
