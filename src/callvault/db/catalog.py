"""The catalog database: engine setup, migrations and the one write path.

SQLite is the embedded default (WAL journal, foreign keys on, a busy timeout
so ``callvault admin`` can write while ``callvault serve`` runs); PostgreSQL is
used when ``CALLVAULT_DATABASE_URL`` says so. Writers go through
:meth:`Catalog.write`, which serialises writers inside a process for SQLite
(SQLite allows one writer; queuing in Python avoids busy-loop retries) and
starts the transaction with ``BEGIN IMMEDIATE`` so a read never has to be
upgraded to a write mid-transaction. Work that must follow a commit but not
hold the write lock (mirroring the seal log checkpoint to a file) is queued
with :meth:`Catalog.after_write`.

The SQLite file is created mode 0600 before SQLite opens it (SQLite gives its
``-wal`` and ``-shm`` files the same mode), since the catalog holds password
hashes and who-called-whom. A locked, full or unreachable database is
translated here into :class:`CatalogUnavailable` or :class:`StorageFull`
(both answer 503), never a bare driver error.
"""

from __future__ import annotations

import errno
import logging
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from callvault.errors import CatalogUnavailable, ConfigError, StorageError, StorageFull

_MIGRATIONS = Path(__file__).with_name("migrations")
_AFTER_WRITE = "callvault.after_write"
# How long a writer waits for another process's write lock before giving up.
BUSY_TIMEOUT_MS = 15000
log = logging.getLogger(__name__)


def translate_operational_error(exc: OperationalError) -> StorageError | CatalogUnavailable:
    """The callvault error for a driver's OperationalError (locked, full, unreachable)."""
    text = str(exc.orig).lower()
    if "disk is full" in text or "no space left" in text:
        return StorageFull("the catalog database's disk is full; free space and retry")
    if "locked" in text or "busy" in text or "deadlock" in text or "lock timeout" in text:
        return CatalogUnavailable("the catalog database is busy (locked by another writer); retry shortly")
    return CatalogUnavailable("the catalog database is unreachable; retry shortly")


def _private_file(path: Path) -> None:
    """Create ``path`` mode 0600 (or tighten it) before SQLite opens it."""
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
    try:
        os.fchmod(fd, 0o600)
    finally:
        os.close(fd)
    for suffix in ("-wal", "-shm"):
        extra = path.with_name(path.name + suffix)
        if extra.exists():
            os.chmod(extra, 0o600)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # pysqlite's own transaction handling would issue BEGIN lazily; we want
    # explicit BEGIN IMMEDIATE for writers, so let SQLAlchemy drive it.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


class Catalog:
    def __init__(self, url: str) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        try:
            if self.is_sqlite:
                path = url.removeprefix("sqlite:///")
                if path and path != ":memory:":
                    Path(path).parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                    _private_file(Path(path))
                self.engine: Engine = create_engine(
                    url, connect_args={"check_same_thread": False, "timeout": BUSY_TIMEOUT_MS / 1000}
                )
                event.listen(self.engine, "connect", _sqlite_pragmas)
                event.listen(self.engine, "begin", self._sqlite_begin)
            else:
                self.engine = create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                raise StorageFull("no space left to create the catalog database") from exc
            raise ConfigError(f"catalog database file cannot be created: {exc.strerror}") from exc
        except (SQLAlchemyError, ImportError) as exc:
            raise ConfigError(f"CALLVAULT_DATABASE_URL cannot be used: {exc.__class__.__name__}") from None
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._write_lock = threading.Lock()
        self._local = threading.local()

    def _sqlite_begin(self, conn: Any) -> None:
        mode = "IMMEDIATE" if getattr(self._local, "writing", False) else "DEFERRED"
        conn.exec_driver_sql(f"BEGIN {mode}")

    def migrate(self) -> None:
        """Bring the schema to the newest revision (safe to run at every start)."""
        config = Config()
        config.set_main_option("script_location", str(_MIGRATIONS))
        try:
            with self.engine.begin() as connection:
                config.attributes["connection"] = connection
                command.upgrade(config, "head")
        except OperationalError as exc:
            raise StorageError(f"catalog database unreachable or locked: {exc.orig}") from None

    @contextmanager
    def read(self) -> Iterator[Session]:
        try:
            with self._sessions() as session:
                yield session
        except OperationalError as exc:
            raise self._unavailable(exc) from exc

    @contextmanager
    def snapshot(self) -> Iterator[Session]:
        """A read session whose queries all see one consistent state of the catalog.

        SQLite's read transactions already are snapshots (WAL); PostgreSQL's default
        READ COMMITTED gives each statement its own, so ``verify`` would race
        concurrent seals: REPEATABLE READ there.
        """
        try:
            with self._sessions() as session:
                if not self.is_sqlite:
                    session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
                yield session
        except OperationalError as exc:
            raise self._unavailable(exc) from exc

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A session whose transaction commits on success and rolls back on error."""
        after: list[Callable[[], None]] = []
        try:
            with self._write_lock if self.is_sqlite else _nullcontext():
                with self._sessions() as session, session.begin():
                    session.info[_AFTER_WRITE] = after
                    # Only this session's connection starts with BEGIN IMMEDIATE; reads
                    # nested inside the write (directory lookups) stay plain readers.
                    self._local.writing = True
                    try:
                        session.connection()
                    finally:
                        self._local.writing = False
                    self._local.session = session
                    try:
                        yield session
                    finally:
                        self._local.session = None
        except OperationalError as exc:
            raise self._unavailable(exc) from exc
        # Committed, and the write lock is free again: slow follow-ups (files) hold up no writer.
        for callback in after:
            callback()

    def in_write(self) -> Session | None:
        """The session of the write transaction this thread has open, if any.

        Lets code called from inside a write (an event subscriber) join it instead of
        opening a second one, which on SQLite would wait forever for this very lock.
        """
        session: Session | None = getattr(self._local, "session", None)
        return session

    @staticmethod
    def after_write(session: Session, callback: Callable[[], None]) -> None:
        """Run ``callback`` once ``session``'s transaction (from :meth:`write`) has committed."""
        try:
            session.info[_AFTER_WRITE].append(callback)
        except KeyError:
            raise RuntimeError("after_write needs a session from Catalog.write()") from None

    @staticmethod
    def _unavailable(exc: OperationalError) -> StorageError | CatalogUnavailable:
        error = translate_operational_error(exc)
        # The driver's words go to the operator's log (repr: one line), not to the client.
        log.error("catalog: %s (%r)", error.message, str(exc.orig)[:300])
        return error

    def ping(self) -> bool:
        try:
            with self.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
            return True
        except SQLAlchemyError:
            return False

    def dispose(self) -> None:
        self.engine.dispose()


@contextmanager
def _nullcontext() -> Iterator[None]:
    yield
