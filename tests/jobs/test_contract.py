"""The JobQueue contract, run against every implementation (embedded; Celery on Redis and
RabbitMQ), each on SQLite and PostgreSQL catalogs.

The clock is the test's: backoff is checked by moving it, not by waiting. Jobs whose
handler must be seen mid-run (progress, cancel) run in a thread while the test
watches the catalog.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from callvault.db.job_models import JobRow
from callvault.jobs.port import JobFailed, Progress
from callvault.runtime.jobs.selftest import selftest_dir
from callvault.services.context import ServiceContext
from tests.jobs.harness import Harness, celery_harness, embedded_harness, failing, recorder
from tests.support.processes import callvault_command, print_log, wait_for

BACKENDS = ["embedded", "celery-redis", "celery-rabbitmq"]


@pytest.fixture(params=BACKENDS)
def harness(request: pytest.FixtureRequest, ctx: ServiceContext) -> Iterator[Harness]:
    backend: str = request.param
    if backend == "embedded":
        with embedded_harness(ctx) as made:
            yield made
    else:
        with celery_harness(ctx, backend.removeprefix("celery-")) as made:
            yield made


def _state(harness: Harness, job_id: int) -> str:
    job = harness.queue.get(job_id)
    assert job is not None
    return job.state


def test_enqueue_get_and_list_by_state_and_kind(harness: Harness) -> None:
    first = harness.queue.enqueue("alpha", {"n": 1}, subject="rec-1")
    second = harness.queue.enqueue("beta", {"n": 2})
    assert first.state == "queued" and first.attempts == 0 and first.payload == {"n": 1}
    assert first.subject == "rec-1" and first.progress == 0.0 and first.error is None
    assert harness.queue.get(first.id) == first
    assert harness.queue.get(first.id + second.id + 1000) is None
    assert [j.id for j in harness.queue.list(kind="alpha")] == [first.id]
    assert [j.id for j in harness.queue.list(state="queued")] == [second.id, first.id]
    assert harness.queue.list(state="dead") == []
    assert harness.queue.counts()["queued"] == 2


def test_an_idempotency_key_gives_the_first_job_and_runs_it_once(harness: Harness) -> None:
    ran: list[tuple[str, Mapping[str, Any]]] = []
    harness.handlers["alpha"] = recorder(ran, "alpha")
    first = harness.queue.enqueue("alpha", {"n": 1}, key="transcribe:rec-1")
    again = harness.queue.enqueue("alpha", {"n": 2}, key="transcribe:rec-1")
    assert again.id == first.id and again.payload == {"n": 1}
    harness.run_due()
    assert ran == [("alpha", {"n": 1})]
    # Still the same job once it has finished: the key is never reused.
    assert harness.queue.enqueue("alpha", {"n": 3}, key="transcribe:rec-1").id == first.id
    harness.run_due()
    assert len(ran) == 1


def test_higher_priority_runs_first_then_oldest(harness: Harness) -> None:
    ran: list[tuple[str, Mapping[str, Any]]] = []
    harness.handlers["alpha"] = recorder(ran, "alpha")
    for n, priority in ((1, 0), (2, 5), (3, 0), (4, 9)):
        harness.queue.enqueue("alpha", {"n": n}, priority=priority)
    harness.run_due()
    assert [payload["n"] for _, payload in ran] == [4, 2, 1, 3]


def test_a_failure_is_retried_after_an_exponential_backoff(harness: Harness) -> None:
    calls: list[int] = []

    def flaky(_payload: Mapping[str, Any], _progress: Progress) -> None:
        calls.append(1)
        if len(calls) < 3:
            raise RuntimeError(f"transient {len(calls)}")

    harness.handlers["flaky"] = flaky
    job = harness.queue.enqueue("flaky", {})
    harness.run_due()
    failed = harness.queue.get(job.id)
    assert failed is not None and failed.state == "failed" and failed.attempts == 1
    assert failed.error == "RuntimeError: transient 1"
    assert failed.run_after == harness.clock() + _seconds(10)
    harness.clock.advance(9.5)
    harness.run_due()
    assert len(calls) == 1  # not before its time
    harness.clock.advance(0.5)
    harness.run_due()
    second = harness.queue.get(job.id)
    assert second is not None and second.state == "failed" and second.attempts == 2
    assert second.run_after == harness.clock() + _seconds(20)  # doubled
    harness.clock.advance(20)
    harness.run_due()
    done = harness.queue.get(job.id)
    assert done is not None and done.state == "succeeded" and done.attempts == 3 and done.progress == 1.0
    assert len(calls) == 3


def test_a_job_that_keeps_failing_ends_dead_with_its_reason_and_the_rest_runs(harness: Harness) -> None:
    ran: list[tuple[str, Mapping[str, Any]]] = []
    harness.handlers["broken"] = failing("the model file is corrupt")
    harness.handlers["alpha"] = recorder(ran, "alpha")
    broken = harness.queue.enqueue("broken", {}, max_attempts=3, priority=5)
    fine = [harness.queue.enqueue("alpha", {"n": n}) for n in range(3)]
    for _ in range(3):
        harness.run_due()
        harness.clock.advance(60)
    dead = harness.queue.get(broken.id)
    assert dead is not None and dead.state == "dead" and dead.attempts == 3
    assert dead.error == "gave up after 3 attempts: RuntimeError: the model file is corrupt"
    assert [_state(harness, job.id) for job in fine] == ["succeeded"] * 3
    assert harness.queue.counts()["dead"] == 1


def test_a_permanent_failure_and_an_unknown_kind_are_dead_at_once(harness: Harness) -> None:
    harness.handlers["gone"] = failing("recording rec-9 was deleted", JobFailed)
    gone = harness.queue.enqueue("gone", {})
    unknown = harness.queue.enqueue("no.such.kind", {})
    harness.run_due()
    for job_id, reason in (
        (gone.id, "recording rec-9 was deleted"),
        (unknown.id, "no handler for job kind 'no.such.kind' in this build"),
    ):
        job = harness.queue.get(job_id)
        assert job is not None and (job.state, job.attempts, job.error) == ("dead", 1, reason)


def test_progress_is_visible_while_the_job_runs(harness: Harness) -> None:
    release = threading.Event()

    def halfway(_payload: Mapping[str, Any], progress: Progress) -> None:
        progress(0.5)
        assert release.wait(30)

    harness.handlers["halfway"] = halfway
    job = harness.queue.enqueue("halfway", {})
    runner = threading.Thread(target=harness.run_due)
    runner.start()
    try:
        wait_for(lambda: _progress(harness, job.id) == 0.5, 20, "progress 0.5 in the catalog")
        assert _state(harness, job.id) == "running"
    finally:
        release.set()
        runner.join(30)
    assert _state(harness, job.id) == "succeeded"


def test_cancel_stops_a_waiting_job_and_a_running_one(harness: Harness) -> None:
    ran: list[tuple[str, Mapping[str, Any]]] = []
    harness.handlers["alpha"] = recorder(ran, "alpha")
    seen_cancel = threading.Event()

    def patient(_payload: Mapping[str, Any], progress: Progress) -> None:
        while not progress.cancelled():
            threading.Event().wait(0.02)
        seen_cancel.set()

    harness.handlers["patient"] = patient
    waiting = harness.queue.enqueue("alpha", {})
    cancelled = harness.queue.cancel(waiting.id)
    assert cancelled is not None and cancelled.state == "cancelled"
    running = harness.queue.enqueue("patient", {})
    runner = threading.Thread(target=harness.run_due)
    runner.start()
    try:
        wait_for(lambda: _state(harness, running.id) == "running", 20, "the job to run")
        assert harness.queue.cancel(running.id) is not None
        assert seen_cancel.wait(20), "the handler never saw the cancel"
    finally:
        runner.join(30)
    job = harness.queue.get(running.id)
    assert job is not None and job.state == "cancelled" and job.error == "cancelled by an operator"
    assert ran == []
    assert harness.queue.cancel(10_000_000) is None


def test_a_dead_job_is_retried_by_hand_and_a_finished_one_is_left_alone(harness: Harness) -> None:
    outcome = {"fail": True}

    def fixed_later(_payload: Mapping[str, Any], _progress: Progress) -> None:
        if outcome["fail"]:
            raise JobFailed("model path missing")

    harness.handlers["fixable"] = fixed_later
    job = harness.queue.enqueue("fixable", {})
    harness.run_due()
    assert _state(harness, job.id) == "dead"
    outcome["fail"] = False  # the operator fixed the model path
    retried = harness.queue.retry(job.id)
    assert retried is not None and (retried.state, retried.attempts) == ("queued", 0)
    harness.run_due()
    done = harness.queue.get(job.id)
    assert done is not None and (done.state, done.attempts, done.error) == ("succeeded", 1, None)
    again = harness.queue.retry(job.id)
    assert again is not None and again.state == "succeeded"
    assert harness.queue.retry(10_000_000) is None


def test_enqueue_in_a_transaction_exists_only_if_it_commits(harness: Harness) -> None:
    catalog = harness.store.catalog
    with pytest.raises(RuntimeError), catalog.write() as session:
        harness.queue.enqueue_in(session, "alpha", {"n": 1}, key="rolled-back")
        raise RuntimeError("the seal failed")
    with catalog.write() as session:
        kept = harness.queue.enqueue_in(session, "alpha", {"n": 2}, key="committed")
    with catalog.read() as session:
        assert session.scalars(select(JobRow.key)).all() == ["committed"]
    assert harness.queue.get(kept.id) is not None


def test_the_oldest_waiting_job_age_counts_only_jobs_that_can_run(harness: Harness) -> None:
    assert harness.queue.oldest_queued_age_s() is None
    harness.queue.enqueue("alpha", {})
    harness.clock.advance(42)
    assert harness.queue.oldest_queued_age_s() == pytest.approx(42)
    harness.handlers["alpha"] = recorder([], "alpha")
    harness.run_due()
    assert harness.queue.oldest_queued_age_s() is None


def test_a_lost_lease_is_claimed_again_and_the_first_worker_cannot_finish_it(harness: Harness) -> None:
    job = harness.queue.enqueue("alpha", {})
    first = harness.store.claim(job.id, "worker-a", 30)
    assert first is not None and harness.store.claim(job.id, "worker-b", 30) is None
    harness.clock.advance(31)  # worker-a died: no heartbeat
    second = harness.store.claim_next("worker-b", 30)
    assert second is not None and second.job.id == job.id and second.job.attempts == 2
    assert not harness.store.finish(first, "succeeded")
    assert harness.store.finish(second, "succeeded")
    assert _state(harness, job.id) == "succeeded"


def test_a_job_whose_worker_died_on_its_last_attempt_is_dead(harness: Harness) -> None:
    job = harness.queue.enqueue("alpha", {}, max_attempts=1)
    assert harness.store.claim_next("worker-a", 30) is not None
    harness.clock.advance(31)
    assert harness.store.claim_next("worker-b", 30) is None
    dead = harness.queue.get(job.id)
    assert dead is not None and dead.state == "dead" and "worker stopped" in (dead.error or "")


@pytest.mark.parametrize(
    ("kind", "options", "message"),
    [
        ("", {}, "job kind"),
        ("k" * 81, {}, "job kind"),
        ("alpha", {"key": "k" * 201}, "idempotency key"),
        ("alpha", {"max_attempts": 0}, "max_attempts"),
        ("alpha", {"subject": "s" * 121}, "subject"),
    ],
)
def test_bad_requests_are_refused_precisely(
    harness: Harness, kind: str, options: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        harness.queue.enqueue(kind, {}, **options)
    assert harness.queue.list() == []


def _progress(harness: Harness, job_id: int) -> float:
    job = harness.queue.get(job_id)
    return job.progress if job is not None else -1.0


def _seconds(value: float) -> Any:
    from datetime import timedelta

    return timedelta(seconds=value)


def test_a_worker_killed_mid_job_loses_nothing_and_the_output_is_written_once(
    harness: Harness, ctx: ServiceContext, tmp_path: Path
) -> None:
    """`callvault worker` processes on the real clock: kill -9 the one running the job; the
    next one runs it again once its lease has run out, and it completes once."""
    queue = harness.real_clock_queue()
    job = queue.enqueue("selftest", {"token": "killed", "hold_first_s": 300})
    ran, done = (selftest_dir(ctx.settings.data_dir) / f"killed.{suffix}" for suffix in ("attempts", "done"))
    env = {
        "CALLVAULT_DATA_DIR": str(ctx.settings.data_dir),
        "CALLVAULT_DATABASE_URL": ctx.settings.database_url,
        "CALLVAULT_JOB_VISIBILITY_TIMEOUT": "2",
        "CALLVAULT_LOG_LEVEL": "info",
        **harness.worker_env(),
    }
    with _worker(env, tmp_path / "first.log") as first:
        wait_for(lambda: _lines(ran) == 1 and _state(harness, job.id) == "running", 60, "the job to start")
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(10)
    assert not done.exists()
    with _worker(env, tmp_path / "second.log"):
        wait_for(lambda: _state(harness, job.id) == "succeeded", 90, "the job to be retried and complete")
    finished = queue.get(job.id)
    assert finished is not None and finished.attempts == 2 and finished.error is None
    assert _lines(ran) == 2 and _lines(done) == 1


@contextmanager
def _worker(env: dict[str, str], log_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [*callvault_command(), "worker", "--pool", "solo", "--concurrency", "1"],
            env={**os.environ, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: kill -9 takes all of it
        )
        try:
            yield process
        except BaseException:
            print_log(log_path, "worker")
            raise
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(30)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()


def _lines(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0
