"""Fixtures for the blob store tests: one S3 server per session, one store per test."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from tests.support.s3server import S3Endpoint

from callvault.storage.blobstore import BlobStore
from callvault.storage.local import LocalBlobStore
from callvault.storage.s3 import S3BlobStore

CONTRACT_BUCKET = "callvault-contract"


S3StoreFactory = Callable[..., S3BlobStore]


def _make_s3_store(endpoint: S3Endpoint, prefix: str = "", **options: object) -> S3BlobStore:
    return S3BlobStore(
        CONTRACT_BUCKET,
        endpoint_url=endpoint.url,
        region=endpoint.region,
        access_key=endpoint.access_key,
        secret_key=endpoint.secret_key,
        prefix=prefix,
        **options,  # type: ignore[arg-type]
    )


@pytest.fixture
def s3_store_factory(s3_endpoint: S3Endpoint) -> S3StoreFactory:
    """``factory(prefix="", **options)``: a store in the shared test bucket."""

    def make(prefix: str = "", **options: object) -> S3BlobStore:
        return _make_s3_store(s3_endpoint, prefix, **options)

    return make


@pytest.fixture(params=["local", "s3"])
def blob_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BlobStore]:
    """Each implementation, empty; S3 stores get a unique prefix in a shared bucket."""
    if request.param == "local":
        yield LocalBlobStore(tmp_path / "vault")
    else:
        endpoint: S3Endpoint = request.getfixturevalue("s3_endpoint")
        yield _make_s3_store(endpoint, prefix=f"test-{uuid.uuid4().hex}")
