"""PostgreSQL databases for tests: one migrated template per test process (each
pytest-xdist worker has its own), and a fresh copy of it for every test.

Copying the template (``CREATE DATABASE … TEMPLATE``) writes the whole database
through the write-ahead log, and dropping one waits for its files to go: seconds
each on a busy machine, mostly spent waiting on the disk. So the copy for the next
test is made while the current one runs, and a used database is dropped in the
background; every test still gets a database nobody has touched.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager

from sqlalchemy import create_engine, make_url, text

from callvault.db.catalog import Catalog


def copy_url(server_url: str, name: str) -> str:
    """The URL of database ``name`` on the server of ``server_url``."""
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


class PostgresDatabases:
    """Fresh databases copied from one template; ``close`` drops every one of them."""

    def __init__(self, server_url: str) -> None:
        self._server_url = server_url
        self._admin = create_engine(server_url, isolation_level="AUTOCOMMIT", pool_size=2)
        # One thread: copies and drops never compete with each other for the disk.
        self._background = ThreadPoolExecutor(1, thread_name_prefix="test-databases")
        self._spare: Future[str] | None = None
        self._drops: list[Future[None]] = []
        self.template = f"cvtpl_{uuid.uuid4().hex[:12]}"
        self._execute(f"CREATE DATABASE {self.template}")
        catalog = Catalog(copy_url(server_url, self.template))
        try:
            catalog.migrate()
        finally:
            # PostgreSQL copies a template only while nobody is connected to it.
            catalog.dispose()

    def _execute(self, statement: str) -> None:
        with self._admin.connect() as connection:
            connection.execute(text(statement))

    def _copy(self) -> str:
        name = f"t_{uuid.uuid4().hex[:12]}"
        self._execute(f"CREATE DATABASE {name} TEMPLATE {self.template}")
        return name

    def _drop(self, name: str) -> None:
        # FORCE: a server the test killed may have left its connections behind.
        self._execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    @contextmanager
    def fresh(self) -> Iterator[str]:
        """A new copy of the template for one test (its URL), dropped afterwards."""
        spare, self._spare = self._spare, None
        name = spare.result() if spare is not None else self._copy()
        self._spare = self._background.submit(self._copy)
        try:
            yield copy_url(self._server_url, name)
        finally:
            self._drops.append(self._background.submit(self._drop, name))

    def close(self) -> None:
        try:
            if self._spare is not None:
                self._drop(self._spare.result())
            for drop in self._drops:
                drop.result()  # a database that could not be dropped fails the session
        finally:
            self._background.shutdown(wait=True)
            self._drop(self.template)
            self._admin.dispose()
