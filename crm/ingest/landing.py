"""The landing zone where source systems drop export files (a folder or S3 prefix): naming and listing."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from crm.core.contracts import LANDING_ENTITIES, Entity
from crm.core.storage import ObjectStore

_FILE_NAME = re.compile(r"^(?P<stem>[a-z0-9_-]+)_(?P<day>\d{4}-\d{2}-\d{2})\.(?P<ext>csv|jsonl)(?P<gz>\.gz)?$")


@dataclass(frozen=True)
class LandingFile:
    """A file in the landing zone, named `<entity>/<stem>_<YYYY-MM-DD>.<csv|jsonl>[.gz]`."""

    key: str
    entity: Entity
    business_date: date
    size_bytes: int

    @property
    def compressed(self) -> bool:
        """True for gzip files."""
        return self.key.endswith(".gz")


def landing_file_key(entity: Entity, stem: str, day: date, *, compressed: bool = False) -> str:
    """The contract's key for a file: `<entity>/<stem>_<YYYY-MM-DD>.<format>[.gz]`."""
    return f"{entity.name}/{stem}_{day.isoformat()}.{entity.file_format}{'.gz' if compressed else ''}"


def list_landing_files(zone: ObjectStore, until: date) -> tuple[list[LandingFile], list[str]]:
    """Files of every landing entity dated on or before `until`, and keys that break the naming contract."""
    files, misnamed = [], []
    for entity in LANDING_ENTITIES:
        for key, size in zone.list_keys(f"{entity.name}/"):
            name = key.rsplit("/", 1)[-1]
            if name.endswith(".part"):
                continue  # still being written
            match = _FILE_NAME.match(name)
            if not match or match["ext"] != entity.file_format:
                misnamed.append(key)
                continue
            try:
                day = date.fromisoformat(match["day"])
            except ValueError:
                misnamed.append(key)
                continue
            if day <= until:
                files.append(LandingFile(key=key, entity=entity, business_date=day, size_bytes=size))
    return sorted(files, key=lambda f: (f.business_date, f.key)), misnamed
