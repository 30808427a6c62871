"""CALLVAULT_STORAGE_URL parsing: which store, where, and clear refusals."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from tests.support.s3server import S3Endpoint

from callvault.errors import ConfigError
from callvault.storage.factory import local_storage_url, open_blob_store, redact_storage_url
from callvault.storage.local import LocalBlobStore
from callvault.storage.s3 import S3BlobStore


@pytest.fixture(autouse=True)
def _no_ambient_aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)


def test_file_url_opens_local_store(tmp_path: Path) -> None:
    store = open_blob_store(f"file://{tmp_path}/vault")
    assert isinstance(store, LocalBlobStore)
    assert store.root == (tmp_path / "vault").resolve()
    store.put("k", b"v")
    assert (tmp_path / "vault" / "k").read_bytes() == b"v"


def test_file_url_with_localhost_and_escapes(tmp_path: Path) -> None:
    store = open_blob_store(f"file://localhost{tmp_path}/my%20vault")
    assert isinstance(store, LocalBlobStore)
    assert store.root == (tmp_path / "my vault").resolve()


def test_local_storage_url_round_trips(tmp_path: Path) -> None:
    url = local_storage_url(tmp_path / "with space")
    store = open_blob_store(url)
    assert isinstance(store, LocalBlobStore)
    assert store.root == (tmp_path / "with space").resolve()


def test_s3_url_with_env_credentials(s3_endpoint: S3Endpoint, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in s3_endpoint.env().items():
        monkeypatch.setenv(name, value)
    prefix = f"factory/{uuid.uuid4().hex}"
    store = open_blob_store(s3_endpoint.storage_url("callvault-contract", prefix))
    assert isinstance(store, S3BlobStore)
    assert store.bucket == "callvault-contract"
    assert store.prefix == prefix + "/"
    assert s3_endpoint.url in store.describe() and s3_endpoint.region in store.describe()
    store.put("k", b"via factory")
    assert store.get("k") == b"via factory"
    key = f"{prefix}/k"
    assert (
        s3_endpoint.client().get_object(Bucket="callvault-contract", Key=key)["Body"].read() == b"via factory"
    )


def test_s3_url_with_query_credentials(s3_endpoint: S3Endpoint) -> None:
    url = s3_endpoint.storage_url("callvault-contract") + (
        f"&access_key={s3_endpoint.access_key}&secret_key={s3_endpoint.secret_key}"
    )
    store = open_blob_store(url)
    store.put("query-creds", b"ok")
    assert store.get("query-creds") == b"ok"
    assert s3_endpoint.secret_key not in store.describe()


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("", "file:// or s3://"),
        ("ftp://host/x", "file:// or s3://"),
        ("/var/lib/vault", "file:// or s3://"),
        ("file://relative/path", "absolute path"),
        ("file:relative", "absolute path"),
        ("file:///vault?mode=x", "no query"),
        ("s3://", "bucket"),
        ("s3:///prefix-only", "bucket"),
        ("s3://bucket:9000", "bucket"),
        ("s3://Bad_Bucket", "not valid"),
        ("s3://bucket/../up", "prefix"),
        ("s3://bucket?colour=blue", "unknown parameter 'colour'"),
        ("s3://bucket?region=a&region=b", "given twice"),
        ("s3://bucket?endpoint=ftp://127.0.0.1:1", "http://"),
        ("s3://bucket?endpoint=localhost", "http://"),
        ("s3://bucket#frag", "fragment"),
        ("s3://[::1", "malformed"),
    ],
)
def test_bad_urls_are_config_errors(url: str, reason: str) -> None:
    with pytest.raises(ConfigError) as caught:
        open_blob_store(url)
    assert "CALLVAULT_STORAGE_URL" in caught.value.message
    assert reason in caught.value.message


@pytest.mark.parametrize(
    "url",
    [
        "s3://AKIAUSER:TOPSECRET@bucket",
        "s3://bucket?secret_key=TOPSECRET",
        "s3://bucket?endpoint=http://u:TOPSECRET@127.0.0.1:1",
        "s3://Bad_Bucket?access_key=a&secret_key=TOPSECRET",
    ],
)
def test_config_errors_never_show_the_secret(url: str) -> None:
    with pytest.raises(ConfigError) as caught:
        open_blob_store(url)
    assert "CALLVAULT_STORAGE_URL" in caught.value.message
    assert "TOPSECRET" not in caught.value.message
    assert "TOPSECRET" not in str(caught.value)


def test_redact_storage_url() -> None:
    redacted = redact_storage_url(
        "s3://u:pw@bucket/p?endpoint=http://h:1&access_key=AK&secret_key=SK&region=r"
    )
    assert "pw" not in redacted and "SK" not in redacted and "AK" not in redacted
    assert redacted.startswith("s3://***@bucket/p?")
    assert "endpoint=http://h:1" in redacted and "region=r" in redacted


def test_redact_endpoint_userinfo() -> None:
    redacted = redact_storage_url("s3://bucket?endpoint=http://user:pw@host:1")
    assert "pw" not in redacted
    assert "endpoint=http://***@host:1" in redacted


def test_unparseable_url_is_redacted_wholesale() -> None:
    assert redact_storage_url("s3://[::1?secret_key=SK") == "<unparseable URL>"
