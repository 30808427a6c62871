"""Job queue throughput: no-op jobs per second through the embedded queue and through Celery.

Run: ``python bench/jobs.py [--jobs 500] [--broker redis://127.0.0.1:6379/0]``. Prints
figures; not a test.

* Baseline: one-row write transactions per second on the same SQLite catalog (a job
  costs a claim, a final heartbeat and an outcome: three of them, plus reads).
* Embedded: enqueue N jobs, then one in-process worker claims and runs them all
  (``EmbeddedWorker.run_once``: the path of every embedded worker process).
* Celery: enqueue N jobs (each also publishes its message), then one in-process
  Celery worker (solo pool) runs them all from the real broker.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from celery.contrib.testing.worker import start_worker
from sqlalchemy import text

from callvault.db.catalog import Catalog
from callvault.jobs.celery_queue import CeleryJobQueue, celery_app, register_run_job
from callvault.jobs.embedded import EmbeddedJobQueue, EmbeddedWorker
from callvault.jobs.port import Progress
from callvault.jobs.runner import JobRunner, RetryPolicy
from callvault.jobs.store import JobStore
from callvault.settings import load_settings


def _noop(_payload: Mapping[str, Any], _progress: Progress) -> None:
    return None


def _catalog(root: Path) -> Catalog:
    catalog = Catalog(f"sqlite:///{root / 'catalog.sqlite3'}")
    catalog.migrate()
    return catalog


def baseline(root: Path, n: int) -> float:
    catalog = _catalog(root)
    job, _ = JobStore(catalog).enqueue("noop", {})
    started = time.perf_counter()
    for i in range(n):
        with catalog.write() as session:
            session.execute(text("UPDATE jobs SET progress = :p WHERE id = :id"), {"p": i / n, "id": job.id})
    rate = n / (time.perf_counter() - started)
    catalog.dispose()
    return rate


def embedded(root: Path, n: int) -> tuple[float, float]:
    catalog = _catalog(root)
    store = JobStore(catalog)
    queue = EmbeddedJobQueue(store)
    started = time.perf_counter()
    for i in range(n):
        queue.enqueue("noop", {"n": i})
    enqueue_rate = n / (time.perf_counter() - started)
    worker = EmbeddedWorker(store, JobRunner(store, {"noop": _noop}, 60.0, RetryPolicy()), "bench")
    started = time.perf_counter()
    while worker.run_once():
        pass
    run_rate = n / (time.perf_counter() - started)
    assert store.counts()["succeeded"] == n, store.counts()
    catalog.dispose()
    return enqueue_rate, run_rate


def celery(root: Path, n: int, broker: str) -> tuple[float, float]:
    catalog = _catalog(root)
    store = JobStore(catalog)
    settings = replace(
        load_settings(env={"CALLVAULT_DATA_DIR": str(root)}),
        job_queue="celery",
        celery_broker_url=broker,
        celery_queue=f"callvault-bench-{uuid.uuid4().hex[:8]}",
    )
    app = celery_app(settings)
    app.conf.broker_heartbeat = 0
    queue = CeleryJobQueue(store, settings, app)
    runner = JobRunner(store, {"noop": _noop}, 60.0, RetryPolicy())
    register_run_job(app, lambda: (queue, runner))
    started = time.perf_counter()
    for i in range(n):
        queue.enqueue("noop", {"n": i})
    enqueue_rate = n / (time.perf_counter() - started)
    try:
        with start_worker(app, perform_ping_check=False, shutdown_timeout=60, loglevel="WARNING"):
            started = time.perf_counter()
            while store.counts()["succeeded"] < n:
                time.sleep(0.01)
            run_rate = n / (time.perf_counter() - started)
    finally:
        with app.connection_for_write() as connection:
            connection.default_channel.queue_delete(settings.celery_queue)
        catalog.dispose()
    return enqueue_rate, run_rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=500)
    parser.add_argument("--broker", action="append", help="Celery broker URL (repeatable)")
    args = parser.parse_args()
    brokers = args.broker or ["redis://127.0.0.1:6379/0"]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for name in ("baseline", "embedded", *brokers):
            (root / name.replace("/", "_").replace(":", "_")).mkdir()
        base = baseline(root / "baseline", args.jobs)
        print(f"baseline   SQLite write transactions        {base:8.0f} /s")
        enq, run = embedded(root / "embedded", args.jobs)
        print(
            f"embedded   enqueue {enq:7.0f} jobs/s   run (1 worker) {run:7.0f} jobs/s   ({args.jobs} no-op jobs, SQLite)"
        )
        for broker in brokers:
            enq, run = celery(root / broker.replace("/", "_").replace(":", "_"), args.jobs, broker)
            scheme = broker.split(":", 1)[0]
            print(
                f"celery     enqueue {enq:7.0f} jobs/s   run (1 worker) {run:7.0f} jobs/s   ({args.jobs} no-op jobs, SQLite, {scheme})"
            )


if __name__ == "__main__":
    main()
