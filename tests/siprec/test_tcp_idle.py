"""SIP over TCP: a silent connection without a call is closed after CALLVAULT_SIP_TCP_IDLE_TIMEOUT,
one carrying a call stays open however quiet its signalling is (the BYE travels on it)."""

from __future__ import annotations

import socket
import time
from pathlib import Path

from tests.siprec.conftest import as_peer, start_recorder
from tests.siprec.test_calls import AGENT, CUSTOMER
from tests.support.audio import voice
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

IDLE = 1  # seconds, the setting under test


def _closed_after(port: int, within: float) -> float:
    """Connect, say nothing, and return how long until the recorder closes the connection."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        opened = time.monotonic()
        sock.settimeout(within)
        try:
            data = sock.recv(1024)
        except TimeoutError:
            raise AssertionError(f"an idle connection was still open after {within} s") from None
        assert data == b"", data
        return time.monotonic() - opened


async def test_idle_tcp_connection_without_a_call_is_closed(tmp_path: Path, database_url: str) -> None:
    async with start_recorder(tmp_path / "data", database_url, sip_tcp_idle_timeout=str(IDLE)) as recorder:
        assert recorder.server.tcp_port is not None
        port = recorder.server.tcp_port
        closed_after = await as_peer(lambda: _closed_after(port, 20))
        assert closed_after >= IDLE - 0.05, closed_after  # not before its time


async def test_quiet_tcp_connection_carrying_a_call_stays_open(tmp_path: Path, database_url: str) -> None:
    seconds = 3 * IDLE
    streams = [Stream("1", sender_aor=AGENT), Stream("2", sender_aor=CUSTOMER)]
    content_type, body = multipart(
        sdp_offer(streams), metadata_xml([("YQ==", AGENT), ("cA==", CUSTOMER)], streams)
    )
    frames = frames_for("PCMU", voice(seconds, 8000, 140.0, seed=1))

    async with start_recorder(tmp_path / "data", database_url, sip_tcp_idle_timeout=str(IDLE)) as recorder:
        assert recorder.server.tcp_port is not None
        port = recorder.server.tcp_port

        def call() -> int:
            src = TestSrc("127.0.0.1", port, "TCP")
            try:
                answer = src.invite(content_type, body)
                assert answer.status == 200
                ports = answered_ports(answer.body)
                # Three idle timeouts of audio and not one SIP byte on the connection.
                send_rtp(
                    [
                        RtpSender("127.0.0.1", ports["1"], 0, frames),
                        RtpSender("127.0.0.1", ports["2"], 0, frames),
                    ]
                )
                return src.bye().status
            finally:
                src.close()

        assert await as_peer(call) == 200
        recording = await recorder.finished(next(iter(recorder.server.recording_ids.values())))
        assert recording.status == "complete"
