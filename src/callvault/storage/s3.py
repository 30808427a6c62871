"""The blob store on S3 or an S3-compatible server (SeaweedFS, MinIO, Ceph RGW).

S3 already gives the atomicity the port promises: a PUT becomes visible whole
or not at all. Objects above ``multipart_threshold`` go up as a multipart
upload, which S3 also publishes atomically on completion.

Every botocore exception is translated here. Messages name the bucket and key,
never the credentials, and :meth:`S3BlobStore.describe` is safe for logs.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, NoReturn
from urllib.parse import urlsplit, urlunsplit

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from callvault.errors import ConfigError, InvalidInput, NotFound, StorageError
from callvault.storage.blobstore import validate_key

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef

MiB = 1024 * 1024
DEFAULT_MULTIPART_THRESHOLD = 64 * MiB
DEFAULT_MULTIPART_CHUNK = 16 * MiB
_MIN_PART = 5 * MiB  # S3's lower bound for every part but the last

_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_MISSING_OBJECT_CODES = frozenset({"NoSuchKey", "404", "NotFound"})
_MISSING_BUCKET_CODES = frozenset({"NoSuchBucket", "404", "NotFound"})


def _strip_userinfo(url: str) -> str:
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


class S3BlobStore:
    """Objects under ``prefix`` in one bucket; the bucket is created if missing."""

    def __init__(
        self,
        bucket: str,
        endpoint_url: str | None = None,
        region: str | None = None,
        access_key: str | None = None,
        secret_key: str | None = None,
        prefix: str = "",
        *,
        multipart_threshold: int = DEFAULT_MULTIPART_THRESHOLD,
        multipart_chunk_size: int = DEFAULT_MULTIPART_CHUNK,
        create_bucket: bool = True,
        max_attempts: int = 3,
    ) -> None:
        if not _BUCKET.match(bucket) or ".." in bucket:
            raise ConfigError(f"S3 bucket name {bucket!r} is not valid (3-63 of a-z, 0-9, '.', '-')")
        prefix = prefix.strip("/")
        if prefix:
            try:
                validate_key(prefix)
            except InvalidInput as exc:
                raise ConfigError(f"S3 key prefix {prefix!r} is not valid: {exc.message}") from exc
        if multipart_chunk_size < _MIN_PART:
            raise ConfigError(f"S3 multipart chunk size must be at least {_MIN_PART} bytes")
        if multipart_threshold < 1:
            raise ConfigError("S3 multipart threshold must be positive")
        self._bucket = bucket
        self._prefix = f"{prefix}/" if prefix else ""
        self._endpoint = _strip_userinfo(endpoint_url) if endpoint_url else None
        self._region = region
        self._multipart_threshold = multipart_threshold
        self._multipart_chunk = multipart_chunk_size
        config = Config(
            # Path-style addressing works with every S3-compatible server on
            # a bare host:port; virtual-hosted style needs DNS per bucket.
            s3={"addressing_style": "path" if endpoint_url else "auto"},
            retries={"max_attempts": max_attempts, "mode": "standard"},
            connect_timeout=5,
            read_timeout=60,
        )
        try:
            session = boto3.session.Session(
                aws_access_key_id=access_key,
                aws_secret_access_key=secret_key,
                region_name=region,
            )
            self._client: S3Client = session.client("s3", endpoint_url=endpoint_url, config=config)
        except (BotoCoreError, ValueError) as exc:
            raise ConfigError(
                f"cannot configure the S3 client for {self.describe()}: {type(exc).__name__}"
            ) from exc
        if create_bucket:
            self.ensure_bucket()

    @property
    def bucket(self) -> str:
        return self._bucket

    @property
    def prefix(self) -> str:
        return self._prefix

    def describe(self) -> str:
        where = self._endpoint or "AWS"
        region = f" region {self._region}" if self._region else ""
        prefix = f" prefix {self._prefix!r}" if self._prefix else ""
        return f"s3 bucket {self._bucket}{prefix} at {where}{region}"

    def __repr__(self) -> str:
        return f"S3BlobStore({self.describe()!r})"

    # -- error translation -----------------------------------------------------

    def _fail(self, exc: Exception, action: str, key: str | None) -> NoReturn:
        what = f"object {key!r} in bucket {self._bucket!r}" if key is not None else f"bucket {self._bucket!r}"
        if isinstance(exc, ClientError):
            error = exc.response.get("Error", {})
            code = str(error.get("Code", "unknown"))
            if key is not None and code in _MISSING_OBJECT_CODES:
                raise NotFound(f"object {key!r} not found") from exc
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", "?")
            raise StorageError(f"S3 {action} of {what} failed: {code} (HTTP {status})") from exc
        raise StorageError(f"S3 {action} of {what} failed: {type(exc).__name__}") from exc

    def _object_key(self, key: str) -> str:
        return self._prefix + validate_key(key)

    # -- bucket ----------------------------------------------------------------

    def ensure_bucket(self) -> None:
        """Create the bucket if it does not exist yet."""
        try:
            self._client.head_bucket(Bucket=self._bucket)
            return
        except ClientError as exc:
            if str(exc.response.get("Error", {}).get("Code")) not in _MISSING_BUCKET_CODES:
                self._fail(exc, "check", None)
        except BotoCoreError as exc:
            self._fail(exc, "check", None)
        try:
            if self._region and self._region != "us-east-1":
                self._client.create_bucket(
                    Bucket=self._bucket,
                    CreateBucketConfiguration={"LocationConstraint": self._region},  # type: ignore[typeddict-item]
                )
            else:
                self._client.create_bucket(Bucket=self._bucket)
        except ClientError as exc:
            # Another process may have won the race to create it.
            if exc.response.get("Error", {}).get("Code") not in {
                "BucketAlreadyOwnedByYou",
                "BucketAlreadyExists",
            }:
                self._fail(exc, "creation", None)
        except BotoCoreError as exc:
            self._fail(exc, "creation", None)

    # -- writes ----------------------------------------------------------------

    def put(self, key: str, data: bytes) -> None:
        name = self._object_key(key)
        try:
            if len(data) > self._multipart_threshold:
                self._put_multipart(name, data)
            else:
                self._client.put_object(Bucket=self._bucket, Key=name, Body=data)
        except (ClientError, BotoCoreError) as exc:
            self._fail(exc, "upload", key)

    def _put_multipart(self, name: str, data: bytes) -> None:
        upload_id = self._client.create_multipart_upload(Bucket=self._bucket, Key=name)["UploadId"]
        try:
            parts: list[CompletedPartTypeDef] = []
            view = memoryview(data)
            for number, offset in enumerate(range(0, len(data), self._multipart_chunk), start=1):
                body = bytes(view[offset : offset + self._multipart_chunk])
                etag = self._client.upload_part(
                    Bucket=self._bucket, Key=name, UploadId=upload_id, PartNumber=number, Body=body
                )["ETag"]
                parts.append({"PartNumber": number, "ETag": etag})
            self._client.complete_multipart_upload(
                Bucket=self._bucket, Key=name, UploadId=upload_id, MultipartUpload={"Parts": parts}
            )
        except BaseException:
            # Abandoned parts are billed storage until aborted.
            try:
                self._client.abort_multipart_upload(Bucket=self._bucket, Key=name, UploadId=upload_id)
            except (ClientError, BotoCoreError):
                pass
            raise

    def delete(self, key: str) -> None:
        name = self._object_key(key)
        try:
            self._client.delete_object(Bucket=self._bucket, Key=name)
        except ClientError as exc:
            if str(exc.response.get("Error", {}).get("Code")) in _MISSING_OBJECT_CODES:
                return
            self._fail(exc, "delete", key)
        except BotoCoreError as exc:
            self._fail(exc, "delete", key)

    # -- reads -----------------------------------------------------------------

    def get(self, key: str) -> bytes:
        name = self._object_key(key)
        try:
            response = self._client.get_object(Bucket=self._bucket, Key=name)
            return response["Body"].read()
        except (ClientError, BotoCoreError) as exc:
            self._fail(exc, "download", key)

    def get_range(self, key: str, start: int, length: int) -> bytes:
        if start < 0 or length < 0:
            raise InvalidInput(f"byte range start={start} length={length} must not be negative")
        name = self._object_key(key)
        if length == 0:
            self.size(key)  # still NotFound for a missing key
            return b""
        try:
            response = self._client.get_object(
                Bucket=self._bucket, Key=name, Range=f"bytes={start}-{start + length - 1}"
            )
            return response["Body"].read()
        except ClientError as exc:
            # S3 answers 416 for a range wholly past the end; the port says
            # "fewer bytes at the end", i.e. none, as long as the object exists.
            if exc.response.get("Error", {}).get("Code") == "InvalidRange":
                self.size(key)
                return b""
            self._fail(exc, "ranged download", key)
        except BotoCoreError as exc:
            self._fail(exc, "ranged download", key)

    def size(self, key: str) -> int:
        name = self._object_key(key)
        try:
            return self._client.head_object(Bucket=self._bucket, Key=name)["ContentLength"]
        except (ClientError, BotoCoreError) as exc:
            self._fail(exc, "lookup", key)

    def exists(self, key: str) -> bool:
        try:
            self.size(key)
        except NotFound:
            return False
        return True

    def list(self, prefix: str = "") -> Iterator[str]:
        return self._walk(self._prefix + prefix)

    def _walk(self, full_prefix: str) -> Iterator[str]:
        """Yield keys one ``/``-level at a time, each level sorted here.

        S3 itself lists in byte order, but filer-backed servers (SeaweedFS)
        list directory by directory, so "a/b" can come before "a-b". Walking
        with a delimiter and sorting each level gives the port's lexical order
        everywhere while holding only one level's names in memory.
        """
        entries: list[tuple[str, bool]] = []
        try:
            pages = self._client.get_paginator("list_objects_v2").paginate(
                Bucket=self._bucket, Prefix=full_prefix, Delimiter="/"
            )
            for page in pages:
                entries.extend((common["Prefix"], True) for common in page.get("CommonPrefixes", []))
                entries.extend((item["Key"], False) for item in page.get("Contents", []))
        except (ClientError, BotoCoreError) as exc:
            self._fail(exc, "listing", None)
        for name, is_level in sorted(entries):
            if is_level:
                if name != full_prefix:  # never recurse into the level being listed
                    yield from self._walk(name)
                continue
            key = name[len(self._prefix) :]
            try:
                yield validate_key(key)
            except InvalidInput:
                continue  # written by something else; not ours to list
