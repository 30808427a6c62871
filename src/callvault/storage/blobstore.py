"""The blob store port: where encrypted recording objects live.

One named interface, two implementations (:mod:`callvault.storage.local`,
:mod:`callvault.storage.s3`) chosen by ``CALLVAULT_STORAGE_URL`` through
:func:`callvault.storage.factory.open_blob_store`; both pass the same contract
tests (``tests/storage/test_blobstore_contract.py``).

Keys are relative, ``/``-separated, made of ``[A-Za-z0-9._-]`` segments; no
segment may be empty, ``.`` or ``..``. Writes are atomic: a reader sees the whole
old object, the whole new one, or none. Implementations raise
:class:`callvault.errors.NotFound` for a missing key,
:class:`callvault.errors.InvalidInput` for a malformed key and
:class:`callvault.errors.StorageError` for any backend failure.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Protocol, runtime_checkable

from callvault.errors import InvalidInput

_SEGMENT = re.compile(r"^[A-Za-z0-9._-]+$")


def validate_key(key: str) -> str:
    """Return ``key`` if it is a safe object key, else raise InvalidInput."""
    if not key or len(key) > 512:
        raise InvalidInput("object key must be 1 to 512 characters")
    for segment in key.split("/"):
        if segment in {"", ".", ".."} or not _SEGMENT.match(segment):
            raise InvalidInput(f"object key {key!r} has an unsafe segment {segment!r}")
    return key


@runtime_checkable
class BlobStore(Protocol):
    """Synchronous object storage; callers run it in a thread from async code."""

    def put(self, key: str, data: bytes) -> None:
        """Store ``data`` under ``key`` atomically, replacing any old object."""

    def get(self, key: str) -> bytes:
        """Return the whole object."""

    def get_range(self, key: str, start: int, length: int) -> bytes:
        """Return ``length`` bytes from ``start`` (fewer at the end of the object)."""

    def size(self, key: str) -> int:
        """Object size in bytes."""

    def exists(self, key: str) -> bool: ...

    def delete(self, key: str) -> None:
        """Remove the object; deleting a missing key is not an error."""

    def list(self, prefix: str = "") -> Iterator[str]:
        """Keys starting with ``prefix``, in lexical order."""

    def describe(self) -> str:
        """Human-readable location without secrets, for logs and ``healthz``."""


def delete_objects(store: BlobStore, keys: list[str]) -> None:
    """Delete ``keys``, in one bulk call where the store has one (``delete_many``)."""
    bulk = getattr(store, "delete_many", None)
    if bulk is not None:
        bulk(keys)
        return
    for key in keys:
        store.delete(key)
