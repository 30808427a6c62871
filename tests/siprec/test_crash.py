"""The whole server (`callvault serve`) killed with SIGKILL mid-call: the next start keeps the audio."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from sqlalchemy import select

from callvault.db.models import Recording
from callvault.services.context import open_context
from callvault.settings import load_settings
from tests.siprec.test_calls import AGENT, CUSTOMER, DELIVERY_SLACK, _at_rate
from tests.support.audio import aligned, correlation, read_wav, voice
from tests.support.people import ADMIN
from tests.support.ports import free_port, rtp_range
from tests.support.processes import running_server, wait_for
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


def test_server_killed_mid_call_leaves_an_interrupted_recording_with_its_audio(
    tmp_path: Path, database_url: str
) -> None:
    env = {
        "CALLVAULT_DATA_DIR": str(tmp_path / "data"),
        "CALLVAULT_HTTP_PORT": str(free_port()),
        "CALLVAULT_SIP_PORT": str(free_port()),
        "CALLVAULT_RTP_PORTS": rtp_range(100),
        "CALLVAULT_LOG_LEVEL": "info",
        "CALLVAULT_DATABASE_URL": database_url,
    }
    seconds = 3.0
    agent_pcm, customer_pcm = voice(seconds, 8000, 140.0, seed=1), voice(seconds, 8000, 220.0, seed=2)
    # No agent is known to this fresh server, so label order decides: the first stream goes left.
    streams = [Stream("1", sender_aor=AGENT), Stream("2", sender_aor=CUSTOMER)]
    content_type, body = multipart(
        sdp_offer(streams), metadata_xml([("YQ==", AGENT), ("cA==", CUSTOMER)], streams)
    )
    frames = frames_for("PCMU", agent_pcm), frames_for("PCMU", customer_pcm)

    with running_server(env, tmp_path / "first.log") as process:
        src = TestSrc("127.0.0.1", int(env["CALLVAULT_SIP_PORT"]))
        try:
            response = src.invite(content_type, body)
            answered = time.monotonic()
            assert response.status == 200, response
            ports = answered_ports(response.body)
            first_sent = send_rtp(
                [
                    RtpSender("127.0.0.1", ports["1"], 0, frames[0]),
                    RtpSender("127.0.0.1", ports["2"], 0, frames[1]),
                ]
            )
            process.kill()  # SIGKILL mid-call: no BYE, no clean shutdown
            process.wait(timeout=10)
        finally:
            src.close()
    lead_in = first_sent - answered

    with running_server(env, tmp_path / "second.log"):
        ctx = open_context(load_settings(env=env))
        try:

            def recovered() -> bool:
                with ctx.catalog.read() as session:
                    statuses = [r.status for r in session.scalars(select(Recording))]
                assert len(statuses) == 1, statuses
                return statuses == ["interrupted"]

            wait_for(recovered, 60, "the interrupted recording to be finalised on restart")
            with ctx.catalog.read() as session:
                recording = session.scalars(select(Recording)).one()
                recording_id = recording.id
            audio, rate = read_wav(ctx.playback.open_audio(ADMIN, recording_id, fmt="wav").read())
        finally:
            ctx.close()
    # The journal is flushed at least once a second, less the last 0.25 s of each stream held back
    # while keypad digits are watched (PCI pause): at most ~1.25 s of the 3 s can be lost.
    assert audio.shape[0] == 2 and audio.shape[1] / rate >= 1.7, audio.shape
    # The recording starts before our 200 reached the SRC: by a delivery delay at most.
    assert audio.shape[1] / rate <= lead_in + seconds + DELIVERY_SLACK
    agent_ref, customer_ref = agent_pcm.astype(np.float64), customer_pcm.astype(np.float64)
    # The audio starts lead_in after our 200 reached the SRC, and a delivery delay or less later.
    skip = round(lead_in * 8000)
    left, right = (_at_rate(channel, rate, 8000) for channel in audio)
    start = left.size - aligned(left, agent_ref, skip, skip + round(DELIVERY_SLACK * 8000)).size
    left, right = left[start:], right[start:]
    lag = int(8000 * 0.03)
    assert correlation(left, agent_ref, max_lag=lag) >= 0.9
    assert correlation(right, customer_ref, max_lag=lag) >= 0.9
    assert correlation(left, customer_ref, max_lag=lag) < 0.5
