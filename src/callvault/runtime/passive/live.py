"""Live capture from network interfaces (a mirrored switch port): AF_PACKET rings, one thread.

``CALLVAULT_CAPTURE_INTERFACES`` names the interfaces; each gets a raw
``AF_PACKET`` socket bound to it with a memory-mapped TPACKET_V3 receive ring
(:mod:`.ring`: no system call per frame) and, when ``CALLVAULT_CAPTURE_FILTER``
is set, a kernel BPF filter (:mod:`.bpf`) so only the wanted traffic is ever
copied to user space. One thread reads every ring and feeds the
:class:`~.recorder.PassiveRecorder`; once a second it
journals what is buffered, ends silent calls and reads the kernel's drop
counter (``callvault_capture_kernel_drops_total``). A finished call's journal
goes to the event loop, where the media engine renders and seals it.

Privileges: opening an ``AF_PACKET`` socket needs ``CAP_NET_RAW`` and
nothing else; run ``serve`` as an unprivileged user with that one capability
(``setcap cap_net_raw+ep`` on the interpreter, or ``AmbientCapabilities=CAP_NET_RAW``
in a systemd unit). An interface that does not exist, or a missing
capability, stops ``serve`` at start with a message saying which.

On loopback every frame is seen twice (sent and received); the sent copy is
skipped there. Frames a host sends on other interfaces are kept: a PBX on the
recorder's own host is recorded from its outgoing traffic too.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import select
import socket
import struct
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from callvault.errors import ConfigError
from callvault.runtime.media.engine import MediaEngine
from callvault.runtime.passive import metrics
from callvault.runtime.passive.bpf import attach_filter, compile_filter
from callvault.runtime.passive.recorder import Finished, PassiveRecorder
from callvault.runtime.passive.ring import BLOCK_COUNT, BLOCK_SIZE, PacketRing, enable_ring
from callvault.services.call_record import IngestSource
from callvault.services.context import ServiceContext

log = logging.getLogger(__name__)

ETH_P_ALL = 0x0003
ARPHRD_LOOPBACK = 772
SOL_PACKET = 263
PACKET_STATISTICS = 6
LINKTYPE_ETHERNET = 1


@dataclass
class Interface:
    """One interface being captured: its packet socket and the ring the kernel fills."""

    name: str
    sock: socket.socket
    ring: PacketRing

    def close(self) -> None:
        self.ring.close()
        self.sock.close()


def open_interface(name: str, program: list[tuple[int, int, int, int]] | None) -> Interface:
    """A raw socket with a receive ring on interface ``name``; ConfigError naming the interface
    and the missing privilege."""
    try:
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    except PermissionError:
        raise ConfigError(
            f"capturing on {name!r} needs CAP_NET_RAW (setcap cap_net_raw+ep, or AmbientCapabilities)"
        ) from None
    try:
        if program is not None:
            attach_filter(sock, program)  # before bind: no unfiltered frame is ever queued
        mapped = enable_ring(sock)
        sock.bind((name, ETH_P_ALL))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.ENODEV:
            raise ConfigError(
                f"capture interface {name!r} does not exist (CALLVAULT_CAPTURE_INTERFACES)"
            ) from None
        raise ConfigError(f"cannot capture on {name!r}: {exc.strerror}") from None
    loopback = _hardware_type(sock) == ARPHRD_LOOPBACK
    ring = PacketRing(mapped, BLOCK_SIZE, BLOCK_COUNT, linktype=LINKTYPE_ETHERNET, skip_outgoing=loopback)
    sock.setblocking(False)
    return Interface(name, sock, ring)


def _hardware_type(sock: socket.socket) -> int:
    # getsockname() of a bound packet socket: (ifname, protocol, pkttype, hatype, addr)
    return int(sock.getsockname()[3])


def kernel_drops(sock: socket.socket) -> int:
    """Frames the kernel dropped since the last call (reading the counter resets it)."""
    try:
        _, drops = struct.unpack("II", sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8))
    except OSError:
        return 0
    return int(drops)


def capture_loop(
    interfaces: dict[str, Interface],
    frame: Callable[[float, int, bytes], None],
    stop: threading.Event,
    each_second: Callable[[float], None],
) -> None:
    """Read every ring until ``stop``: each frame to ``frame``, ``each_second`` about once a second.

    The hot path: a wake-up (a block handed over, or 0.2 s passed) walks every
    ring's ready blocks; frames carry the kernel's receive time.
    """
    poller = select.epoll()
    for interface in interfaces.values():
        poller.register(interface.sock.fileno(), select.EPOLLIN)
    rings = [interface.ring for interface in interfaces.values()]
    next_tick = time.time() + 1.0
    try:
        while not stop.is_set():
            poller.poll(0.2)
            for ring in rings:
                ring.read(frame)
            now = time.time()
            if now >= next_tick:
                next_tick = now + 1.0
                each_second(now)
    finally:
        poller.close()


class LiveCapture:
    def __init__(
        self, ctx: ServiceContext, engine: MediaEngine, interfaces: Sequence[str], bpf: str = ""
    ) -> None:
        settings = ctx.settings
        program = compile_filter(bpf) if bpf.strip() else None
        self._interfaces: dict[str, Interface] = {}
        try:
            for name in interfaces:
                self._interfaces[name] = open_interface(name, program)
        except ConfigError:
            self._close_interfaces()
            raise
        self._engine = engine
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.recorder = PassiveRecorder(
            ctx.recordings,
            ctx.directory.agent_for,
            ctx.keys,
            settings.spool_dir,
            IngestSource("capture", address="capture:" + ",".join(interfaces)),
            self._finished,
            agent_networks=settings.capture_agent_networks,
            rtp_timeout=float(settings.rtp_timeout),
            max_sip_message=settings.max_sip_message_bytes,
            unsignalled=settings.capture_unsignalled,
            on_started=self._started,
        )

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._thread = threading.Thread(target=self._run, name="passive-capture", daemon=True)
        self._thread.start()
        log.info("capturing SIP and RTP on %s", ", ".join(self._interfaces))

    async def stop(self) -> None:
        """Stop reading; calls still open are sealed as interrupted."""
        self._stop.set()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join)
            self._thread = None
        self._close_interfaces()

    def _close_interfaces(self) -> None:
        for interface in self._interfaces.values():
            interface.close()
        self._interfaces.clear()

    def _started(self, recording_id: str, journal: Path, key: bytes, started_at: float) -> None:
        # On the capture thread; the loop runs calls in order, so this comes before the seal.
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._engine.follow_journal, recording_id, journal, key, started_at)

    def _finished(self, call: Finished) -> None:  # on the capture thread
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(
                self._engine.seal_followed, call.recording_id, call.journal, call.ended_at, call.status
            )

    def _run(self) -> None:
        reported = dict(self.recorder.counts)

        def each_second(now: float) -> None:
            nonlocal reported
            reported = self._each_second(now, reported)

        try:
            capture_loop(self._interfaces, self.recorder.frame, self._stop, each_second)
        except Exception:
            log.exception("live capture stopped by an error; calls in progress are sealed as interrupted")
        finally:
            self.recorder.finish()

    def _each_second(self, now: float, reported: dict[str, int]) -> dict[str, int]:
        self.recorder.tick(now)
        for name, interface in self._interfaces.items():
            drops = kernel_drops(interface.sock)
            if drops:
                metrics.DROPPED.labels(name).inc(drops)
        counts = dict(self.recorder.counts)
        delta = {k: v - reported.get(k, 0) for k, v in counts.items()}
        metrics.count("live", delta, 0)
        return counts
