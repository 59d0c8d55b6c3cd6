"""Exit codes with one meaning each, and one line naming what is wrong and what to check (issue 8).

These fail before any Prefect run starts (the CLI checks first), so they need no Prefect server.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli import app

ROOT = Path(__file__).resolve().parents[2]
DAY = "2026-01-05"


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """A valid embedded setup: an (empty) source database and a landing folder under CRM_HOME."""
    for name in ("CRM_WAREHOUSE_URL", "CRM_SOURCE_URL", "CRM_LANDING_URL", "CRM_REPORTS_URL", "CRM_CONFIG_DIR"):
        monkeypatch.delenv(name, raising=False)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("CRM_HOME", str(home))
    (home / "source.db").touch()
    (home / "landing").mkdir()
    return home


def invoke(*args: str):
    return CliRunner().invoke(app, list(args))


def one_error_line(result) -> str:
    # The in-process moto server logs its requests to the same stderr: not the CLI's output.
    lines = [line for line in result.output.strip().splitlines() if not line.startswith("127.0.0.1 - - [")]
    assert len(lines) == 1, result.output
    assert "Traceback" not in result.output
    return lines[0]


@pytest.mark.parametrize(
    ("variable", "value", "code", "message"),
    [
        (
            "CRM_WAREHOUSE_URL",
            "postgresql://crm:s3cret@no-such-host.invalid:5432/crm",
            4,
            "error: cannot reach the warehouse database at postgresql://crm:***@no-such-host.invalid:5432/crm "
            "(failed to resolve host 'no-such-host.invalid'",
        ),
        (
            "CRM_WAREHOUSE_URL",
            "postgresql://postgres@127.0.0.1:1/test",
            4,
            "error: cannot reach the warehouse database at postgresql://postgres@127.0.0.1:1/test",
        ),
        (
            "CRM_SOURCE_URL",
            "postgresql://postgres@127.0.0.1:5432/crm_no_such_database",
            4,
            'database "crm_no_such_database" does not exist',
        ),
        ("CRM_WAREHOUSE_URL", "postgres://crm:s3cret@db/crm", 3, "use postgresql://"),
        ("CRM_SOURCE_CHUNK_ROWS", "0", 3, "error: CRM_SOURCE_CHUNK_ROWS=0: Input should be greater than 0"),
        ("CRM_LANDING_URL", "{out}/typo", 3, "error: CRM_LANDING_URL: the folder {out}/typo does not exist"),
        ("CRM_SOURCE_URL", "sqlite:///{out}/typo.db", 3, "CRM_SOURCE_URL: the source database {out}/typo.db"),
        ("CRM_WAREHOUSE_URL", "sqlite:///{out}/typo/w.db", 3, "CRM_WAREHOUSE_URL: the folder {out}/typo does not"),
        ("CRM_CONFIG_DIR", "{out}/typo", 3, "error: CRM_CONFIG_DIR: the folder {out}/typo does not exist"),
    ],
)
def test_operator_and_infrastructure_errors_print_one_line_and_their_exit_code(
    home, monkeypatch, variable, value, code, message
):
    out = home.parent  # outside CRM_HOME: nothing may be created there
    monkeypatch.setenv(variable, value.format(out=out))
    result = invoke("run", "ingest", "--as-of", DAY)
    assert result.exit_code == code
    line = one_error_line(result)
    assert message.format(out=out) in line
    assert "s3cret" not in result.output
    assert not (out / "typo").exists() and not (out / "typo.db").exists()  # nothing created by a typo


def test_an_unreachable_s3_landing_zone_is_an_infrastructure_error(home, monkeypatch):
    monkeypatch.setenv("CRM_LANDING_URL", "s3://exports/crm")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    result = invoke("run", "ingest", "--as-of", DAY)
    assert result.exit_code == 4
    assert one_error_line(result).startswith("error: cannot reach the bucket s3://exports/crm (Could not connect")


def test_a_missing_bucket_is_an_infrastructure_error(home, monkeypatch, s3_bucket):
    monkeypatch.setenv("CRM_LANDING_URL", "s3://no-such-bucket-here/crm")
    result = invoke("run", "ingest", "--as-of", DAY)
    assert result.exit_code == 4
    assert "NoSuchBucket" in one_error_line(result)


def test_a_wrong_config_file_is_an_operator_error(home, monkeypatch):
    (home / "config").mkdir()
    (home / "config" / "reconcile.yaml").write_text("threshold: -1\n")
    monkeypatch.setenv("CRM_CONFIG_DIR", str(home / "config"))
    result = invoke("run", "reconcile", "--as-of", DAY)
    assert result.exit_code == 3
    line = one_error_line(result)
    assert f"{home / 'config' / 'reconcile.yaml'}: threshold: Input should be greater than or equal to 0" in line


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "ingest", "--as-of", "31/01/2026"], "error: --as-of '31/01/2026' is not a date like 2026-01-31"),
        (["backfill", "nightly", "--start", "2026-01-10", "--end", "2026-01-01"], "ends (2026-01-01) before it starts"),
        (["backfill", "nightly", "--start", "2026-01-10", "--end", "10.01.2026"], "--end '10.01.2026' is not a date"),
        (["report", "--as-of", DAY], "the warehouse has no tables yet; check CRM_WAREHOUSE_URL"),
        (
            ["landing", "retry", "app_events/x_2026-01-05.csv"],
            "the warehouse has no tables yet; check CRM_WAREHOUSE_URL",
        ),
    ],
)
def test_bad_arguments_exit_3_with_one_line(home, args, message):
    result = invoke(*args)
    assert result.exit_code == 3
    assert message in one_error_line(result)


def test_a_report_of_a_day_never_ingested_is_an_operator_error(home):
    assert invoke("db", "upgrade").exit_code == 0
    result = invoke("report", "--as-of", DAY)
    assert result.exit_code == 3
    assert one_error_line(result) == f"error: nothing was ingested for {DAY}; check --as-of"


def test_a_retry_of_a_file_never_rejected_is_an_operator_error(home):
    assert invoke("db", "upgrade").exit_code == 0
    result = invoke("landing", "retry", "file:app_events/x_2026-01-05.csv")
    assert result.exit_code == 3
    assert one_error_line(result).startswith(
        "error: no rejected or misplaced landing file 'app_events/x_2026-01-05.csv' on record"
    )


def test_an_unexpected_failure_is_a_bug_exit_1_with_its_traceback(home):
    # A warehouse table gone from under a migrated warehouse: nothing the CLI knows how to explain.
    from sqlalchemy import text

    from crm.core.settings import warehouse_engine

    assert invoke("db", "upgrade").exit_code == 0
    with warehouse_engine().begin() as conn:
        conn.execute(text("DROP TABLE landing_files"))
    result = invoke("report", "--as-of", DAY)
    assert result.exit_code == 1
    assert "Traceback" in result.output and "no such table: landing_files" in result.output
    last = result.output.strip().splitlines()[-1]
    assert last.startswith("error: unexpected OperationalError: ") and last.endswith("(a bug: please report it)")


def test_usage_errors_exit_3_not_2_which_means_a_finding(home):
    assert invoke("run", "ingest").exit_code == 3  # missing --as-of
    assert invoke("no-such-command").exit_code == 3


def test_a_source_without_the_back_ends_tables_is_refused(home):
    result = invoke("run", "ingest", "--as-of", DAY)
    assert result.exit_code == 3
    assert one_error_line(result).startswith("error: the source database has no table customers, customer_contacts")


def test_a_real_process_prints_one_line_and_the_traceback_only_with_debug(home):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CRM_WAREHOUSE_URL": "postgresql://crm@127.0.0.1:1/crm"}
    crm = [sys.executable, "-c", "from cli import app; app()"]
    quiet = subprocess.run(
        [*crm, "run", "nightly", "--as-of", DAY], env=env, capture_output=True, text=True, timeout=120
    )
    assert quiet.returncode == 4 and quiet.stdout == ""
    assert quiet.stderr.count("\n") == 1 and quiet.stderr.startswith("error: cannot reach the warehouse database")
    loud = subprocess.run(
        [*crm, "--debug", "run", "nightly", "--as-of", DAY], env=env, capture_output=True, text=True, timeout=120
    )
    assert loud.returncode == 4 and "Traceback" in loud.stderr and "Connection refused" in loud.stderr
