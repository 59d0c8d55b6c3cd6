"""Exit codes and the one line an error prints: the single place where exceptions become exit codes.

0 ok, 2 a finding (gate closed, figures diverged, landing file rejected), 3 bad input from the
operator (arguments, settings, configuration), 4 infrastructure unreachable (database, S3),
1 a bug. Operator and infrastructure errors print one line to stderr that names what is wrong
and what to check; `--debug` adds the traceback (Prefect's logs have it too).
"""

from __future__ import annotations

import sys
import traceback
from enum import IntEnum

from crm.core.errors import (
    CrmError,
    Finding,
    InfrastructureError,
    OperatorError,
    crm_error,
    infrastructure_failure,
    one_line,
    reason,
)


class ExitCode(IntEnum):
    """What the `crm` command's exit status means."""

    OK = 0
    BUG = 1
    FINDING = 2
    OPERATOR = 3
    INFRASTRUCTURE = 4


def classify(exc: BaseException) -> tuple[ExitCode, str]:
    """The exit code for `exc` and the one line to print."""
    known = crm_error(exc)
    if isinstance(known, Finding):
        return ExitCode.FINDING, one_line(known, 2000)
    if isinstance(known, OperatorError):
        return ExitCode.OPERATOR, "error: " + one_line(known, 2000)
    if isinstance(known, InfrastructureError):
        return ExitCode.INFRASTRUCTURE, "error: " + one_line(known, 2000)
    unreachable = infrastructure_failure(exc)
    if unreachable is not None:
        return ExitCode.INFRASTRUCTURE, (
            f"error: a server stopped answering ({type(unreachable).__name__}: {reason(unreachable)}); "
            "check CRM_WAREHOUSE_URL, CRM_SOURCE_URL, CRM_LANDING_URL and that the servers are up"
        )
    if isinstance(known, CrmError):
        return ExitCode.BUG, "error: " + one_line(known, 2000)
    return ExitCode.BUG, f"error: unexpected {type(exc).__name__}: {one_line(exc)} (a bug: please report it)"


def report_error(exc: BaseException, *, debug: bool) -> ExitCode:
    """Print `exc` the way its kind deserves and return the exit code (bugs always show their traceback)."""
    code, line = classify(exc)
    if debug or code == ExitCode.BUG:
        traceback.print_exception(exc, file=sys.stderr)
    print(line, file=sys.stderr)
    return code
