"""SIPREC calls against `callvault serve` itself: the console script in a subprocess, on uvloop.

These are the tests that would have caught SIP over TCP and TLS failing under
`serve` while the in-process tests passed: each transport makes a real call
to the real server, with capture and render worker processes as deployed.
They also hold the README to its word: a call is sealed about a second after
hang-up, a SIGTERM BYEs and seals every open call before the process exits,
and after a ``kill -9`` no process of the server lives on.
"""

from __future__ import annotations

import os
import signal
import ssl
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sqlalchemy import select

from callvault.db.models import CallIdentifier, Recording
from callvault.services.context import ServiceContext, open_context
from callvault.settings import load_settings
from tests.siprec.test_calls import AGENT, CUSTOMER, DELIVERY_SLACK, _at_rate, _self_signed
from tests.support.audio import aligned, correlation, read_wav, voice
from tests.support.people import ADMIN
from tests.support.ports import free_port, rtp_range
from tests.support.processes import alive, descendants, running_server, wait_for
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

# "Sealed about a second after hang-up" (README), with room for a loaded 2-core machine.
SEALED_WITHIN = 4.0
STOP_TIMEOUT = 20  # CALLVAULT_STOP_TIMEOUT given to the server under test
GONE_WITHIN = 10.0  # after kill -9, for every process the server had started


def _serve_env(tmp_path: Path, database_url: str, **extra: str) -> dict[str, str]:
    cert, key = _self_signed(tmp_path)
    env = {
        "CALLVAULT_DATA_DIR": str(tmp_path / "data"),
        "CALLVAULT_HTTP_PORT": str(free_port()),
        "CALLVAULT_SIP_PORT": str(free_port()),
        "CALLVAULT_SIP_TLS_PORT": str(free_port()),
        "CALLVAULT_SIP_TLS_CERT": str(cert),
        "CALLVAULT_SIP_TLS_KEY": str(key),
        "CALLVAULT_RTP_PORTS": rtp_range(100),
        "CALLVAULT_LOG_LEVEL": "info",
        "CALLVAULT_DATABASE_URL": database_url,
        "CALLVAULT_STOP_TIMEOUT": str(STOP_TIMEOUT),
        # Two capture worker processes, as a deployment past one core runs.
        "CALLVAULT_MEDIA_WORKERS": "2",
    }
    env.update({f"CALLVAULT_{name.upper()}": value for name, value in extra.items()})
    return env


@dataclass
class Placed:
    call_id: str
    agent: np.ndarray
    customer: np.ndarray
    lead_in: float  # 200 arrived → first RTP sent
    src: TestSrc


def _place_call(env: dict[str, str], transport: str, seconds: float) -> Placed:
    """INVITE over ``transport``, then ``seconds`` of two-party PCMU; the call stays up."""
    port = int(env["CALLVAULT_SIP_TLS_PORT" if transport == "TLS" else "CALLVAULT_SIP_PORT"])
    tls = ssl.create_default_context(cafile=env["CALLVAULT_SIP_TLS_CERT"]) if transport == "TLS" else None
    agent_pcm, customer_pcm = voice(seconds, 8000, 140.0, seed=1), voice(seconds, 8000, 220.0, seed=2)
    # No agent is known to this fresh server, so label order decides: the first stream goes left.
    streams = [Stream("1", sender_aor=AGENT), Stream("2", sender_aor=CUSTOMER)]
    content_type, body = multipart(
        sdp_offer(streams), metadata_xml([("YQ==", AGENT), ("cA==", CUSTOMER)], streams)
    )
    frames = frames_for("PCMU", agent_pcm), frames_for("PCMU", customer_pcm)
    src = TestSrc("127.0.0.1", port, transport, tls=tls)
    response = src.invite(content_type, body)
    answered = time.monotonic()
    assert response.status == 200, (transport, response)
    ports = answered_ports(response.body)
    first_sent = send_rtp(
        [RtpSender("127.0.0.1", ports["1"], 0, frames[0]), RtpSender("127.0.0.1", ports["2"], 0, frames[1])]
    )
    return Placed(src.call_id, agent_pcm, customer_pcm, first_sent - answered, src)


def _recording_of(ctx: ServiceContext, call_id: str) -> Recording | None:
    with ctx.catalog.read() as session:
        recording = session.scalars(
            select(Recording)
            .join(CallIdentifier, CallIdentifier.call_id == Recording.call_id)
            .where(CallIdentifier.kind == "sip_call_id", CallIdentifier.value == call_id)
        ).one_or_none()
        if recording is not None:
            session.expunge(recording)
        return recording


def _sealed(ctx: ServiceContext, call_id: str, within: float) -> Recording:
    found: list[Recording] = []

    def done() -> bool:
        recording = _recording_of(ctx, call_id)
        if recording is not None and recording.status != "recording":
            found.append(recording)
            return True
        return False

    wait_for(done, within, f"the recording of call {call_id} to be sealed")
    return found[0]


def _check_audio(ctx: ServiceContext, recording: Recording, placed: Placed, seconds: float) -> None:
    audio, rate = read_wav(ctx.playback.open_audio(ADMIN, recording.id, fmt="wav").read())
    assert audio.shape[0] == 2 and audio.shape[1] / rate >= seconds - 0.025, audio.shape
    skip = round(placed.lead_in * 8000)
    left, right = (_at_rate(channel, rate, 8000) for channel in audio)
    agent = placed.agent.astype(np.float64)
    start = left.size - aligned(left, agent, skip, skip + round(DELIVERY_SLACK * 8000)).size
    left, right = left[start:], right[start:]
    lag = int(8000 * 0.03)
    assert correlation(left, placed.agent.astype(np.float64), max_lag=lag) >= 0.9
    assert correlation(right, placed.customer.astype(np.float64), max_lag=lag) >= 0.9


@contextmanager
def _catalog(env: dict[str, str]) -> Iterator[ServiceContext]:
    ctx = open_context(load_settings(env=env))
    try:
        yield ctx
    finally:
        ctx.close()


def test_serve_records_calls_over_udp_tcp_and_tls_and_seals_each_soon_after_hang_up(
    tmp_path: Path, database_url: str
) -> None:
    env = _serve_env(tmp_path, database_url)
    seconds = 1.5
    with running_server(env, tmp_path / "serve.log"), _catalog(env) as ctx:
        for transport in ("UDP", "TCP", "TLS"):
            placed = _place_call(env, transport, seconds)
            try:
                assert placed.src.bye().status == 200, transport
                hung_up = time.monotonic()
                recording = _sealed(ctx, placed.call_id, SEALED_WITHIN)
                sealed_after = time.monotonic() - hung_up
            finally:
                placed.src.close()
            assert recording.status == "complete", (transport, recording.status)
            print(f"{transport}: sealed {sealed_after:.2f} s after the BYE was answered")
            _check_audio(ctx, recording, placed, seconds)


def test_sigterm_byes_and_seals_open_calls_then_exits(tmp_path: Path, database_url: str) -> None:
    env = _serve_env(tmp_path, database_url)
    seconds = 2.0
    with running_server(env, tmp_path / "serve.log") as process, _catalog(env) as ctx:
        calls = [_place_call(env, transport, seconds) for transport in ("UDP", "TCP")]
        try:
            signalled = time.monotonic()
            process.send_signal(signal.SIGTERM)
            byes = [placed.src.wait_request("BYE", timeout=STOP_TIMEOUT) for placed in calls]
            code = process.wait(timeout=STOP_TIMEOUT + 5)
            stopped_after = time.monotonic() - signalled
        finally:
            for placed in calls:
                placed.src.close()
        assert code == 0, code
        assert stopped_after <= STOP_TIMEOUT, stopped_after
        assert all(b"recording ended by the recorder" in bye for bye in byes), byes
        print(f"SIGTERM with {len(calls)} open calls: exited after {stopped_after:.2f} s")
        for placed in calls:
            recording = _recording_of(ctx, placed.call_id)
            assert recording is not None and recording.status == "interrupted", recording
            _check_audio(ctx, recording, placed, seconds)
        assert not list((tmp_path / "data" / "spool").glob("*.spool"))


def test_no_process_of_the_server_survives_kill_9(tmp_path: Path, database_url: str) -> None:
    env = _serve_env(tmp_path, database_url)
    with running_server(env, tmp_path / "serve.log") as process:
        # One call hung up: its seal runs in a render worker, so the fork server, the render
        # workers and the resource tracker exist, besides the two capture workers.
        placed = _place_call(env, "UDP", 0.5)
        try:
            assert placed.src.bye().status == 200
        finally:
            placed.src.close()
        with _catalog(env) as ctx:
            _sealed(ctx, placed.call_id, 30)
        children = descendants(process.pid)
        assert len(children) >= 4, children  # capture workers, fork server, render worker(s)
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=10)

        def all_gone() -> bool:
            return not [pid for pid, started in children.items() if alive(pid, started)]

        try:
            wait_for(all_gone, GONE_WITHIN, "every process the killed server started to exit")
        finally:
            for pid, started in children.items():
                if alive(pid, started):
                    os.kill(pid, signal.SIGKILL)  # leave no orphan behind even when failing
    assert process.returncode == -signal.SIGKILL
