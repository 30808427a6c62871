"""The blob store on a local file system: the vault of a single-node install.

Durability: an object is written to a temporary file in its final directory,
flushed with ``fsync``, renamed over the key's path and the directory is
``fsync``-ed, so after :meth:`LocalBlobStore.put` returns a power loss leaves
either the whole old object or the whole new one, never a torn file.

Temporary names contain ``~``, a character no valid key segment can hold, so
they can never collide with, or be listed as, an object.
"""

from __future__ import annotations

import errno
import os
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path

from callvault.errors import InvalidInput, NotFound, StorageError
from callvault.storage.blobstore import validate_key
from callvault.storage.oserrors import storage_error

_DIR_MODE = 0o700
_FILE_MODE = 0o600
_TEMP_MARK = "~"
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_READ_FLAGS = os.O_RDONLY | _NOFOLLOW | _CLOEXEC
_WRITE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC


def _is_temp_name(name: str) -> bool:
    return _TEMP_MARK in name


def _check_range(start: int, length: int) -> None:
    if start < 0 or length < 0:
        raise InvalidInput(f"byte range start={start} length={length} must not be negative")


class LocalBlobStore:
    """Objects as files under ``root``; one file per key, directories per ``/``."""

    def __init__(self, root: Path) -> None:
        try:
            os.makedirs(root, mode=_DIR_MODE, exist_ok=True)
            # Resolve once so a symlinked root (e.g. /var -> /private/var) is
            # the reference every object path is checked against.
            self._root = Path(root).resolve(strict=True)
        except OSError as exc:
            raise StorageError(f"cannot open local vault directory {str(root)!r}: {exc.strerror}") from exc
        if not self._root.is_dir():
            raise StorageError(f"local vault path {str(self._root)!r} is not a directory")

    @property
    def root(self) -> Path:
        return self._root

    def describe(self) -> str:
        return f"local directory {self._root}"

    def __repr__(self) -> str:
        return f"LocalBlobStore({str(self._root)!r})"

    # -- paths -----------------------------------------------------------------

    def _path(self, key: str) -> Path:
        """Map a key to its file path, refusing anything that lands outside root."""
        validate_key(key)
        candidate = self._root.joinpath(*key.split("/"))
        # A symlink planted inside the vault must not let a key read or
        # overwrite files elsewhere; symlinks that stay inside are harmless.
        real = Path(os.path.realpath(candidate))
        if not real.is_relative_to(self._root):
            raise StorageError(f"object key {key!r} resolves outside the local vault directory; refusing it")
        return candidate

    def _unlink_path(self, key: str, checked: set[Path]) -> Path:
        """:meth:`_path` for unlinking, resolving each directory once per batch.

        unlink removes the directory entry itself, never what a symlink points to,
        so only the directories on the way must stay inside root; resolving every
        key in full cost more than the unlink.
        """
        validate_key(key)
        candidate = self._root.joinpath(*key.split("/"))
        parent = candidate.parent
        if parent not in checked:
            if not Path(os.path.realpath(parent)).is_relative_to(self._root):
                raise StorageError(
                    f"object key {key!r} resolves outside the local vault directory; refusing it"
                )
            checked.add(parent)
        return candidate

    def _make_parents(self, path: Path) -> None:
        """Create missing directories between root and ``path`` with mode 0700."""
        missing: list[Path] = []
        parent = path.parent
        while parent != self._root and not parent.is_dir():
            missing.append(parent)
            parent = parent.parent
        for directory in reversed(missing):
            try:
                os.mkdir(directory, _DIR_MODE)
            except FileExistsError:
                if not directory.is_dir():
                    raise
                continue
            # The new directory entry itself must survive a crash, or the
            # fsync of the object inside it would be in vain.
            _fsync_dir(directory.parent)

    # -- writes ----------------------------------------------------------------

    def put(self, key: str, data: bytes) -> None:
        path = self._path(key)
        temp = path.with_name(f".{path.name}{_TEMP_MARK}{secrets.token_hex(6)}{_TEMP_MARK}tmp")
        try:
            self._make_parents(path)
            fd = os.open(temp, _WRITE_FLAGS, _FILE_MODE)
            try:
                _write_all(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(temp, path)
            _fsync_dir(path.parent)
        except OSError as exc:
            _discard(temp)
            # StorageFull for ENOSPC/EDQUOT, so the API and monitoring can tell a full disk apart.
            raise storage_error(f"cannot write object {key!r} to the local vault", exc) from exc
        except BaseException:
            _discard(temp)
            raise

    def delete(self, key: str) -> None:
        path = self._path(key)
        try:
            os.unlink(path)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return  # missing, or a "directory" key that names no object
        except OSError as exc:
            raise StorageError(f"cannot delete object {key!r} from the local vault: {_reason(exc)}") from exc
        try:
            _fsync_dir(path.parent)
        except OSError as exc:
            raise StorageError(f"cannot delete object {key!r} from the local vault: {_reason(exc)}") from exc

    def delete_many(self, keys: list[str]) -> None:
        """Delete several objects, syncing each directory once (bulk retention deletes)."""
        directories: set[Path] = set()
        checked: set[Path] = set()
        for key in keys:
            path = self._unlink_path(key, checked)
            try:
                os.unlink(path)
            except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
                continue
            except OSError as exc:
                raise StorageError(
                    f"cannot delete object {key!r} from the local vault: {_reason(exc)}"
                ) from exc
            directories.add(path.parent)
        for directory in directories:
            try:
                _fsync_dir(directory)
            except OSError as exc:
                raise StorageError(f"cannot sync {directory} in the local vault: {_reason(exc)}") from exc

    # -- reads -----------------------------------------------------------------

    def _open(self, key: str) -> int:
        path = self._path(key)
        try:
            fd = os.open(path, _READ_FLAGS)
        except (FileNotFoundError, NotADirectoryError) as exc:
            raise NotFound(f"object {key!r} not found") from exc
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise StorageError(f"object {key!r} is a symlink in the local vault; refusing it") from exc
            raise StorageError(f"cannot open object {key!r} in the local vault: {_reason(exc)}") from exc
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise NotFound(f"object {key!r} not found")
        except BaseException:
            os.close(fd)
            raise
        return fd

    def get(self, key: str) -> bytes:
        fd = self._open(key)
        try:
            # Objects are replaced by rename, never rewritten in place, so the
            # size of the open file cannot change under us.
            return _pread_all(fd, 0, os.fstat(fd).st_size)
        except OSError as exc:
            raise StorageError(f"cannot read object {key!r} from the local vault: {_reason(exc)}") from exc
        finally:
            os.close(fd)

    def get_range(self, key: str, start: int, length: int) -> bytes:
        _check_range(start, length)
        fd = self._open(key)
        try:
            return _pread_all(fd, start, length)
        except OSError as exc:
            raise StorageError(f"cannot read object {key!r} from the local vault: {_reason(exc)}") from exc
        finally:
            os.close(fd)

    def size(self, key: str) -> int:
        fd = self._open(key)
        try:
            return os.fstat(fd).st_size
        except OSError as exc:
            raise StorageError(f"cannot stat object {key!r} in the local vault: {_reason(exc)}") from exc
        finally:
            os.close(fd)

    def exists(self, key: str) -> bool:
        try:
            fd = self._open(key)
        except NotFound:
            return False
        os.close(fd)
        return True

    def list(self, prefix: str = "") -> Iterator[str]:
        return self._walk(self._root, "", prefix)

    def _walk(self, directory: Path, rel: str, prefix: str) -> Iterator[str]:
        try:
            with os.scandir(directory) as it:
                entries = [
                    (e.name, e.is_dir(follow_symlinks=False), e.is_file(follow_symlinks=False)) for e in it
                ]
        except FileNotFoundError:
            if directory == self._root:
                raise StorageError(f"local vault directory {str(self._root)!r} has disappeared") from None
            return  # removed while we walked; it holds no objects any more
        except OSError as exc:
            raise StorageError(f"cannot list the local vault under {rel or '/'!r}: {_reason(exc)}") from exc
        # Sorting a directory's entries as "name/" makes the depth-first walk
        # yield keys in global lexical order: "a-b" < "a/c" because "-" < "/".
        ordered = sorted(
            (name + "/" if is_dir else name, name, is_dir)
            for name, is_dir, is_file in entries
            if (is_dir or is_file) and not _is_temp_name(name) and _valid_segment(name)
        )
        for sort_name, name, is_dir in ordered:
            full = rel + sort_name
            if is_dir:
                if full.startswith(prefix) or prefix.startswith(full):
                    yield from self._walk(directory / name, full, prefix)
            elif full.startswith(prefix):
                yield full


def _valid_segment(name: str) -> bool:
    try:
        validate_key(name)
    except InvalidInput:
        return False
    return True


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        if written <= 0:
            # A write that makes no progress would otherwise be retried forever, holding the
            # thread (and the seal it serves); fail it like the I/O error it is.
            raise OSError(errno.EIO, "write to the vault made no progress")
        view = view[written:]


def _pread_all(fd: int, offset: int, length: int) -> bytes:
    """Read up to ``length`` bytes at ``offset``; pread may return short counts."""
    chunks: list[bytes] = []
    remaining = length
    while remaining > 0:
        chunk = os.pread(fd, remaining, offset)
        if not chunk:
            break
        chunks.append(chunk)
        offset += len(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | _CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _discard(temp: Path) -> None:
    try:
        os.unlink(temp)
    except OSError:
        pass


def _reason(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__
