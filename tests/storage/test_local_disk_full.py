"""A full disk under the local vault is a precise error: StorageFull (HTTP 503, code storage_full)."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from callvault.errors import StorageError, StorageFull
from callvault.storage import local
from callvault.storage.local import LocalBlobStore


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT])
def test_write_on_a_full_disk_raises_storage_full_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int
) -> None:
    store = LocalBlobStore(tmp_path / "vault")

    def full(fd: int, data: bytes) -> None:
        os.write(fd, data[:10])  # what fitted before the disk ran out
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(local, "_write_all", full)
    with pytest.raises(StorageFull) as caught:
        store.put("recordings/a.cvr", b"x" * 1000)
    error = caught.value
    assert (error.status_code, error.code) == (503, "storage_full")
    assert error.to_dict() == {"error": "storage_full", "detail": error.message}
    assert os.strerror(code) in error.message
    assert not store.exists("recordings/a.cvr")
    assert not [p for p in (tmp_path / "vault").rglob("*") if p.is_file()]  # no temp file left


def test_other_write_errors_stay_generic_storage_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = LocalBlobStore(tmp_path / "vault")

    def broken(fd: int, data: bytes) -> None:
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr(local, "_write_all", broken)
    with pytest.raises(StorageError) as caught:
        store.put("recordings/b.cvr", b"x")
    assert type(caught.value) is StorageError and caught.value.code == "storage_error"
