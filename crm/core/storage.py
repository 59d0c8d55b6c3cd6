"""Object storage for landing files, reports and artifacts: a local folder or an S3 prefix.

S3 goes through boto3 with its standard configuration (`AWS_*` variables, and
`AWS_ENDPOINT_URL` for S3-compatible servers such as MinIO or moto).
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple, Protocol

from crm.core.errors import InfrastructureError, OperatorError, infrastructure_failure, reason


class StoredFile(NamedTuple):
    """A file as a listing shows it, without reading it."""

    key: str
    size: int
    version: str  # changes whenever the bytes may have: a local file's mtime (ns), an S3 object's ETag


class ObjectStore(Protocol):
    """What ingestion, reports and the simulator need from a folder of files."""

    url: str

    def list_keys(self, prefix: str) -> list[tuple[str, int]]:
        """Keys (relative to the root) and sizes under `prefix`, sorted."""

    def list_files(self, prefix: str) -> list[StoredFile]:
        """Keys, sizes and versions under `prefix`, sorted by key."""

    def read_bytes(self, key: str) -> bytes:
        """The whole file."""

    def write_bytes(self, key: str, data: bytes) -> None:
        """Create or replace a file."""

    def check_reachable(self, variable: str) -> None:
        """Raise `OperatorError` (folder missing) or `InfrastructureError` (bucket unreachable); cheap."""


class LocalStore:
    """Files in a local folder."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser().resolve()
        self.url = str(self.root)

    def list_keys(self, prefix: str) -> list[tuple[str, int]]:
        return [(f.key, f.size) for f in self.list_files(prefix)]

    def list_files(self, prefix: str) -> list[StoredFile]:
        base = self.root / prefix
        if not base.exists():
            return []
        out = []
        for path in base.rglob("*"):
            if path.is_file():
                stat = path.stat()
                out.append(
                    StoredFile(path.relative_to(self.root).as_posix(), stat.st_size, f"mtime:{stat.st_mtime_ns}")
                )
        return sorted(out)

    def read_bytes(self, key: str) -> bytes:
        return (self.root / key).read_bytes()

    def check_reachable(self, variable: str) -> None:
        if not self.root.is_dir():
            raise OperatorError(
                f"{variable}: the folder {self.root} does not exist; check the path (it is not created)"
            )

    def write_bytes(self, key: str, data: bytes) -> None:
        path = self.root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".part")
        tmp.write_bytes(data)
        tmp.replace(path)  # readers never see half a file


class S3Store:
    """Files under an S3 prefix, through boto3."""

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
        return [(f.key, f.size) for f in self.list_files(prefix)]

    def list_files(self, prefix: str) -> list[StoredFile]:
        out = []
        strip = len(self.prefix) + 1 if self.prefix else 0
        for page in self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self._full(prefix)
        ):
            out.extend(
                StoredFile(obj["Key"][strip:], obj["Size"], "etag:" + obj.get("ETag", "").strip('"'))
                for obj in page.get("Contents", [])
            )
        return sorted(out)

    def read_bytes(self, key: str) -> bytes:
        return self.client.get_object(Bucket=self.bucket, Key=self._full(key))["Body"].read()

    def check_reachable(self, variable: str) -> None:
        try:
            self.client.list_objects_v2(Bucket=self.bucket, Prefix=self._full(""), MaxKeys=1)
        except Exception as exc:
            if infrastructure_failure(exc) is None:
                raise
            raise InfrastructureError(
                f"cannot reach the bucket {self.url} ({reason(exc)}); "
                f"check {variable}, AWS_ENDPOINT_URL and the AWS credentials"
            ) from exc

    def write_bytes(self, key: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self._full(key), Body=data)


def open_store(url: str) -> ObjectStore:
    """The store for a folder path, `file://` URL or `s3://bucket/prefix`."""
    if url.startswith("s3://"):
        return S3Store(url)
    return LocalStore(url.removeprefix("file://"))
