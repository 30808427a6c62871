"""Edges of the local store that mutation testing found unguarded (docs/mutation-testing.md):
short reads, directories created by a concurrent writer, descriptors leaking into forked
workers, a write that makes no progress, and the wording of OS errors."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from callvault.errors import StorageError
from callvault.storage.local import LocalBlobStore


@pytest.fixture
def store(tmp_path: Path) -> LocalBlobStore:
    return LocalBlobStore(tmp_path / "vault")


def test_short_reads_are_joined_into_the_whole_object(
    store: LocalBlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = bytes(range(256)) * 40  # 10,240 bytes
    store.put("calls/one", data)
    real_pread = os.pread
    reads: list[int] = []

    def short_pread(fd: int, length: int, offset: int) -> bytes:
        reads.append(length)
        return real_pread(fd, min(length, 1000), offset)  # as pread may, on any file system

    monkeypatch.setattr(os, "pread", short_pread)
    assert store.get("calls/one") == data
    assert store.get_range("calls/one", 999, 2003) == data[999:3002]
    assert len(reads) > 2


def test_a_directory_created_meanwhile_by_another_writer_is_used(
    store: LocalBlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two calls sealed at once into the same new day directory: the second mkdir loses the race."""
    real_mkdir = os.mkdir
    raced: list[str] = []

    def racing_mkdir(path: str | os.PathLike[str], mode: int = 0o777) -> None:
        if not raced:
            raced.append(str(path))
            real_mkdir(path, mode)  # the other writer got there first
        real_mkdir(path, mode)

    monkeypatch.setattr(os, "mkdir", racing_mkdir)
    store.put("2026/12/03/call", b"audio")  # three new levels, the first one raced
    assert raced == [str(store.root / "2026")]
    assert store.get("2026/12/03/call") == b"audio"


def test_a_file_in_the_way_of_a_directory_is_still_refused_after_the_race(
    store: LocalBlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_mkdir = os.mkdir

    def file_appears(path: str | os.PathLike[str], mode: int = 0o777) -> None:
        Path(path).write_bytes(b"not a directory")
        real_mkdir(path, mode)

    monkeypatch.setattr(os, "mkdir", file_appears)
    with pytest.raises(StorageError, match="2026/call"):
        store.put("2026/call", b"audio")


def test_descriptors_are_opened_close_on_exec(store: LocalBlobStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """Render workers are forked: an inherited descriptor would keep vault files and directories open."""
    if not getattr(os, "O_CLOEXEC", 0):
        pytest.skip("no O_CLOEXEC on this platform")
    real_open = os.open
    flags_seen: list[tuple[str, int]] = []

    def recording_open(path: str | os.PathLike[str], flags: int, *args: int, **kwargs: int) -> int:
        flags_seen.append((str(path), flags))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", recording_open)
    store.put("calls/one", b"x")  # the temporary file, then its directory for the fsync
    store.get("calls/one")
    store.delete("calls/one")  # the directory again
    assert {Path(path).is_dir() for path, _ in flags_seen} == {True, False}
    assert all(flags & os.O_CLOEXEC for _, flags in flags_seen), flags_seen


def test_a_write_that_makes_no_progress_fails_instead_of_spinning(
    store: LocalBlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(os, "write", lambda fd, data: 0)
    with pytest.raises(StorageError, match="calls/one"):
        store.put("calls/one", b"audio")
    assert not store.exists("calls/one")
    assert [p.name for p in store.root.rglob("*") if p.is_file()] == []


@pytest.mark.parametrize(
    ("error", "wording"),
    [
        (OSError(errno.EIO, "Input/output error"), "Input/output error"),
        (PermissionError(), "PermissionError"),  # no strerror: the kind of error is named
    ],
)
def test_os_errors_are_worded_by_their_reason(
    store: LocalBlobStore, monkeypatch: pytest.MonkeyPatch, error: OSError, wording: str
) -> None:
    store.put("calls/one", b"x")

    def failing_unlink(path: str | os.PathLike[str]) -> None:
        raise error

    monkeypatch.setattr(os, "unlink", failing_unlink)
    with pytest.raises(StorageError) as caught:
        store.delete("calls/one")
    assert caught.value.message == f"cannot delete object 'calls/one' from the local vault: {wording}"


def test_repr_names_the_root(store: LocalBlobStore) -> None:
    assert repr(store) == f"LocalBlobStore({str(store.root)!r})"
