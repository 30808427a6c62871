"""Shared fixtures: settings on SQLite and PostgreSQL, a service context, an API client.

Every test that takes ``ctx`` (or anything built on it) runs once per catalog
backend: ``--db=sqlite,postgresql`` (the default) runs both. PostgreSQL tests
each get a fresh copy of a migrated template database (tests.support.postgres) on
the server of ``CALLVAULT_TEST_POSTGRES_URL`` (default: the local ``test``
database's), dropped afterwards. Each pytest-xdist worker has its own template.
"""

from __future__ import annotations

import os
import shutil
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvloop
from sqlalchemy import create_engine, text

from callvault.db.catalog import Catalog
from callvault.services import users
from callvault.services.context import ServiceContext, open_context
from callvault.settings import Settings, load_settings
from tests.support import db_pairs
from tests.support.grouping import from_both_ends, shared_fixture_group
from tests.support.people import FixtureHashCache
from tests.support.postgres import PostgresDatabases, copy_url
from tests.support.reference import REFERENCE_DIR, absence_reason, corpus_required
from tests.support.reports import REPORTS
from tests.support.s3server import s3_endpoint_fixture

POSTGRES_URL = os.environ.get(
    "CALLVAULT_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
s3_endpoint = s3_endpoint_fixture()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--db",
        default=os.environ.get("CALLVAULT_TEST_DB", "sqlite,postgresql"),
        help="comma-separated catalog backends to run database tests on: sqlite, postgresql",
    )


def pytest_asyncio_loop_factories(config: pytest.Config, item: pytest.Item) -> dict[str, object]:
    """Every async test runs on uvloop, the loop `callvault serve` runs on: a server tested
    on asyncio's own loop once passed while every SIP/TCP connection failed under uvloop."""
    return {"uvloop": uvloop.new_event_loop}


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> object:
    # Kept on the item so server fixtures can print the server's log when the test failed.
    report = yield
    item.stash.setdefault(REPORTS, {})[report.when] = report
    return report


def _backends(config: pytest.Config) -> list[str]:
    return [b.strip() for b in config.getoption("--db").split(",") if b.strip()]


@pytest.hookimpl(optionalhook=True)  # a pytest-xdist hook: absent when run without it
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object | None:
    """``--dist loadgroup``: a web module's tests on one database go to one worker together,
    so its server and recorded calls are built once (tests.support.grouping)."""
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadGroupScheduling

    class SharedFixtureScheduling(LoadGroupScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return shared_fixture_group(nodeid) or super()._split_scope(nodeid)

        def schedule(self) -> None:
            first = self.collection is None
            super().schedule()
            if first:
                self.workqueue = OrderedDict(from_both_ends(list(self.workqueue.items())))

    return SharedFixtureScheduling(config, log)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", db_pairs.MARKER)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "db_backend" in metafunc.fixturenames:
        metafunc.parametrize("db_backend", _backends(metafunc.config), scope="function")


@pytest.fixture(scope="session", autouse=True)
def _staff_password_hashes() -> Iterator[None]:
    """Hash the fixture staff's passwords once per session (see FixtureHashCache): in-process
    services only; a `callvault` subprocess hashes for real."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(users, "_hasher", FixtureHashCache(users._hasher))
        yield


@pytest.fixture
def reference_dir() -> Path:
    """The reference corpus (tests.support.reference), an extra: a test taking it is skipped
    when the corpus is absent, or fails then when ``CI=true`` requires it (hooks below)."""
    return REFERENCE_DIR


def _reads_missing_corpus(item: pytest.Item) -> bool:
    return "reference_dir" in getattr(item, "fixturenames", ()) and not REFERENCE_DIR.is_dir()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    db_pairs.deselect_other_databases(config, items, _backends(config))
    # Marked at collection: skipped before any fixture (no recorder is started for nothing),
    # and reported at the test's own line.
    if corpus_required():
        return
    for item in items:
        if _reads_missing_corpus(item):
            item.add_marker(pytest.mark.skip(reason=absence_reason()))


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_call(item: pytest.Item) -> None:
    # Failing here, not in setup, reports the test as FAILED rather than as a setup error.
    if _reads_missing_corpus(item):
        pytest.fail(f"{absence_reason()}; CI=true requires it")


def _postgres_database_url(name: str) -> str:
    return copy_url(POSTGRES_URL, name)


def _postgres_admin(statement: str) -> None:
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(statement))
    finally:
        admin.dispose()


@pytest.fixture(scope="session")
def postgres_databases() -> Iterator[PostgresDatabases]:
    """This process's PostgreSQL template, migrated to this checkout's head, and its copies."""
    databases = PostgresDatabases(POSTGRES_URL)
    try:
        yield databases
    finally:
        databases.close()


@pytest.fixture(scope="session")
def postgres_template(postgres_databases: PostgresDatabases) -> str:
    """The migrated template's name, for fixtures that copy it themselves (and never connect
    to it: PostgreSQL copies a template only while nobody is connected to it)."""
    return postgres_databases.template


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("catalog-template") / "catalog.sqlite3"
    catalog = Catalog(f"sqlite:///{path}")
    try:
        catalog.migrate()
    finally:
        catalog.dispose()
    # The last connection closed checkpointed the write-ahead log: the one file is the catalog.
    assert not path.with_name(path.name + "-wal").exists()
    return path


def _seed_sqlite_catalog(data_dir: Path, template: Path) -> None:
    """Put the migrated catalog where the settings look for it (``catalog.sqlite3``), with the
    looser modes of a directory and file made by hand: tightening them stays the server's job,
    and the tests that check it still can fail."""
    data_dir.mkdir(mode=0o755, parents=True, exist_ok=True)
    catalog = data_dir / "catalog.sqlite3"
    if not catalog.exists():
        shutil.copyfile(template, catalog)
        os.chmod(catalog, 0o644)


@pytest.fixture
def database_url(db_backend: str, request: pytest.FixtureRequest) -> Iterator[str]:
    if db_backend == "sqlite":
        _seed_sqlite_catalog(request.getfixturevalue("data_dir"), request.getfixturevalue("sqlite_template"))
        yield ""
        return
    if db_backend != "postgresql":
        raise pytest.UsageError(f"unknown --db backend {db_backend!r}")
    databases: PostgresDatabases = request.getfixturevalue("postgres_databases")
    with databases.fresh() as url:
        yield url


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


def make_settings(data_dir: Path, database_url: str, **extra: str) -> Settings:
    env = {"CALLVAULT_DATA_DIR": str(data_dir), "CALLVAULT_DATABASE_URL": database_url}
    env.update({f"CALLVAULT_{k.upper()}": v for k, v in extra.items()})
    return load_settings(env=env)


@pytest.fixture
def settings(data_dir: Path, database_url: str) -> Settings:
    # No background job workers in servers started on these settings unless a test asks:
    # each would transcribe every call a test seals (tests/asr and tests/jobs run them).
    return make_settings(data_dir, database_url, sip_port="0", http_port="0", job_workers="0")


@pytest.fixture
def ctx(settings: Settings) -> Iterator[ServiceContext]:
    context = open_context(settings)
    try:
        yield context
    finally:
        context.close()
