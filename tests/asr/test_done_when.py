"""Issue 12's "done when" for transcription: a SIPREC call with known sentences on each side is
transcribed per channel within a minute of hang-up, on `callvault serve`'s own composition root,
with the embedded job queue (serve's worker process) and with Celery on the local Redis (a
`callvault worker` process beside the server)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from callvault.media.mixing import resample
from callvault.services.transcription_jobs import job_key
from callvault.speech.wer import word_error_rate
from tests.siprec.conftest import Recorder, as_peer, start_recorder
from tests.support.phone_line import RATE
from tests.support.processes import callvault_command, print_log
from tests.support.speech_calls import spoken_call
from tests.support.test_src import (
    RtpSender,
    Stream,
    TestSrc,
    answered_ports,
    frames_for,
    metadata_xml,
    multipart,
    sdp_offer,
    send_rtp,
)

AGENT_AOR = "sip:1001@pbx.example"
CUSTOMER_AOR = "sip:+14155550123@carrier.example"
AGENT_LINES = ("Hello, thank you for calling, how can I help you today?", "I can arrange a refund for that.")
CUSTOMER_LINES = ("I would like a refund for my broken kettle please.", "Thank you very much for your help.")
WITHIN_S = 60.0
# tiny.en through G.711 and the archive measures 10-25 % on espeak voices (bench/transcription.py).
MAX_WER = 0.35


async def siprec_call(recorder: Recorder) -> tuple[str, float]:
    """The spoken call over SIPREC (G.711); returns its recording id and when it hung up."""
    call = spoken_call(AGENT_LINES, CUSTOMER_LINES, agent_voice="en-us", customer_voice="en-gb")
    customer = Stream("1", "PCMU", sender_aor=CUSTOMER_AOR)
    agent = Stream("2", "PCMU", sender_aor=AGENT_AOR)
    content_type, body = multipart(
        sdp_offer([customer, agent]),
        metadata_xml([("cA==", CUSTOMER_AOR), ("YQ==", AGENT_AOR)], [customer, agent]),
    )
    frames = {
        customer.label: frames_for("PCMU", resample(call.right, RATE, 8000)),
        agent.label: frames_for("PCMU", resample(call.left, RATE, 8000)),
    }

    def make_call() -> tuple[str, float]:
        src = TestSrc("127.0.0.1", recorder.port, "UDP")
        try:
            response = src.invite(content_type, body)
            assert response.status == 200, response.status
            ports = answered_ports(response.body)
            send_rtp(
                [
                    RtpSender("127.0.0.1", ports[s.label], s.payload_type, frames[s.label])
                    for s in (customer, agent)
                ]
            )
            assert src.bye().status == 200
            return src.call_id, time.monotonic()
        finally:
            src.close()

    call_id, hung_up = await as_peer(make_call)
    recording_id = await recorder.recording_for(call_id)
    await recorder.finished(recording_id)
    return recording_id, hung_up


REDIS = "redis://127.0.0.1:6379/0"


@contextmanager
def celery_worker(env: dict[str, str], log_path: Path) -> Iterator[None]:
    """`callvault worker` (Celery, one solo process) on the recorder's catalog and vault."""
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [*callvault_command(), "worker", "--pool", "solo", "--concurrency", "1"],
            env={**os.environ, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)


@pytest.mark.asyncio
@pytest.mark.parametrize("queue", ["embedded", "celery-redis"])
# What is checked here is the path from hang-up to transcript, whichever the catalog; a real
# call and a real transcription each, so each queue runs on one database (embedded on serve's
# default SQLite, Celery on PostgreSQL) and both databases are still crossed end to end. The
# job queue on each database is tests/jobs's contract.
@pytest.mark.one_database_each(queue={"embedded": "sqlite", "celery-redis": "postgresql"})
async def test_a_siprec_call_is_transcribed_per_channel_within_a_minute(
    tmp_path: Path, database_url: str, queue: str
) -> None:
    data_dir = tmp_path / "data"
    settings: dict[str, str] = {"job_workers": "1"}  # serve's own worker (the default)
    if queue == "celery-redis":
        settings = {
            "job_queue": "celery",
            "celery_broker_url": REDIS,
            "celery_queue": f"callvault-test-{uuid.uuid4().hex[:12]}",
        }
    async with start_recorder(data_dir, database_url, **settings) as recorder:
        worker_log = tmp_path / "worker.log"
        env = {"CALLVAULT_DATA_DIR": str(data_dir), "CALLVAULT_DATABASE_URL": database_url}
        env.update({f"CALLVAULT_{name.upper()}": value for name, value in settings.items()})
        try:
            if queue == "embedded":
                await _scenario(recorder)
            else:
                with celery_worker(env, worker_log):
                    await _scenario(recorder)
        except BaseException:
            recorder.print_log()
            if worker_log.exists():
                print_log(worker_log, "celery worker")
            raise


async def _scenario(recorder: Recorder) -> None:
    ctx = recorder.ctx
    recording_id, hung_up = await siprec_call(recorder)
    deadline = hung_up + WITHIN_S
    while not await asyncio.to_thread(ctx.transcripts.exists, recording_id):
        jobs = await asyncio.to_thread(ctx.jobs.list, kind="transcribe")
        mine = [job for job in jobs if job.key == job_key(recording_id)]
        assert mine, "sealing the recording queued no transcribe job"
        assert mine[0].state not in ("dead", "cancelled"), mine[0]
        if time.monotonic() > deadline:
            raise AssertionError(f"not transcribed {WITHIN_S:.0f} s after hang-up: {mine[0]}")
        await asyncio.sleep(0.2)
    took = time.monotonic() - hung_up
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{recorder.http_port}/api/v1", timeout=60) as api:
        answer = await api.get(
            f"/recordings/{recording_id}/transcript", headers={"Authorization": f"Bearer {recorder.token}"}
        )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    text = {
        channel["speaker"]: " ".join(s["text"] for s in channel["segments"]) for channel in body["channels"]
    }
    agent_wer = word_error_rate(" ".join(AGENT_LINES), text["agent"])
    customer_wer = word_error_rate(" ".join(CUSTOMER_LINES), text["customer"])
    print(f"transcribed {took:.1f} s after hang-up; WER agent {agent_wer:.0%}, customer {customer_wer:.0%}")
    assert agent_wer <= MAX_WER, text
    assert customer_wer <= MAX_WER, text
    assert [turn["speaker"] for turn in body["turns"]][:2] == ["agent", "customer"]
