"""A SIPREC call held open by the test SRC while a test acts on it (pause, resume, keep, consent).

:func:`open_call` INVITEs the recorder with an agent and a customer stream
(G.711) and returns once the call is answered; the test then sends RTP on
its own schedule (:meth:`LiveCall.send`, in real time) and hangs up with
:meth:`LiveCall.hang_up`. Everything here blocks: run it in a peer thread
(``tests.siprec.conftest.as_peer``).
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

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

AGENT = "sip:1001@pbx.example"  # alice (tests.siprec.conftest.create_recorder_staff)
CUSTOMER = "sip:+14155550199@carrier.example"


@dataclass
class LiveCall:
    src: TestSrc
    ports: dict[str, int]  # "agent" / "customer" -> the recorder's RTP port
    answered: float  # time.monotonic() when the 200 arrived
    encoding: str = "PCMU"
    sent_frames: int = 0  # frames sent on each stream so far
    late_s: float = 0.0  # how far behind real time the sender fell (a stall on a loaded machine)
    _sequence: dict[str, tuple[int, int, int]] = field(default_factory=dict)
    # One socket per stream for the whole call: the recorder latches a stream to its first source.
    _sockets: dict[str, socket.socket] = field(default_factory=dict)

    @property
    def call_id(self) -> str:
        return self.src.call_id

    def send(
        self,
        agent: npt.NDArray[np.int16],
        customer: npt.NDArray[np.int16],
        customer_digits: tuple[tuple[int, int, int], ...] = (),
    ) -> float:
        """Send 8 kHz audio on both streams, paced in real time, continuing each stream's SSRC,
        sequence numbers and timestamps; returns when (``time.monotonic``) the first packets left."""
        senders = []
        for label, pcm, digits in (("agent", agent, ()), ("customer", customer, customer_digits)):
            ssrc, seq, ts = self._sequence.setdefault(label, (0x1000 + len(label), 1000, 16000))
            frames = frames_for(self.encoding, pcm)
            senders.append(
                RtpSender(
                    "127.0.0.1",
                    self.ports[label],
                    0 if self.encoding == "PCMU" else 8,
                    frames,
                    ssrc=ssrc,
                    digits=digits,
                    first_seq=seq,
                    first_ts=ts,
                )
            )
            self._sequence[label] = (
                ssrc,
                (seq + len(frames)) & 0xFFFF,
                (ts + 160 * len(frames)) & 0xFFFFFFFF,
            )
        for label in ("agent", "customer"):
            if label not in self._sockets:
                self._sockets[label] = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                self._sockets[label].bind(("127.0.0.1", 0))
        lateness: list[float] = []
        started = send_rtp(
            senders, sockets=[self._sockets["agent"], self._sockets["customer"]], lateness=lateness
        )
        self.late_s = max([self.late_s, *lateness])
        self.sent_frames += len(senders[0].frames)
        return started

    def hang_up(self) -> float:
        """BYE; returns when it left (``time.monotonic``)."""
        left = time.monotonic()
        assert self.src.bye().status == 200
        self.src.close()
        for sock in self._sockets.values():
            sock.close()
        return left


def open_call(port: int, *, ucid: str | None = None, encoding: str = "PCMU") -> LiveCall:
    """INVITE the recorder on UDP ``port`` with an agent and a customer stream; ACKed and answered."""
    agent = Stream("agent", encoding, sender_aor=AGENT)
    customer = Stream("customer", encoding, sender_aor=CUSTOMER)
    streams = [agent, customer]
    xml = metadata_xml([("YQ==", AGENT), ("cA==", CUSTOMER)], streams)
    if ucid is not None:
        xml = xml.replace(
            "<sipSessionID>abc</sipSessionID>",
            f"<sipSessionID>abc</sipSessionID><extensiondata><ucid>{ucid}</ucid></extensiondata>",
        )
    content_type, body = multipart(sdp_offer(streams), xml)
    src = TestSrc("127.0.0.1", port)
    response = src.invite(content_type, body)
    assert response.status == 200, (response.status, response.reason)
    return LiveCall(src, answered_ports(response.body), time.monotonic(), encoding)
