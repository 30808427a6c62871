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
"""

from __future__ import annotations

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

from callvault.errors import ConfigError, StorageError

_MIGRATIONS = Path(__file__).with_name("migrations")
_AFTER_WRITE = "callvault.after_write"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # pysqlite's own transaction handling would issue BEGIN lazily; we want
    # explicit BEGIN IMMEDIATE for writers, so let SQLAlchemy drive it.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=15000")
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
                self.engine: Engine = create_engine(
                    url, connect_args={"check_same_thread": False, "timeout": 15}
                )
                event.listen(self.engine, "connect", _sqlite_pragmas)
                event.listen(self.engine, "begin", self._sqlite_begin)
            else:
                self.engine = create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)
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
        with self._sessions() as session:
            yield session

    @contextmanager
    def snapshot(self) -> Iterator[Session]:
        """A read session whose queries all see one consistent state of the catalog.

        SQLite's read transactions already are snapshots (WAL); PostgreSQL's default
        READ COMMITTED gives each statement its own, so ``verify`` would race
        concurrent seals: REPEATABLE READ there.
        """
        with self._sessions() as session:
            if not self.is_sqlite:
                session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
            yield session

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A session whose transaction commits on success and rolls back on error."""
        after: list[Callable[[], None]] = []
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
                yield session
        # Committed, and the write lock is free again: slow follow-ups (files) hold up no writer.
        for callback in after:
            callback()

    @staticmethod
    def after_write(session: Session, callback: Callable[[], None]) -> None:
        """Run ``callback`` once ``session``'s transaction (from :meth:`write`) has committed."""
        try:
            session.info[_AFTER_WRITE].append(callback)
        except KeyError:
            raise RuntimeError("after_write needs a session from Catalog.write()") from None

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
