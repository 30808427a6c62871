"""Choose the blob store from ``CALLVAULT_STORAGE_URL``.

``file:///abs/path``
    :class:`~callvault.storage.local.LocalBlobStore` rooted at ``/abs/path``.
``s3://bucket[/prefix][?endpoint=URL&region=R]``
    :class:`~callvault.storage.s3.S3BlobStore`. Credentials come from
    ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` (or boto3's usual chain
    when unset). ``access_key`` / ``secret_key`` query parameters also work
    but put a secret into a setting that ends up in shells and process
    listings, so they are discouraged.

A URL that cannot be used raises :class:`ConfigError` naming the setting and
the value with any secret replaced by ``***``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

from callvault.errors import ConfigError
from callvault.storage.blobstore import BlobStore
from callvault.storage.local import LocalBlobStore

if TYPE_CHECKING:
    # boto3 takes ~0.6 s to import: only processes configured for S3 pay for it (below).
    from callvault.storage.s3 import S3BlobStore

SETTING = "CALLVAULT_STORAGE_URL"
_SECRET_PARAMS = frozenset({"secret_key", "access_key"})
_S3_PARAMS = frozenset({"endpoint", "region"}) | _SECRET_PARAMS


def _redact_userinfo(url: str) -> str:
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    netloc = "***@" + parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def _redact_param(name: str, value: str) -> str:
    if name in _SECRET_PARAMS:
        return "***"
    if name == "endpoint":
        return _redact_userinfo(value)
    return value


def redact_storage_url(url: str) -> str:
    """``url`` with passwords and credential query parameters replaced by ``***``."""
    try:
        parts = urlsplit(_redact_userinfo(url))
        pairs = parse_qsl(parts.query, keep_blank_values=True)
        query = urlencode([(name, _redact_param(name, value)) for name, value in pairs], safe="*:/@")
        return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))
    except ValueError:
        return "<unparseable URL>"


def _bad(url: str, reason: str) -> ConfigError:
    return ConfigError(f"{SETTING}={redact_storage_url(url)!r} is not usable: {reason}")


def open_blob_store(url: str) -> BlobStore:
    """Open the blob store ``url`` names; see the module docstring for forms."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - parsing the port is what validates it
    except ValueError as exc:
        raise _bad(url, f"malformed URL ({exc})") from None
    if parts.scheme == "file":
        return _open_local(url)
    if parts.scheme == "s3":
        return _open_s3(url)
    raise _bad(url, "must start with file:// or s3://")


def _open_local(url: str) -> LocalBlobStore:
    parts = urlsplit(url)
    if parts.netloc not in {"", "localhost"}:
        raise _bad(url, "a file URL needs an absolute path, e.g. file:///var/lib/callvault/vault")
    if parts.query or parts.fragment:
        raise _bad(url, "a file URL takes no query or fragment")
    path = unquote(parts.path)
    if not path.startswith("/") or "\x00" in path:
        raise _bad(url, "a file URL needs an absolute path, e.g. file:///var/lib/callvault/vault")
    return LocalBlobStore(Path(path))


def _open_s3(url: str) -> S3BlobStore:
    parts = urlsplit(url)
    if parts.username is not None or parts.password is not None:
        raise _bad(url, "put S3 credentials in AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, not in the URL")
    bucket = parts.hostname or ""
    if not bucket or parts.port is not None:
        raise _bad(url, "name the bucket right after s3://, e.g. s3://recordings?region=eu-west-1")
    if parts.fragment:
        raise _bad(url, "an s3 URL takes no fragment")
    params: dict[str, str] = {}
    for name, value in parse_qsl(parts.query, keep_blank_values=True, strict_parsing=False):
        if name not in _S3_PARAMS:
            raise _bad(url, f"unknown parameter {name!r} (known: endpoint, region, access_key, secret_key)")
        if name in params:
            raise _bad(url, f"parameter {name!r} given twice")
        params[name] = value
    endpoint = params.get("endpoint") or None
    if endpoint is not None:
        endpoint_parts = urlsplit(endpoint)
        if endpoint_parts.scheme not in {"http", "https"} or not endpoint_parts.hostname:
            raise _bad(
                url, "endpoint must be an http:// or https:// URL, e.g. endpoint=http://127.0.0.1:8333"
            )
        if endpoint_parts.username is not None or endpoint_parts.password is not None:
            raise _bad(url, "the endpoint URL must not carry credentials")
    access_key = params.get("access_key") or os.environ.get("AWS_ACCESS_KEY_ID") or None
    secret_key = params.get("secret_key") or os.environ.get("AWS_SECRET_ACCESS_KEY") or None
    if (access_key is None) != (secret_key is None):
        raise _bad(url, "give both an access key and a secret key, or neither")
    from callvault.storage.s3 import S3BlobStore

    try:
        return S3BlobStore(
            bucket=bucket,
            endpoint_url=endpoint,
            region=params.get("region") or None,
            access_key=access_key,
            secret_key=secret_key,
            prefix=unquote(parts.path),
        )
    except ConfigError as exc:
        raise _bad(url, exc.message) from None


def local_storage_url(path: Path) -> str:
    """The ``file://`` URL of a directory, for building a setting value."""
    return "file://" + quote(str(path.resolve()))
