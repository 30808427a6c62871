"""The capture loop: RTP sockets to spool journals with the least work per packet.

One thread owns every RTP socket of this process. It waits in ``epoll`` for
ready sockets (level-triggered, one ``os.read`` per ready socket per wake-up,
so a busy socket is simply reported again) and appends the arrival time and
the raw datagram to that stream's list. That is all the per-packet work: no
parsing, no decoding, no SRTP, no per-packet system call other than the read.
The arrival time is taken once per wake-up, the same for every packet of it.

Measured while tuning (``bench/capture.py``, ``perf``): at 1,500 calls the
loop costs ~4 us of CPU per packet, about 60 % of it in the kernel (the
``read``, epoll's re-poll of each level-triggered socket, freeing the skb)
and the rest in Python (loop, dict lookup, appends, the 1 s flush). What did
not pay off: ``os.read``, ``recv``, ``recv_into`` a preallocated buffer all
cost 1.5-1.7 us per packet, nearly all of it the system call (``recv`` is
~8 % cheaper but needs a socket object per stream); coalescing wake-ups
(sleeping ~2 ms after each busy wake-up so every ``epoll_wait`` returns
hundreds of sockets) changed nothing measurable, because at high load each
poll already returns hundreds of ready sockets. Reading a ready socket until
``EAGAIN`` would add a failing system call and a Python exception per socket,
while with 20 ms packetisation a socket almost never holds a second datagram
(level-triggered epoll reports it again if it does); for the same reason
``recvmmsg`` through ctypes does not pay off. Edge-triggered epoll would save
the re-poll (~7 %) but leaves a burst's extra datagrams queued, with arrival
times late by 20 ms each, until the stream ends. Beyond one core, see
:mod:`.workers`.

Once a second per session (staggered) the loop swaps each stream's list for a
new one and writes the batches of all the session's streams as one sealed
record (one AES-GCM seal and one system call per session per flush), to the
session's journal. A write that fails (full disk) keeps the packets in the
session's :class:`~.journal_backlog.JournalBacklog` to retry at the next
flush, bounded and counted (see there). At the same point it notices
sessions that received nothing for ``rtp_timeout`` seconds. Memory per call
is therefore bounded by one second of packets (by the backlog's 10 s while the
disk refuses writes).

Source latching: a stream takes packets only from the address (host and
port) its first packet came from; SSRC changes from that address are taken
(an SBC re-anchoring a call). The check costs nothing per packet: the first
packet of a stream is read with ``recvfrom`` (a slow path, once) and the
socket is then ``connect``-ed to its source, so the kernel itself delivers no
other source's datagrams to it (reading the address of every packet costs
~1 us more per packet than ``os.read``, measured). Packets from anyone else
would then vanish uncounted, so a second, unconnected "stray" socket is bound
to the same port: the kernel prefers the connected socket for the latched
source and hands everything else to the stray one, whose packets are read,
counted per stream and dropped (``SO_REUSEADDR`` is set on the stream's socket
only once it is connected, so until then the port stays exclusively ours and
another process's exclusive bind of it still fails). What was queued before
the ``connect`` is sorted by source once. The latched address and the running
count of dropped packets go to the journal as ``rtp_source``/``rtp_dropped``
events at the flush after they change; the renderer turns them into the
stream's stats (see :class:`callvault.rtp.stats.StreamGuard`).

Commands (add a stream, close a session) come from the event loop thread
through a queue and a wake-up pipe so the buffers are only ever touched by
this thread and no packet can land in a list that was already written out.
"""

from __future__ import annotations

import logging
import os
import queue
import select
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from callvault.rtp.live_loss import LiveLoss
from callvault.rtp.stats import DROPPED_EVENT, SOURCE_EVENT, WITHHELD_EVENT
from callvault.runtime.media.digit_watch import DigitSpan, DigitWatch, scan_many
from callvault.runtime.media.journal_backlog import BACKLOG_SECONDS, Batch, JournalBacklog
from callvault.runtime.media.withholding import HOLDBACK_SECONDS, DigitsReport, Withholding
from callvault.storage.spool import SpoolWriter

log = logging.getLogger(__name__)

MAX_DATAGRAM = 2048
POLL_INTERVAL = 0.02
MAX_EVENTS = 16384

# The state capture reports a press of the consent digit with (on_digits(key, "consent:<stream>", ...)).
CONSENT_PRESS = "consent"
# One watched stream's new packets to scan for keypad digits: (watch, arrival times, datagrams).
Scan = tuple[DigitWatch, list[float], list[bytes]]


class Capture(Protocol):
    """What the engine and its sessions need from capture: this thread, or worker processes."""

    @property
    def packets_total(self) -> int: ...

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def call(self, command: Callable[[], None]) -> None: ...

    def open_session(self, key: str, writer: SpoolWriter, rtp_timeout: float, spool_key: bytes) -> None: ...

    def add_stream(self, key: str, fd: int, index: int) -> None: ...

    def close_session(self, key: str, done: Callable[[int], None]) -> None: ...

    def flush_all(self) -> None: ...

    def silence(
        self, key: str, name: str, streams: frozenset[int] | None, start: float, end: float | None
    ) -> None:
        """Withhold the session's packets (of ``streams``; None: all) arriving in [start, end) (see :mod:`.withholding`)."""
        ...

    def watch_stream(
        self,
        key: str,
        index: int,
        event_types: list[int],
        g711: dict[int, str],
        *,
        consent_event: int = -1,
        pauses: bool = True,
    ) -> None:
        """Look for keypad digits on a stream: RFC 4733 payload types, G.711 payload types to decode;
        ``consent_event``: the consent digit's event code (-1: none); ``pauses``: digits pause the call."""
        ...

    def take_losses(self, key: str) -> list[dict[str, Any]]:
        """Storage failures of a closed session not written to its journal (see :mod:`.journal_backlog`)."""
        ...

    def live_loss(self, key: str) -> dict[int, dict[str, int]]:
        """Received, expected and lost packets of an open session's streams so far, by stream index
        (see :mod:`callvault.rtp.live_loss`); empty where capture does not measure them."""
        ...


@dataclass(eq=False)
class CaptureStream:
    fd: int
    index: int
    buffer: list[Any] = field(default_factory=list)
    source: Any = None  # the address the stream latched to (a recvfrom address)
    stray: socket.socket | None = None  # takes the port's datagrams from other sources
    dropped: int = 0  # datagrams from other sources
    reported_source: bool = False
    reported_dropped: int = 0
    key: str = ""
    journalled: bool = False  # some of its packets reached the journal
    watch: DigitWatch | None = None  # keypad digits looked for (PCI pause; see .withholding)
    held: int = 0  # packets left at the head of ``buffer`` by the last flush's hold-back (scanned)
    loss: LiveLoss = field(default_factory=LiveLoss)  # two sequence numbers read per flush


@dataclass(eq=False)
class CaptureSession:
    key: str
    writer: SpoolWriter
    flush_interval: float
    rtp_timeout: float
    last_activity: float
    streams: list[CaptureStream] = field(default_factory=list)
    due: float = 0.0
    closed: bool = False
    timed_out: bool = False
    packets: int = 0
    backlog_seconds: float = BACKLOG_SECONDS
    backlog: JournalBacklog = field(init=False)
    # Silences and keypad digits (PCI pause, consent); None while the session has neither.
    withholding: Withholding | None = None
    holdback: float = 0.0  # seconds of each stream kept for the next flush while digits are watched

    def __post_init__(self) -> None:
        self.backlog = JournalBacklog(self.writer, self.backlog_seconds)


class CaptureLoop:
    """Runs in its own thread; every public method is safe to call from another thread."""

    def __init__(
        self,
        on_timeout: Callable[[str], None],
        *,
        flush_interval: float = 1.0,
        clock: Callable[[], float] = time.time,
        poll_interval: float = POLL_INTERVAL,
        backlog_seconds: float = BACKLOG_SECONDS,
        on_digits: Callable[[str, str, str, float, str], None] | None = None,
        digits_resume: float = 5.0,
        digits_prefix: str = "",
        holdback: float = HOLDBACK_SECONDS,
    ) -> None:
        if not 0 < flush_interval <= 1.0:
            raise ValueError("flush_interval must be in (0, 1] seconds: the journal must lag at most 1 s")
        self._on_timeout = on_timeout
        self._flush_interval = flush_interval
        self._clock = clock
        self._poll_interval = poll_interval
        self._backlog_seconds = backlog_seconds
        self._losses: dict[str, list[dict[str, Any]]] = {}
        self._epoll = select.epoll()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._epoll.register(self._wake_r, select.EPOLLIN)
        self._commands: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        # Latched streams only: the hot path. Others are found on the slow path.
        self._appenders: dict[int, Callable[[Any], None]] = {}
        self._unlatched: dict[int, CaptureStream] = {}
        self._strays: dict[int, CaptureStream] = {}
        self._sessions: dict[str, CaptureSession] = {}
        self._schedule: deque[CaptureSession] = deque()
        self._thread: threading.Thread | None = None
        self._running = False
        self.packets_total = 0
        # on_digits(session key, interval name, "start" | "end", time, how), on the capture thread.
        self._on_digits = on_digits
        self._digits_resume = digits_resume
        self._digits_prefix = digits_prefix
        # Seconds of each watched stream kept for the next flush (see .withholding); a worker
        # pool's workers hold back a flush interval more (see .workers).
        self._holdback = holdback

    # -- control, from any thread -------------------------------------------------

    def start(self) -> None:
        self._running = True
        self._thread = threading.Thread(target=self._run, name="rtp-capture", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is None:
            return
        self._running = False
        self._wake()
        self._thread.join()
        self._thread = None
        for session in list(self._sessions.values()):
            self._close_now(session)
        self._epoll.close()
        os.close(self._wake_r)
        os.close(self._wake_w)

    def call(self, command: Callable[[], None]) -> None:
        """Run ``command`` in the capture thread between two polls."""
        self._commands.put(command)
        self._wake()

    def open_session(
        self, key: str, writer: SpoolWriter, rtp_timeout: float, spool_key: bytes | None = None
    ) -> None:
        # ``spool_key`` is for capture in other processes: this loop writes through
        # ``writer``, which already seals records with it.
        def command() -> None:
            now = self._clock()
            session = CaptureSession(
                key,
                writer,
                self._flush_interval,
                rtp_timeout,
                now,
                due=now + self._flush_interval,
                backlog_seconds=self._backlog_seconds,
            )
            self._sessions[key] = session
            self._schedule.append(session)

        self.call(command)

    def add_stream(self, key: str, fd: int, index: int) -> None:
        def command() -> None:
            session = self._sessions.get(key)
            if session is None or session.closed:
                return
            stream = CaptureStream(fd, index, key=key)
            session.streams.append(stream)
            self._unlatched[fd] = stream
            self._epoll.register(fd, select.EPOLLIN)

        self.call(command)

    def close_session(self, key: str, done: Callable[[int], None]) -> None:
        """Flush and forget the session; ``done(packets)`` runs in the capture thread."""

        def command() -> None:
            session = self._sessions.get(key)
            packets = self._close_now(session) if session is not None else 0
            done(packets)

        self.call(command)

    def silence(
        self, key: str, name: str, streams: frozenset[int] | None, start: float, end: float | None
    ) -> None:
        def command() -> None:
            session = self._sessions.get(key)
            if session is not None and not session.closed:
                self._withholding(session).set_interval(name, streams, start, end)

        self.call(command)

    def watch_stream(
        self,
        key: str,
        index: int,
        event_types: list[int],
        g711: dict[int, str],
        *,
        consent_event: int = -1,
        pauses: bool = True,
    ) -> None:
        watch = None
        if event_types or g711:
            watch = DigitWatch(
                bytes(event_types), dict(g711), pauses=pauses, consent_event=consent_event, stream=index
            )

        def command() -> None:
            session = self._sessions.get(key)
            if session is None or session.closed:
                return
            for stream in session.streams:
                if stream.index == index:
                    stream.watch = watch
            watched = any(stream.watch is not None for stream in session.streams)
            session.holdback = self._holdback if watched else 0.0
            if watched:
                self._withholding(session)

        self.call(command)

    def _withholding(self, session: CaptureSession) -> Withholding:
        if session.withholding is None:
            key = session.key

            def report(name: str, state: str, at: float, how: str) -> None:
                if self._on_digits is not None:
                    try:
                        self._on_digits(key, name, state, at, how)
                    except Exception:
                        log.exception("digits callback failed for %s", key)

            withholding: DigitsReport = report
            session.withholding = Withholding(self._digits_resume, withholding, prefix=self._digits_prefix)
            session.withholding.journalled_before([s.index for s in session.streams if s.journalled])
        return session.withholding

    def flush_all(self) -> None:
        """Flush every session now (an explicit flush tick, used by tests)."""

        def command() -> None:
            now = self._clock()
            for session in list(self._sessions.values()):
                self._flush(session, now)

        self.call(command)

    def take_losses(self, key: str) -> list[dict[str, Any]]:
        return self._losses.pop(key, [])

    def live_loss(self, key: str) -> dict[int, dict[str, int]]:
        # Read from another thread: a snapshot of plain ints, written only by this loop's flushes.
        session = self._sessions.get(key)
        if session is None:
            return {}
        return {stream.index: stream.loss.figures() for stream in list(session.streams)}

    def _wake(self) -> None:
        try:
            os.write(self._wake_w, b"\0")
        except BlockingIOError:
            pass  # the pipe is full, so the loop will wake anyway

    # -- the capture thread -------------------------------------------------------

    def _run(self) -> None:
        poll = self._epoll.poll
        read = os.read
        appenders = self._appenders
        wake_fd = self._wake_r
        clock = self._clock
        timeout = self._poll_interval
        next_flush = clock()
        while self._running:
            events = poll(timeout, MAX_EVENTS)
            now = clock()
            try:
                for fd, _ in events:
                    append = appenders.get(fd)
                    if append is None:
                        self._slow_path(fd, wake_fd, now)
                        continue
                    append(now)
                    append(read(fd, MAX_DATAGRAM))
            except OSError as exc:
                # A socket closed under us or an ICMP error; level-triggered epoll
                # reports the remaining ready sockets again on the next poll.
                log.debug("capture read failed: %s", exc)
            if now >= next_flush:
                self._flush_due(now)
                next_flush = now + 0.05

    def _slow_path(self, fd: int, wake_fd: int, now: float) -> None:
        """Everything but a latched stream's packet: commands, a stream's first packet, a stray."""
        if fd == wake_fd:
            self._drain_commands()
            return
        stream = self._unlatched.get(fd)
        if stream is not None:
            self._latch(stream, now)
            return
        stream = self._strays.get(fd)
        if stream is not None and stream.stray is not None:
            self._drop_strays(stream, stream.stray, now)

    def _latch(self, stream: CaptureStream, now: float) -> None:
        """Take the first packet, connect the socket to its source and open the stray socket."""
        sock = socket.socket(fileno=stream.fd)  # borrowed: detached below, never closed here
        try:
            try:
                data, source = sock.recvfrom(MAX_DATAGRAM)
            except OSError:
                return  # nothing there after all; level-triggered epoll reports it again
            stream.source = source
            stream.buffer.append(now)
            stream.buffer.append(data)
            # The stray socket first, then the connect: the port is never without an open
            # socket (a datagram in between would vanish uncounted); what the stray one
            # takes from the latched source meanwhile is kept (see _drop_strays).
            stream.stray = self._open_stray(sock)
            try:
                sock.connect(source)
            except OSError as exc:
                # Not seen in practice; the stream then takes every source, as before latching existed.
                log.warning(
                    "recording %s stream %d: cannot latch to %s: %s", stream.key, stream.index, source, exc
                )
            else:
                # Queued before the connect: sorted by source once.
                self._sort_queue(stream, sock, now)
        finally:
            sock.detach()
        del self._unlatched[stream.fd]
        self._appenders[stream.fd] = stream.buffer.append
        if stream.stray is not None:
            self._strays[stream.stray.fileno()] = stream
            self._epoll.register(stream.stray.fileno(), select.EPOLLIN)

    @staticmethod
    def _open_stray(sock: socket.socket) -> socket.socket | None:
        local = sock.getsockname()
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            stray = socket.socket(sock.family, socket.SOCK_DGRAM)
        except OSError:
            return None
        try:
            stray.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            stray.bind(local)
            stray.setblocking(False)
        except OSError as exc:
            stray.close()
            log.warning("no stray socket on %s (other sources are refused but not counted): %s", local, exc)
            return None
        return stray

    def _sort_queue(self, stream: CaptureStream, sock: socket.socket, now: float) -> None:
        while True:
            try:
                data, source = sock.recvfrom(MAX_DATAGRAM)
            except OSError:
                return  # empty (or an ICMP error report): nothing more queued to sort
            if source == stream.source:
                stream.buffer.append(now)
                stream.buffer.append(data)
            else:
                self._count_stray(stream, source)

    def _drop_strays(self, stream: CaptureStream, stray: socket.socket, now: float) -> None:
        while True:
            try:
                data, source = stray.recvfrom(MAX_DATAGRAM)
            except OSError:
                return
            if source == stream.source:
                # Landed here in the moment before the stream's socket was connected.
                stream.buffer.append(now)
                stream.buffer.append(data)
            else:
                self._count_stray(stream, source)

    @staticmethod
    def _count_stray(stream: CaptureStream, source: Any) -> None:
        stream.dropped += 1
        if stream.dropped == 1:
            # Addresses are not personal data here; one line per stream, whatever the flood.
            log.warning(
                "recording %s stream %d: dropping RTP from %s, the stream latched to %s",
                stream.key,
                stream.index,
                _address(source),
                _address(stream.source),
            )

    def _drain_commands(self) -> None:
        try:
            while os.read(self._wake_r, 4096):
                pass
        except BlockingIOError:
            pass
        while True:
            try:
                command = self._commands.get_nowait()
            except queue.Empty:
                return
            try:
                command()
            except Exception:
                log.exception("capture command failed")

    def _flush_due(self, now: float) -> None:
        schedule = self._schedule
        due: list[CaptureSession] = []
        while schedule and schedule[0].due <= now:
            session = schedule.popleft()
            if session.closed:
                continue
            session.due = now + session.flush_interval
            schedule.append(session)
            due.append(session)
        if not due:
            return
        taken = [self._take(session, now, final=False) for session in due]
        # PCI: the new packets of every watched stream of this tick are scanned for keypad
        # digits together (one numpy pass for their in-band tones; see .digit_watch).
        scans = [scan for _, found in taken for scan in found]
        spans = iter(scan_many(scans) if scans else [])
        for session, (records, found) in zip(due, taken, strict=True):
            digits: DigitSpan | None = None
            for _ in found:
                span = next(spans)
                if span is not None:
                    digits = span.join(digits)
            if session.withholding is not None:
                records = session.withholding.settle(records, digits, now, False)
            self._report_presses(session, found)
            self._write(session, records, now)
            if not session.timed_out and now - session.last_activity >= session.rtp_timeout:
                session.timed_out = True
                try:
                    self._on_timeout(session.key)
                except Exception:
                    log.exception("RTP timeout callback failed for %s", session.key)

    def _flush(self, session: CaptureSession, now: float, final: bool = False) -> None:
        records, scans = self._take(session, now, final)
        if session.withholding is not None:
            # PCI: silenced packets and keypad digits never reach the journal (see .withholding).
            digits: DigitSpan | None = None
            for span in scan_many(scans) if scans else []:
                if span is not None:
                    digits = span.join(digits)
            records = session.withholding.settle(records, digits, now, final)
            self._report_presses(session, scans)
        self._write(session, records, now)

    def _report_presses(self, session: CaptureSession, scans: list[Scan]) -> None:
        """Report the consent-digit presses the scan noted (:mod:`.digit_watch`), as digits are."""
        for watch, _, _ in scans:
            if watch.pressed is None or self._on_digits is None:
                continue
            at, watch.pressed = watch.pressed, None
            try:
                self._on_digits(session.key, f"{CONSENT_PRESS}:{watch.stream}", CONSENT_PRESS, at, "rfc4733")
            except Exception:
                log.exception("consent digit callback failed for %s", session.key)

    def _take(self, session: CaptureSession, now: float, final: bool) -> tuple[list[Batch], list[Scan]]:
        """Swap each stream's buffer for a new one: the session's packets since the last flush,
        less the hold-back's young ones (left in the new buffer), and the new packets to scan
        for keypad digits."""
        self._report_guards(session)
        records: list[Batch] = []
        scans: list[Scan] = []
        received = 0
        horizon = now - session.holdback if session.holdback and not final else None
        for stream in session.streams:
            buffer = stream.buffer
            if not buffer:
                continue
            size, held = len(buffer), stream.held
            cut = size
            if horizon is not None:
                while cut and buffer[cut - 2] >= horizon:  # arrival times only grow along a buffer
                    cut -= 2
            if stream.watch is not None and size > 2 * held:
                scans.append((stream.watch, buffer[2 * held :: 2], buffer[2 * held + 1 :: 2]))
            if size > 2 * held:  # the new packets' first and last sequence numbers (live loss)
                stream.loss.add(buffer[2 * held + 1], buffer[size - 1], (size >> 1) - held)
            rest: list[Any] = []
            if cut < size:
                rest = buffer[cut:]
                del buffer[cut:]
            stream.buffer, stream.held = rest, len(rest) >> 1
            if stream.fd in self._appenders:
                self._appenders[stream.fd] = rest.append
            received += (size >> 1) - held
            if cut:
                stream.journalled = True  # read only when a first silence starts (journalled_before)
                records.append((stream.index, buffer[0::2], buffer[1::2]))
        if received:
            session.last_activity = now
            session.packets += received
            self.packets_total += received
        return records, scans

    def _write(self, session: CaptureSession, records: list[Batch], now: float) -> None:
        if not records and not session.backlog.waiting:
            return
        try:
            # On a failed write the backlog keeps the packets to retry (see .journal_backlog).
            session.backlog.write(records, now)
        except Exception:
            # Whatever else goes wrong must not stop capture of the other calls.
            log.exception("spool write failed for %s", session.key)

    def _report_guards(self, session: CaptureSession) -> None:
        """Journal what changed about the streams' sources since the last flush (rarely anything)."""
        for stream in session.streams:
            try:
                if stream.source is not None and not stream.reported_source:
                    data = {"stream": stream.index, "address": _address(stream.source)}
                    session.writer.write_event(SOURCE_EVENT, 0.0, data)
                    stream.reported_source = True
                dropped = stream.dropped
                if dropped != stream.reported_dropped:
                    # A running total: one that fails to be written (a full disk) is
                    # simply superseded by the next one that is.
                    session.writer.write_event(
                        DROPPED_EVENT, 0.0, {"stream": stream.index, "source": dropped}
                    )
                    stream.reported_dropped = dropped
            except Exception as exc:
                # The packet backlog reports the disk trouble itself; retried at the next flush.
                log.debug("source report of %s not written: %s", session.key, exc)
        if session.withholding is not None:
            for index, total in session.withholding.withheld_totals():
                try:
                    session.writer.write_event(WITHHELD_EVENT, 0.0, {"stream": index, "packets": total})
                except Exception as exc:
                    session.withholding.mark_unreported(index)
                    log.debug("withheld count of %s not written: %s", session.key, exc)

    def _close_now(self, session: CaptureSession) -> int:
        if session.closed:
            return session.packets
        for stream in session.streams:
            latched = self._appenders.pop(stream.fd, None) is not None
            if latched or self._unlatched.pop(stream.fd, None) is not None:
                try:
                    self._epoll.unregister(stream.fd)
                except (OSError, ValueError):
                    pass
        # Whatever is still queued in the kernel belongs to the call too.
        for stream in session.streams:
            self._drain_socket(stream)
            self._close_stray(stream)
        now = self._clock()
        self._flush(session, now, final=True)
        if session.withholding is not None:
            self._report_guards(session)  # the last withheld count
        losses = session.backlog.close(now)
        if losses:
            self._losses[session.key] = losses
        session.closed = True
        self._sessions.pop(session.key, None)
        return session.packets

    def _drain_socket(self, stream: CaptureStream) -> None:
        now = self._clock()
        if stream.source is None:
            # Never latched: the first queued packet decides, as it would have.
            sock = socket.socket(fileno=stream.fd)
            try:
                data, stream.source = sock.recvfrom(MAX_DATAGRAM)
                stream.buffer.append(now)
                stream.buffer.append(data)
                self._sort_queue(stream, sock, now)
            except OSError:
                pass
            finally:
                sock.detach()
            return
        while True:
            try:
                data = os.read(stream.fd, MAX_DATAGRAM)
            except (BlockingIOError, OSError):
                return
            stream.buffer.append(now)
            stream.buffer.append(data)

    def _close_stray(self, stream: CaptureStream) -> None:
        stray = stream.stray
        if stray is None:
            return
        self._strays.pop(stray.fileno(), None)
        try:
            self._epoll.unregister(stray.fileno())
        except (OSError, ValueError):
            pass
        self._drop_strays(stream, stray, self._clock())
        stray.close()
        stream.stray = None


def _address(source: Any) -> str:
    """``host:port`` (``[host]:port`` for IPv6) of a recvfrom address."""
    if not isinstance(source, tuple) or len(source) < 2:
        return str(source)
    host, port = source[0], source[1]
    return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
