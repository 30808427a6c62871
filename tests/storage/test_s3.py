"""What only the S3 store promises: bucket creation, multipart, no leaked secrets."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable

import pytest
from tests.support.ports import free_port
from tests.support.s3server import S3Endpoint

from callvault.errors import ConfigError, NotFound, StorageError
from callvault.storage.s3 import MiB, S3BlobStore

S3StoreFactory = Callable[..., S3BlobStore]


def test_describe_and_repr_hold_no_secret(s3_endpoint: S3Endpoint, s3_store_factory: S3StoreFactory) -> None:
    store = s3_store_factory(prefix="described")
    for text in (store.describe(), repr(store)):
        assert s3_endpoint.secret_key not in text
        assert s3_endpoint.access_key not in text
        assert store.bucket in text
        assert "described" in text
    assert s3_endpoint.secret_key not in str(vars(store))


def test_describe_strips_credentials_from_endpoint() -> None:
    store = S3BlobStore(
        "some-bucket",
        endpoint_url="http://user:hunter2@127.0.0.1:9",
        secret_key="s",
        access_key="a",
        create_bucket=False,
    )
    assert "hunter2" not in store.describe()
    assert "127.0.0.1:9" in store.describe()


def test_missing_bucket_is_created(s3_endpoint: S3Endpoint) -> None:
    bucket = f"callvault-new-{uuid.uuid4().hex[:12]}"
    client = s3_endpoint.client()
    assert bucket not in {b["Name"] for b in client.list_buckets()["Buckets"]}
    store = S3BlobStore(
        bucket,
        endpoint_url=s3_endpoint.url,
        region=s3_endpoint.region,
        access_key=s3_endpoint.access_key,
        secret_key=s3_endpoint.secret_key,
    )
    assert bucket in {b["Name"] for b in client.list_buckets()["Buckets"]}
    store.ensure_bucket()  # a second call finds it and is a no-op
    store.put("k", b"v")
    assert client.get_object(Bucket=bucket, Key="k")["Body"].read() == b"v"


def test_prefix_isolates_stores_in_one_bucket(
    s3_endpoint: S3Endpoint, s3_store_factory: S3StoreFactory
) -> None:
    run = uuid.uuid4().hex
    tenant_a = s3_store_factory(prefix=f"{run}/a")
    tenant_b = s3_store_factory(prefix=f"{run}/b")
    tenant_a.put("x", b"from a")
    tenant_b.put("x", b"from b")
    assert tenant_a.get("x") == b"from a"
    assert list(tenant_a.list()) == ["x"]
    assert (
        s3_endpoint.client().get_object(Bucket=tenant_b.bucket, Key=f"{run}/b/x")["Body"].read() == b"from b"
    )
    tenant_a.delete("x")
    assert tenant_b.exists("x")


def test_large_object_goes_up_in_parts(s3_endpoint: S3Endpoint, s3_store_factory: S3StoreFactory) -> None:
    store = s3_store_factory(
        prefix=uuid.uuid4().hex, multipart_threshold=6 * MiB, multipart_chunk_size=5 * MiB
    )
    data = os.urandom(12 * MiB + 3)
    store.put("multi", data)
    assert store.get("multi") == data
    assert store.get_range("multi", 5 * MiB - 2, 4) == data[5 * MiB - 2 : 5 * MiB + 2]
    head = s3_endpoint.client().head_object(Bucket=store.bucket, Key=f"{store.prefix}multi")
    assert head["ETag"].strip('"').endswith("-3")  # S3's mark of a three-part upload


def test_unreachable_endpoint_is_storage_error_without_secret() -> None:
    secret = "wJalrXUtnFEMI-do-not-log-me"
    with pytest.raises(StorageError) as caught:
        S3BlobStore(
            "offline-bucket",
            endpoint_url=f"http://127.0.0.1:{free_port()}",  # nothing listens there
            region="us-east-1",
            access_key="AKIAEXAMPLE",
            secret_key=secret,
            max_attempts=1,  # connection refused is final here; skip the back-off
        )
    assert "offline-bucket" in caught.value.message
    assert secret not in caught.value.message
    assert "AKIAEXAMPLE" not in caught.value.message


def test_wrong_credentials_are_storage_error_naming_bucket_and_key(
    s3_endpoint: S3Endpoint, s3_store_factory: S3StoreFactory
) -> None:
    if s3_endpoint.kind == "moto":
        pytest.skip("moto accepts any credentials")
    bucket = s3_store_factory().bucket
    store = S3BlobStore(
        bucket,
        endpoint_url=s3_endpoint.url,
        region=s3_endpoint.region,
        access_key=s3_endpoint.access_key,
        secret_key="not-the-secret-zzz",
        create_bucket=False,
    )
    with pytest.raises(StorageError) as caught:
        store.get("some/key")
    assert not isinstance(caught.value, NotFound)
    assert bucket in caught.value.message and "some/key" in caught.value.message
    assert "not-the-secret-zzz" not in caught.value.message


@pytest.mark.parametrize("bucket", ["", "ab", "Upper", "under_score", "a" * 64, "-lead", "dots..dots"])
def test_invalid_bucket_name_is_config_error(bucket: str) -> None:
    with pytest.raises(ConfigError):
        S3BlobStore(bucket, create_bucket=False)


def test_invalid_prefix_is_config_error() -> None:
    with pytest.raises(ConfigError):
        S3BlobStore("good-bucket", prefix="a/../b", create_bucket=False)
