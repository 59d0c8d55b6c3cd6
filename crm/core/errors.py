"""What can go wrong, by who must act: the operator (3), the infrastructure (4), or nobody, a finding (2).

Anything else is a bug (1). The CLI maps these to exit codes in one place (`cli/errors.py`);
tasks do not retry an `OperatorError` or an `InfrastructureError` found before any work started.
Third-party failures that mean "a server or bucket could not be reached" are recognised by type
anywhere in an exception's chain (`infrastructure_failure`), also when Prefect wraps them.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, InterfaceError, OperationalError


class CrmError(Exception):
    """An expected failure with a one-line message that says what to check."""

    exit_code = 1


class Finding(CrmError):
    """The run did its work and found something a person must look at (gate closed, file rejected)."""

    exit_code = 2


class OperatorError(CrmError, ValueError):
    """Bad input from the operator: arguments, settings or configuration files (a `ValueError` too)."""

    exit_code = 3


class InfrastructureError(CrmError):
    """A database, bucket or server could not be reached."""

    exit_code = 4


# SQLite's OperationalError also reports bugs ("no such table"): only these mean the file is unusable.
_SQLITE_UNREACHABLE = ("unable to open database file", "disk i/o error", "database is locked", "readonly database")


def exception_chain(exc: BaseException) -> Iterator[BaseException]:
    """`exc`, its causes and contexts, and the members of exception groups, each once."""
    seen: set[int] = set()
    stack = [exc]
    while stack:
        current = stack.pop()
        if not isinstance(current, BaseException) or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        stack.extend(getattr(current, "exceptions", ()) or ())
        stack.extend((current.__context__, current.__cause__))


def _is_unreachable(exc: BaseException) -> bool:
    if isinstance(exc, InfrastructureError | ConnectionError | TimeoutError):
        return True
    if isinstance(exc, OperationalError | InterfaceError):
        orig = exc.orig
        if isinstance(orig, sqlite3.Error):
            return any(text in str(orig).lower() for text in _SQLITE_UNREACHABLE)
        return True  # psycopg: connection refused, unknown host, database missing, connection lost
    try:
        import psycopg
    except ImportError:  # pragma: no cover - psycopg is a dependency
        psycopg = None
    if psycopg is not None and type(exc) in (psycopg.OperationalError, psycopg.InterfaceError):
        return True
    try:
        from botocore.exceptions import (
            ClientError,
            EndpointConnectionError,
            NoCredentialsError,
            PartialCredentialsError,
        )
    except ImportError:  # pragma: no cover - boto3 is a dependency
        return False
    return isinstance(exc, EndpointConnectionError | NoCredentialsError | PartialCredentialsError | ClientError)


def infrastructure_failure(exc: BaseException) -> BaseException | None:
    """The exception in `exc`'s chain that says a server or bucket was unreachable, if any."""
    for link in exception_chain(exc):
        if isinstance(link, CrmError) and not isinstance(link, InfrastructureError):
            return None  # an operator error or a finding explains itself, whatever it wraps
        if _is_unreachable(link):
            return link
    return None


def crm_error(exc: BaseException) -> CrmError | None:
    """The first `CrmError` in `exc`'s chain (Prefect may wrap it), if any."""
    return next((link for link in exception_chain(exc) if isinstance(link, CrmError)), None)


def one_line(text: object, limit: int = 300) -> str:
    """`text` on one line (drivers write several), cut to `limit` characters."""
    line = " ".join(part.strip() for part in str(text).splitlines() if part.strip())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def reason(exc: BaseException) -> str:
    """What a driver or client said, on one line and without the SQL or the background link."""
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).split("(Background on this error", 1)[0]
    return one_line(text)


def safe_url(url: str) -> str:
    """A database URL fit to print: its password replaced by `***`."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparsable URL>"
