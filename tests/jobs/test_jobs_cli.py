"""`callvault jobs list|cancel|retry|selftest` and `callvault worker` as an operator runs them.

The `jobs` commands run in the test process through the console script's entry point
(tests.support.cli: what a command does, without seconds of interpreter start-up each);
the worker is a real `callvault worker` process, as it must be to run the job."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

from callvault.services.context import open_context
from callvault.settings import load_settings
from tests.support.cli import invoke_cli
from tests.support.processes import callvault_command, print_log


def test_list_cancel_retry_and_refusals(data_dir: Path, database_url: str) -> None:
    env = {"CALLVAULT_DATA_DIR": str(data_dir), "CALLVAULT_DATABASE_URL": database_url}
    ctx = open_context(load_settings(env=env))
    try:
        job = ctx.jobs.enqueue("transcribe", {"recording_id": "r-1"}, subject="r-1")
    finally:
        ctx.close()
    listed = invoke_cli(["jobs", "list", "--json", "--state", "queued"], env)
    assert listed.returncode == 0, listed.stderr
    body = json.loads(listed.stdout)
    assert [(item["id"], item["kind"]) for item in body["items"]] == [(job.id, "transcribe")]
    assert body["counts"]["queued"] == 1
    cancelled = invoke_cli(["jobs", "cancel", str(job.id)], env)
    assert cancelled.returncode == 0 and f"job {job.id}: cancelled" in cancelled.stdout
    again = invoke_cli(["jobs", "cancel", str(job.id)], env)
    assert again.returncode != 0 and "already ended (cancelled)" in again.stderr
    retried = invoke_cli(["jobs", "retry", str(job.id)], env)
    assert retried.returncode == 0 and f"job {job.id}: queued" in retried.stdout
    missing = invoke_cli(["jobs", "retry", "999999"], env)
    assert missing.returncode != 0 and "job not found" in missing.stderr
    bad = invoke_cli(["jobs", "list", "--state", "exploded"], env)
    assert bad.returncode != 0 and "unknown job state 'exploded'" in bad.stderr


def test_selftest_waits_for_a_worker(data_dir: Path, database_url: str, tmp_path: Path) -> None:
    env = {"CALLVAULT_DATA_DIR": str(data_dir), "CALLVAULT_DATABASE_URL": database_url}
    nobody = invoke_cli(["jobs", "selftest", "--wait", "1"], env)
    assert nobody.returncode == 1 and "no worker ran it within 1 s" in nobody.stderr
    log_path = tmp_path / "worker.log"
    with log_path.open("wb") as log:
        worker = subprocess.Popen(
            [*callvault_command(), "worker"], env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        ran = invoke_cli(["jobs", "selftest", "--wait", "90"], env)
        assert ran.returncode == 0 and "succeeded" in ran.stdout, ran.stderr
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(30) == 0
    except BaseException:
        print_log(log_path, "worker")
        raise
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
