"""The capture loop: packets reach the journal within the flush interval; RTP timeouts fire."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from tests.media_runtime.journals import create_journal, read_journal

from callvault.runtime.media.capture import CaptureLoop
from callvault.storage.spool import SpoolContents


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self.now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.now += seconds


def wait_for(condition: Callable[[], bool], what: str, deadline: float = 5.0) -> None:
    end = time.monotonic() + deadline
    while not condition():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.005)


def buffered(loop: CaptureLoop, key: str, stream: int = 0) -> int:
    """Packets read but not yet flushed on a stream of session ``key``."""
    session = loop._sessions.get(key)
    if session is None or len(session.streams) <= stream:
        return 0
    return len(session.streams[stream].buffer) // 2


def barrier(loop: CaptureLoop) -> None:
    """Return once the capture thread has gone through a whole loop iteration."""
    passed = threading.Event()
    loop.call(passed.set)
    assert passed.wait(5)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def timeouts() -> list[str]:
    return []


@pytest.fixture
def loop(clock: FakeClock, timeouts: list[str]) -> Iterator[CaptureLoop]:
    capture = CaptureLoop(timeouts.append, flush_interval=1.0, clock=clock, poll_interval=0.005)
    capture.start()
    yield capture
    capture.stop()


def _receiver() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    return sock


def _packets(contents: SpoolContents, stream: int) -> list[bytes]:
    return contents.packets_of(stream)[1]


def test_journal_lags_at_most_the_flush_interval(tmp_path: Path, loop: CaptureLoop, clock: FakeClock) -> None:
    writer = create_journal(tmp_path, "rec", clock())
    rx_a, rx_b = _receiver(), _receiver()
    loop.open_session("rec", writer, rtp_timeout=60)
    loop.add_stream("rec", rx_a.fileno(), 0)
    loop.add_stream("rec", rx_b.fileno(), 1)
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sent = [bytes([0x80, 0, 0, i]) + b"p" * 168 for i in range(5)]
    for packet in sent:
        sender.sendto(packet, rx_a.getsockname())
    sender.sendto(b"other", rx_b.getsockname())
    wait_for(lambda: buffered(loop, "rec") == 5 and buffered(loop, "rec", 1) == 1, "packets read")
    # Nothing is due before the interval: the journal holds the header only.
    assert read_journal(writer.path).batches == []
    clock.advance(1.0)
    wait_for(lambda: len(_packets(read_journal(writer.path), 0)) == 5, "first flush")
    contents = read_journal(writer.path)
    # Every packet, though not always in order: one that lands on the stray socket in the moment
    # the stream latches is taken from there after later ones (the renderer orders by sequence).
    assert sorted(_packets(contents, 0)) == sent
    assert _packets(contents, 1) == [b"other"]
    assert all(t == 1000.0 for t in contents.packets_of(0)[0])

    sender.sendto(b"late", rx_a.getsockname())
    done = threading.Event()
    counted: list[int] = []
    loop.close_session("rec", lambda n: (counted.append(n), done.set()))
    assert done.wait(5)
    assert counted == [7]
    assert _packets(read_journal(writer.path), 0)[-1] == b"late"
    for sock in (rx_a, rx_b, sender):
        sock.close()
    writer.close()


def test_explicit_flush_tick(tmp_path: Path, loop: CaptureLoop, clock: FakeClock) -> None:
    writer = create_journal(tmp_path, "rec", clock())
    rx = _receiver()
    loop.open_session("rec", writer, rtp_timeout=60)
    loop.add_stream("rec", rx.fileno(), 0)
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sender.sendto(b"one", rx.getsockname())
    wait_for(lambda: buffered(loop, "rec") == 1, "packet read")
    loop.flush_all()
    wait_for(lambda: _packets(read_journal(writer.path), 0) == [b"one"], "explicit flush")
    rx.close()
    sender.close()
    writer.close()


def test_rtp_timeout(tmp_path: Path, loop: CaptureLoop, clock: FakeClock, timeouts: list[str]) -> None:
    writer = create_journal(tmp_path, "quiet", clock())
    rx = _receiver()
    loop.open_session("quiet", writer, rtp_timeout=3)
    loop.add_stream("quiet", rx.fileno(), 0)
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    clock.advance(2.0)
    barrier(loop)  # the empty flush at 1002 is done before the packet comes
    barrier(loop)
    sender.sendto(b"alive", rx.getsockname())
    wait_for(lambda: buffered(loop, "quiet") == 1, "packet read")
    clock.advance(1.0)
    wait_for(lambda: _packets(read_journal(writer.path), 0) == [b"alive"], "flush of the packet")
    clock.advance(2.5)  # 2.5 s since the last packet: not yet
    barrier(loop)
    barrier(loop)
    assert timeouts == []
    clock.advance(1.0)  # 3.5 s; timeouts are checked at the (1 s) flush ticks
    wait_for(lambda: timeouts == ["quiet"], "timeout callback")
    rx.close()
    sender.close()
    writer.close()


def test_a_stream_latches_to_its_first_source(tmp_path: Path, loop: CaptureLoop, clock: FakeClock) -> None:
    writer = create_journal(tmp_path, "rec", clock())
    rx = _receiver()
    port = rx.getsockname()
    loop.open_session("rec", writer, rtp_timeout=60)
    loop.add_stream("rec", rx.fileno(), 0)
    barrier(loop)
    src, other_host, other_port = (socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(3))
    src.bind(("127.0.0.1", 0))
    other_host.bind(("127.0.0.2", 0))
    other_port.bind(("127.0.0.1", 0))
    # A burst before the loop can have latched (what it sorts from the queue), then more after.
    src.sendto(b"src-0", port)
    other_host.sendto(b"x", port)
    other_port.sendto(b"y", port)
    src.sendto(b"src-1", port)
    wait_for(lambda: buffered(loop, "rec") == 2, "the first packets")
    for i in range(2, 5):
        other_host.sendto(b"x", port)
        src.sendto(f"src-{i}".encode(), port)
        other_port.sendto(b"y", port)
    stream = loop._sessions["rec"].streams[0]
    wait_for(lambda: buffered(loop, "rec") == 5 and stream.dropped == 8, "every packet sorted")
    clock.advance(1.0)
    wait_for(lambda: len(_packets(read_journal(writer.path), 0)) == 5, "the flush")
    contents = read_journal(writer.path)
    assert _packets(contents, 0) == [f"src-{i}".encode() for i in range(5)]
    events = {e["kind"]: e["data"] for e in contents.events}
    assert events["rtp_source"] == {"stream": 0, "address": f"127.0.0.1:{src.getsockname()[1]}"}
    assert events["rtp_dropped"] == {"stream": 0, "source": 8}

    done = threading.Event()
    loop.close_session("rec", lambda n: done.set())
    assert done.wait(5)
    rx.close()
    # Nothing of the stream is left on the port (the stray socket is closed): it can be bound again.
    again = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    again.bind(port)
    for sock in (again, src, other_host, other_port):
        sock.close()
    writer.close()
