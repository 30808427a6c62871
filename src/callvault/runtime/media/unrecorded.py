"""Calls a recording rule leaves unrecorded: answered, watched for their end, never written.

A ``do_not_record`` call (or one a ``sample`` rule left out) is still a SIPREC
session: the SRC gets its 200 with RTP ports, so it does not retry or fail
over, and the call is catalogued with its participants and times. Its audio
goes nowhere: the ports are not handed to capture, no journal is opened (not a
byte in the spool), and once a second :meth:`UnrecordedCalls.drain` reads
whatever queued on them and drops it, only to notice when it stops: a call
whose RTP stopped for ``rtp_timeout`` seconds ends, as a recorded one does
(BYE and session-timer expiry end it through the SIP side as usual).
"""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass, field

from callvault.services.call_record import CallEvent

log = logging.getLogger(__name__)

MAX_DATAGRAM = 2048
# Datagrams read from one socket per drain: more than a second of packets at 20 ms means a flood,
# and the rest are dropped by the kernel when its buffer fills.
MAX_READS = 200


@dataclass
class UnrecordedStream:
    label: str
    sock: socket.socket
    index: int


@dataclass(eq=False)
class UnrecordedSession:
    """The passive handle the SIP side holds for an unrecorded call (like a MediaSession's)."""

    recording_id: str
    started_at: float
    last_activity: float
    streams: dict[str, UnrecordedStream] = field(default_factory=dict)
    events: list[CallEvent] = field(default_factory=list)  # joins and leaves, not written anywhere
    closing: bool = False
    timed_out: bool = False


class UnrecordedCalls:
    def __init__(self, rtp_timeout: float) -> None:
        self._rtp_timeout = rtp_timeout
        self._sessions: dict[str, UnrecordedSession] = {}

    def __contains__(self, recording_id: object) -> bool:
        return recording_id in self._sessions

    def __len__(self) -> int:
        return len(self._sessions)

    def ids(self) -> list[str]:
        return list(self._sessions)

    def open(self, recording_id: str, started_at: float, now: float) -> UnrecordedSession:
        if recording_id in self._sessions:
            raise ValueError(f"recording {recording_id} already has a session")
        session = UnrecordedSession(recording_id, started_at, now)
        self._sessions[recording_id] = session
        return session

    def is_live(self, recording_id: str) -> bool:
        session = self._sessions.get(recording_id)
        return session is not None and not session.closing

    def add_stream(self, recording_id: str, label: str, sock: socket.socket) -> int:
        session = self._sessions[recording_id]
        if label in session.streams:
            raise ValueError(f"stream {label!r} already exists")
        sock.setblocking(False)
        session.streams[label] = UnrecordedStream(label, sock, len(session.streams))
        port: int = sock.getsockname()[1]
        return port

    def record_event(self, recording_id: str, event: CallEvent) -> None:
        self._sessions[recording_id].events.append(event)

    def close(self, recording_id: str) -> UnrecordedSession | None:
        """Forget the call; its sockets are the caller's to release."""
        session = self._sessions.pop(recording_id, None)
        if session is not None:
            session.closing = True
        return session

    def drain(self, now: float) -> list[str]:
        """Read and drop what queued on every unrecorded call's ports; the calls silent for
        ``rtp_timeout`` seconds (each reported once)."""
        silent: list[str] = []
        for session in self._sessions.values():
            if session.closing:
                continue
            if any(drain(stream.sock) for stream in session.streams.values()):
                session.last_activity = now
            elif not session.timed_out and now - session.last_activity >= self._rtp_timeout:
                session.timed_out = True
                silent.append(session.recording_id)
        return silent


def drain(sock: socket.socket) -> bool:
    """Read and drop what the socket holds; True if anything was there."""
    fd = sock.fileno()
    got = False
    for _ in range(MAX_READS):
        try:
            os.read(fd, MAX_DATAGRAM)
        except (BlockingIOError, InterruptedError):
            return got
        except OSError as exc:
            # An ICMP error report from an earlier send, or the socket closing under us.
            log.debug("unrecorded call: read failed: %s", exc)
            return got
        got = True
    return got
