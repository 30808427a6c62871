"""Capture capacity: concurrent G.711 calls one recorder core holds with zero packet loss.

Run: ``python bench/capture.py [--steps 500,1000,1500,2000,2500,3000] [--seconds 6]``

For each step, a fresh recorder process pinned to one core opens N sessions
with two RTP streams each through the MediaEngine's real path (ports, spool
journals, capture loop), and ONE load-generator process pinned to another core
sends real 172-byte G.711 RTP (sequence number and timestamp advancing; the payload a
20 ms frame of a speech-like signal, one per stream) to
every stream every 20 ms. The generator's Python cost does not grow with N:
the packets live in one preallocated numpy array (only the sequence/timestamp
columns are rewritten per tick), and each ``sendmmsg`` call (ctypes) carries up
to 1,024 packets, each with its own destination address. Calls are spread
over ten phases per 20 ms tick, as real calls are not phase-aligned, and
every phase is sent on an absolute deadline, so a late tick does not shift the
ones after it.

Loss is what the recorder did not write to its journals (its capture
counter, taken after a final flush 0.3 s after the last send) versus what the
generator's ``sendmmsg`` calls actually accepted, so a generator that falls
behind cannot show up as recorder loss. The generator reports its achieved
rate and lateness separately: a step where it sent under 98 % of the target
rate measured the generator, not the recorder (on loopback the kernel's
receive work runs on the sending core, so the generator core runs out first:
the table's "gen usr+sys" shows it is nearly all kernel time). The ramp stops at
the first step that lost packets or where the generator fell behind. The same
ramp is then run against a plain asyncio ``DatagramProtocol`` counter (no
uvloop) as the baseline, from its own smaller steps, until it loses.

PCI pause (``--pauses CALLS``): at a fixed load the MediaEngine recorder is run
in four modes, interleaved ``--repeat`` times so that drift of a shared
machine hits them alike: ``pci off`` (no digit watch, no pauses: capture as it
was before PCI pause existed), ``RFC 4733`` (the default: every stream scanned
for telephone events, with the 0.25 s hold-back), ``with pauses`` (the default
plus ``--pause-share`` of the calls paused through ``MediaEngine.silence`` at
any time, each for 5 s: every second some calls pause and as many resume;
silenced packets withheld, pause/resume events journalled) and ``+ in-band`` (the default with
``CALLVAULT_PCI_INBAND_DIGITS``: keypad tones also looked for in the G.711
audio). Printed: recorder CPU per call-second (median of the repeats),
packets lost, and each mode against ``pci off``. Loss counts withheld packets
as received: they were read from the socket and dropped on purpose.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import ctypes
import multiprocessing as mp
import os
import resource
import shutil
import socket
import tempfile
import time
from multiprocessing.connection import Connection
from typing import Any

import numpy as np

PACKET = 172
TICK = 0.02
PHASES = 10  # sending phases per 20 ms tick (--phases)
GRACE = 0.3
PAUSE_SECONDS = 5  # how long each pause of the pause scenario lasts
BATCH = 1024
PACKETS_PER_CALL_SECOND = 2 / TICK  # two streams, one packet each per 20 ms

# -- load generator --------------------------------------------------------------------------


class _Iovec(ctypes.Structure):
    _fields_ = [("iov_base", ctypes.c_void_p), ("iov_len", ctypes.c_size_t)]


class _Msghdr(ctypes.Structure):
    _fields_ = [
        ("msg_name", ctypes.c_void_p),
        ("msg_namelen", ctypes.c_uint32),
        ("msg_iov", ctypes.POINTER(_Iovec)),
        ("msg_iovlen", ctypes.c_size_t),
        ("msg_control", ctypes.c_void_p),
        ("msg_controllen", ctypes.c_size_t),
        ("msg_flags", ctypes.c_int),
    ]


class _Mmsghdr(ctypes.Structure):
    _fields_ = [("msg_hdr", _Msghdr), ("msg_len", ctypes.c_uint)]


def _pin(core: int) -> None:
    try:
        os.sched_setaffinity(0, {core})
    except OSError:
        pass
    try:
        # Other processes share this machine; a modest priority keeps their bursts from
        # showing up as generator lateness or recorder loss. Ignored without privilege.
        os.nice(-5)
    except OSError:
        pass


def _speech_frames(count: int) -> np.ndarray:
    """µ-law payloads: 20 ms frames cut from a speech-like signal (a pitched harmonic source
    under a syllable-rate envelope), a different frame per stream, so a stream is loud or quiet
    as a talker is, and the in-band keypad detector meets talk, not digital silence."""
    from callvault.media.g711 import ulaw_encode

    rate, seconds = 8000, 8
    t = np.arange(rate * seconds) / rate
    pitch = 140.0 * (1 + 0.08 * np.sin(2 * np.pi * 0.7 * t))
    phase = 2 * np.pi * np.cumsum(pitch) / rate
    source = sum(np.sin(k * phase) / k for k in range(1, 8))
    envelope = (0.5 + 0.5 * np.sin(2 * np.pi * 3.0 * t)) ** 2
    pcm = (source * envelope / 2.6 * 0.6 * 32767).astype(np.int16)
    frames = np.frombuffer(ulaw_encode(pcm), dtype=np.uint8).reshape(-1, 160)
    return frames[(np.arange(count) * 7) % len(frames)]


def _generator(ports: list[int], start_at: float, seconds: float, core: int, out: Connection) -> None:
    _pin(core)
    libc = ctypes.CDLL(None, use_errno=True)
    n = len(ports)
    buf = np.zeros((n, PACKET), dtype=np.uint8)
    buf[:, 0] = 0x80  # RTP v2, PT 0 (PCMU)
    buf[:, 12:] = _speech_frames(n)
    buf[:, 8:12] = np.arange(1, n + 1, dtype=">u4").view(np.uint8).reshape(n, 4)  # SSRC
    names = np.zeros((n, 16), dtype=np.uint8)  # struct sockaddr_in per destination
    names[:, 0:2] = np.frombuffer(np.uint16(socket.AF_INET).tobytes(), dtype=np.uint8)
    names[:, 2:4] = np.array(ports, dtype=">u2").view(np.uint8).reshape(n, 2)
    names[:, 4:8] = np.frombuffer(socket.inet_aton("127.0.0.1"), dtype=np.uint8)
    iovs = (_Iovec * n)()
    msgs = (_Mmsghdr * n)()
    base, names_base = buf.ctypes.data, names.ctypes.data
    iov_size = ctypes.sizeof(_Iovec)
    iovs_addr = ctypes.addressof(iovs)
    for i in range(n):
        iovs[i].iov_base = base + i * PACKET
        iovs[i].iov_len = PACKET
        msgs[i].msg_hdr.msg_name = names_base + i * 16
        msgs[i].msg_hdr.msg_namelen = 16
        msgs[i].msg_hdr.msg_iov = ctypes.cast(iovs_addr + i * iov_size, ctypes.POINTER(_Iovec))
        msgs[i].msg_hdr.msg_iovlen = 1
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 * 1024 * 1024)
    fd = sock.fileno()
    sendmmsg = libc.sendmmsg
    msg_size = ctypes.sizeof(_Mmsghdr)
    msgs_addr = ctypes.addressof(msgs)
    bounds = [n * p // PHASES for p in range(PHASES + 1)]
    seq = buf[:, 2:4]
    stamp = buf[:, 4:8]
    ticks = round(seconds / TICK)
    sent = failed = late = 0
    max_lag = 0.0
    while time.time() < start_at - 0.002:
        time.sleep(0.001)
    times0 = os.times()
    for k in range(ticks):
        seq[:] = np.array([k & 0xFFFF], dtype=">u2").view(np.uint8)
        stamp[:] = np.array([(k * 160) & 0xFFFFFFFF], dtype=">u4").view(np.uint8)
        for p in range(PHASES):
            deadline = start_at + k * TICK + p * (TICK / PHASES)
            lag = time.time() - deadline
            if lag < 0:
                time.sleep(-lag)
            else:
                max_lag = max(max_lag, lag)
                if lag > TICK:
                    late += 1
            done, end = bounds[p], bounds[p + 1]
            while done < end:
                r = sendmmsg(fd, ctypes.c_void_p(msgs_addr + done * msg_size), min(BATCH, end - done), 0)
                if r <= 0:
                    failed += 1
                    done += 1  # skip the packet the kernel refused rather than spin on it
                    continue
                sent += r
                done += r
    elapsed = time.time() - start_at
    out.send(
        {
            "sent": sent,
            "failed": failed,
            "elapsed": elapsed,
            "late_fraction": late / (ticks * PHASES),
            "max_lag": max_lag,
            "user": os.times().user - times0.user,
            "system": os.times().system - times0.system,
        }
    )
    out.close()


# -- recorders -------------------------------------------------------------------------------


def _raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _engine_recorder(
    calls: int, core: int, conn: Connection, mode: str = "default", share: float = 0.2
) -> None:
    _pin(core)
    _raise_fd_limit()
    from callvault.media.codec_spec import CodecSpec
    from callvault.runtime.media.engine import MediaEngine
    from callvault.services.context import open_context
    from callvault.settings import load_settings

    data = tempfile.mkdtemp(prefix="cv-capture-")
    pci = {"off": {"pci_digit_pause": "false"}, "inband": {"pci_inband_digits": "true"}}.get(mode, {})
    settings = load_settings(env={}, data_dir=data, rtp_ports="20000-39999", sip_host="127.0.0.1", **pci)
    ctx = open_context(settings)

    async def main() -> None:
        # No render step during the run: the bench measures capture alone.
        engine = MediaEngine(settings, ctx.recordings, render_executor=_NoExecutor(), render_step=3600.0)
        await engine.start()
        pcmu = CodecSpec(0, "PCMU", 8000)
        ports: list[int] = []
        for c in range(calls):
            session = engine.open_session(f"bench-{c}", time.time())
            ports.append(engine.add_stream(session.recording_id, "a", [pcmu], 0, None, None))
            ports.append(engine.add_stream(session.recording_id, "b", [pcmu], 1, None, None))
        conn.send(ports)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, conn.recv)  # "start"
        times0 = os.times()
        rotating = asyncio.ensure_future(_rotate_pauses(engine, calls, share)) if mode == "pauses" else None
        await loop.run_in_executor(None, conn.recv)  # "count"
        if rotating is not None:
            rotating.cancel()
        # Packets still queued 0.3 s after the last send count as lost: a receiver
        # that falls behind in real time loses them once the socket buffers fill.
        await asyncio.sleep(GRACE)
        done = asyncio.Event()
        engine.capture.flush_all()
        engine.capture.call(lambda: loop.call_soon_threadsafe(done.set))
        await done.wait()
        times = os.times()
        conn.send((engine.capture.packets_total, times.user - times0.user, times.system - times0.system))

    try:
        asyncio.run(main())
    finally:
        shutil.rmtree(data, ignore_errors=True)


async def _rotate_pauses(engine: Any, calls: int, share: float) -> None:
    """Keep ``share`` of the calls paused, each pause lasting PAUSE_SECONDS: every second a new
    group of calls is paused and the group paused PAUSE_SECONDS ago resumes."""
    groups = max(1, round(PAUSE_SECONDS / share))
    tick = 0
    while True:
        for c in range(tick % groups, calls, groups):
            engine.silence(f"bench-{c}", "api", by="bench")
        if tick >= PAUSE_SECONDS:
            for c in range((tick - PAUSE_SECONDS) % groups, calls, groups):
                engine.unsilence(f"bench-{c}", "api", by="bench")
        tick += 1
        await asyncio.sleep(1.0)


class _NoExecutor:
    """The capture bench never finalises (the recorder process is discarded); the render pool's
    start-up probe (``warm``) runs inline."""

    def submit(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        if fn is not os.getpid:
            raise RuntimeError("the capture bench renders nothing")
        done: concurrent.futures.Future[Any] = concurrent.futures.Future()
        done.set_result(fn())
        return done

    def shutdown(self, wait: bool = True) -> None:
        pass


def _asyncio_recorder(calls: int, core: int, conn: Connection) -> None:
    _pin(core)
    _raise_fd_limit()

    class Counter(asyncio.DatagramProtocol):
        count = 0

        def datagram_received(self, data: bytes, addr: Any) -> None:
            Counter.count += 1

    async def main() -> None:
        loop = asyncio.get_running_loop()
        ports: list[int] = []
        transports = []
        for _ in range(2 * calls):
            transport, _ = await loop.create_datagram_endpoint(Counter, local_addr=("127.0.0.1", 0))
            transports.append(transport)
            ports.append(transport.get_extra_info("sockname")[1])
        conn.send(ports)
        await loop.run_in_executor(None, conn.recv)
        times0 = os.times()
        await loop.run_in_executor(None, conn.recv)
        await asyncio.sleep(GRACE)
        times = os.times()
        conn.send((Counter.count, times.user - times0.user, times.system - times0.system))
        for t in transports:
            t.close()

    asyncio.run(main())


def _udp_drops() -> int:
    """Datagrams the kernel dropped for full socket buffers (this network namespace, all processes)."""
    with open("/proc/net/snmp") as fh:
        rows = [line.split() for line in fh if line.startswith("Udp:")]
    return int(rows[1][rows[0].index("RcvbufErrors")])


def run_step(
    kind: str,
    calls: int,
    seconds: float,
    recorder_core: int,
    generator_core: int,
    mode: str = "default",
    share: float = 0.2,
) -> dict[str, Any]:
    ctx = mp.get_context("fork")
    drops0 = _udp_drops()
    parent, child = ctx.Pipe()
    if kind == "engine":
        recorder = ctx.Process(
            target=_engine_recorder, args=(calls, recorder_core, child, mode, share), daemon=True
        )
    else:
        recorder = ctx.Process(target=_asyncio_recorder, args=(calls, recorder_core, child), daemon=True)
    recorder.start()
    if not parent.poll(300):
        recorder.kill()
        raise RuntimeError(f"the {kind} recorder did not start (see its error above)")
    ports: list[int] = parent.recv()
    start_at = time.time() + 0.5
    a, b = ctx.Pipe()
    generator = ctx.Process(
        target=_generator, args=(ports, start_at, seconds, generator_core, b), daemon=True
    )
    generator.start()
    parent.send("start")
    g = a.recv()
    generator.join()
    parent.send("count")
    received, user, system = parent.recv()
    cpu = user + system
    recorder.kill()
    recorder.join()
    target_pps = calls * PACKETS_PER_CALL_SECOND
    achieved = g["sent"] / max(g["elapsed"], seconds)
    return {
        "calls": calls,
        "sent": g["sent"],
        "received": received,
        "lost": g["sent"] - received,
        "kernel_drops": _udp_drops() - drops0,
        "target_pps": target_pps,
        "achieved_pps": achieved,
        "generator_user": g["user"] / max(g["elapsed"], seconds),
        "generator_system": g["system"] / max(g["elapsed"], seconds),
        "late_fraction": g["late_fraction"],
        "max_lag_ms": 1000 * g["max_lag"],
        # Phases sent late still arrive, as a burst (harder on the recorder, not easier);
        # only a generator that could not keep the average rate leaves load undelivered.
        "on_schedule": achieved >= 0.98 * target_pps and not g["failed"],
        # Per packet actually sent (a call is 100 packets/s), so a generator that ran
        # late and stretched the step does not inflate the figure.
        "cpu_per_call_second": cpu * PACKETS_PER_CALL_SECOND / max(g["sent"], 1),
        "cpu_share": cpu / max(g["elapsed"], seconds),
        "system_share": system / max(g["elapsed"], seconds),
    }


HEADER = (
    f"{'receiver':<16}{'calls':>6}{'target pps':>11}{'gen pps':>9}{'gen usr+sys':>12}{'late':>6}{'max lag':>8}"
    f"{'sent':>9}{'lost':>7}{'loss %':>7}{'rec CPU (sys)':>14}{'CPU s/call-s':>13}{'rcvbuf':>7}  verdict"
)


def ramp(
    kind: str, steps: list[int], seconds: float, recorder_core: int, generator_core: int
) -> tuple[dict[str, Any] | None, str]:
    """Run steps until one is not clean; the last clean step's figures and why the ramp ended."""
    label = "MediaEngine" if kind == "engine" else "asyncio (plain)"
    best: dict[str, Any] | None = None
    for calls in steps:
        r = run_step(kind, calls, seconds, recorder_core, generator_core)
        loss = 100.0 * r["lost"] / max(r["sent"], 1)
        if r["lost"] > 0:
            verdict = "RECORDER LOST PACKETS"
        elif not r["on_schedule"]:
            verdict = "GENERATOR BEHIND (load not delivered)"
        else:
            verdict = "ok"
        print(
            f"{label:<16}{calls:>6}{r['target_pps']:>11.0f}{r['achieved_pps']:>9.0f}"
            f"{100 * r['generator_user']:>6.0f}+{100 * r['generator_system']:>3.0f}%"
            f"{100 * r['late_fraction']:>5.1f}%{r['max_lag_ms']:>6.1f}ms{r['sent']:>9}{r['lost']:>7}{loss:>7.2f}"
            f"{100 * r['cpu_share']:>7.0f}% ({100 * r['system_share']:>3.0f}%)"
            f"{r['cpu_per_call_second']:>13.6f}{r['kernel_drops']:>7}  {verdict}",
            flush=True,
        )
        if verdict != "ok":
            return best, f"ramp stopped at {calls} calls: {verdict}"
        best = r
    return best, "every step was clean"


def headline(label: str, best: dict[str, Any] | None, why: str) -> None:
    if best is None:
        print(f"{label}: no step was clean ({why})")
        return
    per_call = best["cpu_per_call_second"]
    print(
        f"{label}: {best['calls']} concurrent calls with zero loss on one core "
        f"({best['target_pps']:.0f} packets/s; generator achieved {best['achieved_pps']:.0f}/s), "
        f"{per_call:.6f} CPU-s per call-second there (~{1 / per_call:.0f} calls per core by CPU); {why}"
    )


PAUSE_MODES = (
    ("off", "pci off"),
    ("default", "RFC 4733"),
    ("pauses", "with pauses"),
    ("inband", "+ in-band"),
)


def compare_pauses(
    calls: int, seconds: float, repeat: int, share: float, recorder_core: int, generator_core: int
) -> None:
    """The PCI pause scenario: the three modes at one load, interleaved, against ``pci off``."""
    print(
        f"PCI pause scenario: {calls} calls, {seconds:.0f} s per run, {repeat} rounds; "
        f"'with pauses' keeps {100 * share:.0f} % of the calls paused, {PAUSE_SECONDS} s each"
    )
    results: dict[str, list[dict[str, Any]]] = {mode: [] for mode, _ in PAUSE_MODES}
    for round_ in range(repeat):
        order = PAUSE_MODES if round_ % 2 == 0 else tuple(reversed(PAUSE_MODES))
        for mode, label in order:
            r = run_step("engine", calls, seconds, recorder_core, generator_core, mode, share)
            results[mode].append(r)
            print(
                f"  round {round_ + 1} {label:<12} CPU {r['cpu_per_call_second']:.6f} s/call-s, "
                f"{100 * r['cpu_share']:.0f} % of the core, lost {r['lost']} of {r['sent']}"
                + ("" if r["on_schedule"] else " (generator behind)"),
                flush=True,
            )
    base = float(np.median([r["cpu_per_call_second"] for r in results["off"]]))
    print()
    for mode, label in PAUSE_MODES:
        median = float(np.median([r["cpu_per_call_second"] for r in results[mode]]))
        lost = sum(r["lost"] for r in results[mode])
        print(
            f"{label:<12} {median:.6f} CPU-s per call-second (median), {100 * (median / base - 1):+.1f} % "
            f"against pci off; {lost} packets lost in {repeat} runs"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", default="500,1000,1500,2000,2500,3000")
    parser.add_argument("--baseline-steps", default="100,200,300,400,500,750,1000")
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--skip-baseline", action="store_true")
    parser.add_argument("--phases", type=int, default=10, help="sending phases per 20 ms tick")
    parser.add_argument("--pauses", type=int, default=0, help="run the PCI pause scenario at this many calls")
    parser.add_argument("--repeat", type=int, default=3, help="rounds of the pause scenario")
    parser.add_argument("--pause-share", type=float, default=0.2, help="share of calls paused each second")
    args = parser.parse_args()
    global PHASES
    PHASES = args.phases  # the generator processes are forked and inherit it
    cores = sorted(os.sched_getaffinity(0))
    recorder_core = cores[0]
    generator_core = cores[1] if len(cores) > 1 else cores[0]
    print(f"load average before: {os.getloadavg()[0]:.2f} (other processes share these cores)")
    print(
        f"{len(cores)} cores: recorder pinned to core {recorder_core}, one generator process pinned to "
        f"core {generator_core}, {args.seconds:.0f} s per step, 2 RTP streams per call"
    )
    if args.pauses:
        compare_pauses(
            args.pauses, args.seconds, args.repeat, args.pause_share, recorder_core, generator_core
        )
        return
    print(HEADER)
    steps = [int(x) for x in args.steps.split(",")]
    engine = ramp("engine", steps, args.seconds, recorder_core, generator_core)
    baseline = None
    if not args.skip_baseline:
        steps = [int(x) for x in args.baseline_steps.split(",")]
        baseline = ramp("asyncio", steps, args.seconds, recorder_core, generator_core)
    print()
    headline("MediaEngine", *engine)
    if baseline is not None:
        headline("plain asyncio", *baseline)


if __name__ == "__main__":
    main()
