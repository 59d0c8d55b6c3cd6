"""The landing zone where source systems drop export files: a local folder or an S3 prefix.

S3 goes through boto3 with its standard configuration (`AWS_*` variables, and
`AWS_ENDPOINT_URL` for S3-compatible servers such as MinIO or moto).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Protocol

from crm.contracts import LANDING_ENTITIES, Entity

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


class LandingZone(Protocol):
    """What ingestion and the simulator need from a landing zone."""

    url: str

    def list_keys(self, prefix: str) -> list[tuple[str, int]]:
        """Keys (relative to the root) and sizes under `prefix`, sorted."""

    def read_bytes(self, key: str) -> bytes:
        """The whole file."""

    def write_bytes(self, key: str, data: bytes) -> None:
        """Create or replace a file."""


class LocalLandingZone:
    """A landing zone in a local folder."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser().resolve()
        self.url = str(self.root)

    def list_keys(self, prefix: str) -> list[tuple[str, int]]:
        base = self.root / prefix
        if not base.exists():
            return []
        return sorted(
            (p.relative_to(self.root).as_posix(), p.stat().st_size) for p in base.rglob("*") if p.is_file()
        )

    def read_bytes(self, key: str) -> bytes:
        return (self.root / key).read_bytes()

    def write_bytes(self, key: str, data: bytes) -> None:
        path = self.root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".part")
        tmp.write_bytes(data)
        tmp.replace(path)  # readers never see half a file


class S3LandingZone:
    """A landing zone under an S3 prefix, through boto3."""

    def __init__(self, url: str, client=None) -> None:
        import boto3

        bucket, _, prefix = url.removeprefix("s3://").partition("/")
        self.url = url
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.client = client or boto3.client("s3")

    def _full(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def list_keys(self, prefix: str) -> list[tuple[str, int]]:
        out = []
        strip = len(self.prefix) + 1 if self.prefix else 0
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self._full(prefix)):
            out.extend((obj["Key"][strip:], obj["Size"]) for obj in page.get("Contents", []))
        return sorted(out)

    def read_bytes(self, key: str) -> bytes:
        return self.client.get_object(Bucket=self.bucket, Key=self._full(key))["Body"].read()

    def write_bytes(self, key: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self._full(key), Body=data)


def open_landing_zone(url: str) -> LandingZone:
    """The landing zone for a folder path, `file://` URL or `s3://bucket/prefix`."""
    if url.startswith("s3://"):
        return S3LandingZone(url)
    return LocalLandingZone(url.removeprefix("file://"))


def landing_file_key(entity: Entity, stem: str, day: date, *, compressed: bool = False) -> str:
    """The contract's key for a file: `<entity>/<stem>_<YYYY-MM-DD>.<format>[.gz]`."""
    return f"{entity.name}/{stem}_{day.isoformat()}.{entity.file_format}{'.gz' if compressed else ''}"


def list_landing_files(zone: LandingZone, until: date) -> tuple[list[LandingFile], list[str]]:
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
