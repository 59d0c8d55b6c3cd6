"""The landing zone where source systems drop export files (a folder or S3 prefix): naming and listing.

Every file under the landing root is accounted for: a file that follows the contract is due
on its business day, anything else (a file at the root, in an unknown or nested folder, or
misnamed) is *misplaced*, with the reason, and is never loaded silently nor ignored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from crm.core.contracts import LANDING_ENTITIES, Entity
from crm.core.storage import ObjectStore

_FILE_NAME = re.compile(r"^(?P<stem>[a-z0-9_-]+)_(?P<day>\d{4}-\d{2}-\d{2})\.(?P<ext>csv|jsonl)(?P<gz>\.gz)?$")
_ANY_DAY = re.compile(r"(\d{4}-\d{2}-\d{2})")
# `file:<key>` must fit the 512-character `source` columns; longer keys are misplaced, never truncated.
MAX_KEY_CHARS = 500
_ENTITIES = {e.name: e for e in LANDING_ENTITIES}


@dataclass(frozen=True)
class LandingFile:
    """A file in the landing zone, named `<entity>/<stem>_<YYYY-MM-DD>.<csv|jsonl>[.gz]`."""

    key: str
    entity: Entity
    business_date: date
    size_bytes: int
    version: str = ""  # the store's version of the bytes (mtime, ETag): unchanged, a loaded file is not read again

    @property
    def compressed(self) -> bool:
        """True for gzip files."""
        return self.key.endswith(".gz")


@dataclass(frozen=True)
class MisplacedFile:
    """A file under the landing root that breaks the naming contract, and why."""

    key: str
    size_bytes: int
    reason: str
    day: date | None = None  # the date its name carries, if any: the business day it belongs to

    @property
    def folder(self) -> str:
        """Its first folder (`(root)` for a file at the landing root)."""
        return self.key.split("/", 1)[0] if "/" in self.key else "(root)"


def landing_file_key(entity: Entity, stem: str, day: date, *, compressed: bool = False) -> str:
    """The contract's key for a file: `<entity>/<stem>_<YYYY-MM-DD>.<format>[.gz]`."""
    return f"{entity.name}/{stem}_{day.isoformat()}.{entity.file_format}{'.gz' if compressed else ''}"


def _named_day(name: str) -> date | None:
    """A valid date written in a file name, if any (misplaced files are judged on their day too)."""
    for text in _ANY_DAY.findall(name):
        try:
            return date.fromisoformat(text)
        except ValueError:
            continue
    return None


def classify_landing_key(key: str, size: int, until: date, version: str = "") -> LandingFile | MisplacedFile | None:
    """A due landing file, a misplaced one, or None (still being written, or dated after `until`)."""
    name = key.rsplit("/", 1)[-1]
    if name.endswith(".part") or key.endswith("/"):
        return None  # a file being written, or an S3 "folder" marker
    day = _named_day(name)
    if day is not None and day > until:
        return None  # not yet due, wherever it lies
    known = ", ".join(_ENTITIES)
    parts = key.split("/")
    if len(key) > MAX_KEY_CHARS:
        return MisplacedFile(key, size, f"the path is longer than {MAX_KEY_CHARS} characters", day)
    if len(parts) == 1:
        return MisplacedFile(key, size, f"a file at the landing root: files go in their entity's folder ({known})", day)
    entity = _ENTITIES.get(parts[0])
    if entity is None:
        return MisplacedFile(key, size, f"unknown entity folder {parts[0][:64]!r} (known: {known})", day)
    if len(parts) > 2:
        return MisplacedFile(key, size, f"in a nested folder: files go directly in {entity.name}/", day)
    pattern = f"{entity.name}/<stem>_<YYYY-MM-DD>.{entity.file_format}[.gz]"
    match = _FILE_NAME.match(name)
    if not match:
        return MisplacedFile(key, size, f"the name breaks the landing-file contract {pattern}", day)
    if match["ext"] != entity.file_format:
        return MisplacedFile(key, size, f"{entity.name} files are .{entity.file_format}, not .{match['ext']}", day)
    try:
        business_date = date.fromisoformat(match["day"])
    except ValueError:
        return MisplacedFile(key, size, f"{match['day']} is not a date ({pattern})", day)
    return LandingFile(key=key, entity=entity, business_date=business_date, size_bytes=size, version=version)


def list_landing_files(zone: ObjectStore, until: date) -> tuple[list[LandingFile], list[MisplacedFile]]:
    """Files of every landing entity dated on or before `until`, and files that break the naming contract."""
    files, misplaced = [], []
    for key, size, version in zone.list_files(""):
        found = classify_landing_key(key, size, until, version)
        if isinstance(found, LandingFile):
            files.append(found)
        elif isinstance(found, MisplacedFile):
            misplaced.append(found)
    return sorted(files, key=lambda f: (f.business_date, f.key)), sorted(misplaced, key=lambda m: m.key)
