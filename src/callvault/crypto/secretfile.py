"""Owner-only files for secrets (the keyring, the signing key).

Both writers follow the same discipline: the file is created with mode 0600
from the first byte (``os.open`` with an explicit mode, never a chmod after
the fact, so there is no window in which it is readable by others), replaced
atomically (temporary file in the same directory, ``fsync``, ``rename``,
``fsync`` of the directory), and refused on load when group or others may read
it: a secret that has already been exposed should stop the service loudly
rather than be "fixed" silently by a chmod.
"""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

from callvault.errors import ConfigError, StorageError

PRIVATE_MODE = 0o600


def ensure_private_dir(directory: Path) -> None:
    """Create ``directory`` (0700) if it is missing; leave an existing one alone."""
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(f"cannot create directory {directory}: {exc.strerror}") from exc


def check_private(path: Path, what: str) -> None:
    """Raise ConfigError if group or others have any permission on ``path``."""
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except OSError as exc:
        raise ConfigError(f"{what} {path}: cannot stat: {exc.strerror}") from exc
    if mode & 0o077:
        raise ConfigError(
            f"{what} {path} has mode {mode:04o}: group/others may read it; "
            f"check nobody copied it, then run 'chmod 600 {path}'"
        )


def read_private(path: Path, what: str) -> bytes:
    """Read a secret file after checking that only its owner may access it."""
    check_private(path, what)
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{what} {path}: cannot read: {exc.strerror}") from exc


def _write_temp(path: Path, data: bytes) -> Path:
    temp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_MODE)
    try:
        # The umask can only remove bits, but an inherited ACL or odd umask must not
        # leave a secret wider than 0600.
        os.fchmod(fd, PRIVATE_MODE)
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        temp.unlink(missing_ok=True)
        raise
    os.close(fd)
    return temp


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_private(path: Path, data: bytes, *, replace: bool = True) -> bool:
    """Write ``data`` to ``path`` atomically with mode 0600.

    With ``replace=False`` an existing file wins (``link`` fails on an existing
    name) and False is returned: two processes creating the same key file at
    once end up sharing one key instead of each using its own.
    """
    ensure_private_dir(path.parent)
    try:
        temp = _write_temp(path, data)
        try:
            if replace:
                os.replace(temp, path)
            else:
                try:
                    os.link(temp, path)
                except FileExistsError:
                    return False
                finally:
                    temp.unlink(missing_ok=True)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        _fsync_dir(path.parent)
    except OSError as exc:
        raise StorageError(f"cannot write {path}: {exc.strerror}") from exc
    return True
