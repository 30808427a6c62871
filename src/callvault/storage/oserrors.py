"""Translating an ``OSError`` from a write into the precise :class:`~callvault.errors.StorageError`."""

from __future__ import annotations

import errno

from callvault.errors import StorageError, StorageFull

# A full file system and an exhausted quota look the same to the recorder: no room for the bytes.
FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})


def is_disk_full(exc: OSError) -> bool:
    return exc.errno in FULL_ERRNOS


def storage_error(message: str, exc: OSError) -> StorageError:
    """``message`` plus the system's reason, as :class:`StorageFull` when the disk is full."""
    reason = exc.strerror or str(exc)
    cls = StorageFull if is_disk_full(exc) else StorageError
    return cls(f"{message}: {reason}")
