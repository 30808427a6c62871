"""What only the local file-system store promises: atomic files, modes, containment."""

from __future__ import annotations

import errno
import os
import stat
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from callvault.errors import NotFound, StorageError
from callvault.storage.local import LocalBlobStore


@pytest.fixture
def umask_022() -> Iterator[None]:
    # Modes must not depend on a permissive umask of whoever runs the tests.
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


@pytest.fixture
def store(tmp_path: Path, umask_022: None) -> LocalBlobStore:
    return LocalBlobStore(tmp_path / "vault")


def _all_files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_failed_write_keeps_old_object_and_leaves_no_temp(
    store: LocalBlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.put("calls/one", b"old content")
    real_write = os.write

    def write_half_then_disk_full(fd: int, data: bytes | memoryview) -> int:
        if len(data) > 4:
            return real_write(fd, bytes(data)[: len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", write_half_then_disk_full)
    with pytest.raises(StorageError) as caught:
        store.put("calls/one", b"new content that will not fit")
    monkeypatch.undo()

    assert "calls/one" in caught.value.message
    assert "No space left" in caught.value.message
    assert store.get("calls/one") == b"old content"
    assert _all_files(store.root) == ["calls/one"]


def test_crash_mid_write_leaves_old_object_visible(store: LocalBlobStore) -> None:
    store.put("calls/two", b"committed")
    # A separate process dies (no cleanup handlers run) halfway through a put.
    script = textwrap.dedent(
        f"""
        import os
        from pathlib import Path
        from callvault.storage.local import LocalBlobStore

        real_write = os.write
        def write_then_die(fd, data):
            real_write(fd, bytes(data)[: len(data) // 2])
            os._exit(9)
        os.write = write_then_die
        LocalBlobStore(Path({str(store.root)!r})).put("calls/two", b"x" * 100_000)
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=60)
    assert result.returncode == 9, result.stderr.decode()

    leftovers = [name for name in os.listdir(store.root / "calls") if name != "two"]
    assert len(leftovers) == 1 and "~" in leftovers[0]  # the torn temp file exists...
    assert store.get("calls/two") == b"committed"  # ...but readers never see it
    assert list(store.list()) == ["calls/two"]
    store.put("calls/two", b"next")
    assert store.get("calls/two") == b"next"


def test_file_and_directory_modes(tmp_path: Path, umask_022: None) -> None:
    store = LocalBlobStore(tmp_path / "vault")
    store.put("a/b/c/object", b"secret audio")
    assert stat.S_IMODE(os.stat(store.root).st_mode) == 0o700
    for directory in ("a", "a/b", "a/b/c"):
        assert stat.S_IMODE(os.stat(store.root / directory).st_mode) == 0o700, directory
    assert stat.S_IMODE(os.stat(store.root / "a/b/c/object").st_mode) == 0o600
    store.put("a/b/c/object", b"rewritten")
    assert stat.S_IMODE(os.stat(store.root / "a/b/c/object").st_mode) == 0o600


def test_no_temp_files_left_after_puts(store: LocalBlobStore) -> None:
    for i in range(20):
        store.put(f"dir/k{i % 3}", os.urandom(100 + i))
    assert _all_files(store.root) == ["dir/k0", "dir/k1", "dir/k2"]


def test_list_skips_temp_and_foreign_names(store: LocalBlobStore) -> None:
    store.put("keep", b"1")
    (store.root / ".keep~abc~tmp").write_bytes(b"partial")
    (store.root / "has space").write_bytes(b"not ours")
    assert list(store.list()) == ["keep"]


def test_symlinked_directory_escaping_root_is_refused(store: LocalBlobStore, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim").write_bytes(b"do not touch")
    (store.root / "link").symlink_to(outside, target_is_directory=True)

    with pytest.raises(StorageError):
        store.put("link/victim", b"overwritten")
    with pytest.raises(StorageError):
        store.get("link/victim")
    with pytest.raises(StorageError):
        store.delete("link/victim")
    assert (outside / "victim").read_bytes() == b"do not touch"
    assert list(store.list()) == []


def test_symlinked_object_is_refused(store: LocalBlobStore, tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.write_bytes(b"private")
    (store.root / "alias").symlink_to(target)
    with pytest.raises(StorageError):
        store.get("alias")
    inside = store.root / "real"
    inside.write_bytes(b"inside")
    (store.root / "inner-alias").symlink_to(inside)
    # Even a link that stays inside is not followed on open: objects are files.
    with pytest.raises(StorageError):
        store.get("inner-alias")


def test_directory_is_not_an_object(store: LocalBlobStore) -> None:
    store.put("folder/child", b"x")
    with pytest.raises(NotFound):
        store.get("folder")
    with pytest.raises(NotFound):
        store.size("folder")
    store.delete("folder")
    assert store.get("folder/child") == b"x"


def test_os_error_becomes_storage_error_naming_the_key(store: LocalBlobStore) -> None:
    store.put("blocker", b"a file where a directory is needed")
    with pytest.raises(StorageError) as caught:
        store.put("blocker/child", b"x")
    assert "blocker/child" in caught.value.message
    assert _all_files(store.root) == ["blocker"]


def test_root_is_created_and_reused(tmp_path: Path) -> None:
    root = tmp_path / "deep" / "vault"
    LocalBlobStore(root).put("k", b"v")
    assert LocalBlobStore(root).get("k") == b"v"
    assert str(root.resolve()) in LocalBlobStore(root).describe()


def test_root_that_is_a_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "file"
    path.write_bytes(b"")
    with pytest.raises(StorageError):
        LocalBlobStore(path)


# -- durability: what is fsync-ed, and when ------------------------------------


@dataclass(frozen=True)
class Fsync:
    """One os.fsync as the OS saw it: the descriptor's inode, and the inode the watched
    path named at that moment (None: no such file yet), which tells before and after the rename."""

    is_dir: bool
    inode: int
    watched_inode: int | None


@pytest.fixture
def fsyncs(monkeypatch: pytest.MonkeyPatch) -> Callable[[Path], list[Fsync]]:
    """Wrap os.fsync (the OS boundary; the real call still runs); ``watch(path)`` starts
    recording and returns the list that fills as the store syncs."""
    calls: list[Fsync] = []
    watched: list[Path] = []
    real_fsync = os.fsync

    def counting_fsync(fd: int) -> None:
        info = os.fstat(fd)
        try:
            watched_inode: int | None = os.stat(watched[0]).st_ino if watched else None
        except FileNotFoundError:
            watched_inode = None
        calls.append(Fsync(stat.S_ISDIR(info.st_mode), info.st_ino, watched_inode))
        real_fsync(fd)

    def watch(path: Path) -> list[Fsync]:
        watched[:] = [path]
        calls.clear()
        return calls

    monkeypatch.setattr(os, "fsync", counting_fsync)
    return watch


def test_put_fsyncs_the_file_before_the_rename_and_the_directory_after(
    store: LocalBlobStore, fsyncs: Callable[[Path], list[Fsync]]
) -> None:
    path = store.root / "calls" / "2026" / "one"
    for content in (b"first version", b"second version"):  # a new key, then a replacement
        calls = fsyncs(path)
        store.put("calls/2026/one", content)
        file_inode, dir_inode = os.stat(path).st_ino, os.stat(path.parent).st_ino
        file_syncs = [i for i, c in enumerate(calls) if not c.is_dir and c.inode == file_inode]
        assert len(file_syncs) == 1, calls  # the data is on disk...
        assert calls[file_syncs[0]].watched_inode != file_inode, calls  # ...before the rename shows it
        dir_syncs = [
            i
            for i, c in enumerate(calls)
            if c.is_dir and c.inode == dir_inode and c.watched_inode == file_inode
        ]
        assert dir_syncs and dir_syncs[-1] > file_syncs[0], calls  # and the rename itself is durable


def test_new_directories_are_fsynced_in_their_parents(
    store: LocalBlobStore, fsyncs: Callable[[Path], list[Fsync]]
) -> None:
    calls = fsyncs(store.root / "a" / "b" / "object")
    store.put("a/b/object", b"x")
    synced_dirs = {c.inode for c in calls if c.is_dir}
    # "a" is a new entry in root, "b" in "a", "object" in "b": each parent is synced.
    for directory in (store.root, store.root / "a", store.root / "a" / "b"):
        assert os.stat(directory).st_ino in synced_dirs, directory
    calls = fsyncs(store.root / "a" / "b" / "other")
    store.put("a/b/other", b"y")  # existing directories need no sync of their parents
    assert {c.inode for c in calls if c.is_dir} == {os.stat(store.root / "a" / "b").st_ino}


def test_delete_fsyncs_the_directory(store: LocalBlobStore, fsyncs: Callable[[Path], list[Fsync]]) -> None:
    store.put("calls/gone", b"x")
    calls = fsyncs(store.root / "calls" / "gone")
    store.delete("calls/gone")
    # After the unlink (the name is gone when the directory is synced).
    assert [(c.is_dir, c.inode, c.watched_inode) for c in calls] == [
        (True, os.stat(store.root / "calls").st_ino, None)
    ]
    assert not (store.root / "calls" / "gone").exists()
