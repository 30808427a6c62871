"""Capture capacity: concurrent G.711 calls one recorder core holds with zero packet loss.

Run: ``python bench/capture.py [--steps 250,500,1000,2000,3000] [--seconds 8]``

For each step, a fresh recorder process pinned to core 0 opens N sessions
with two RTP streams each (the MediaEngine's real path: ports, spool files,
capture thread), and load-generator processes pinned to the other core(s)
send real 172-byte RTP (seq/timestamp advancing) to every stream every 20 ms
on absolute deadlines, all of one tick in ``sendmmsg`` batches so the
generator's Python cost does not depend on N. Received packets are counted
from what the capture loop wrote to the journals. The same step is then run
against a plain asyncio ``DatagramProtocol`` counter (no uvloop) as baseline.

Printed per step: packets sent/received, loss, recorder CPU seconds per
call-second, and whether the generator kept its schedule (on loopback the
kernel's receive work runs on the sending core, so the generator is the first
to run out of CPU on a 2-core machine: a step where it fell behind measures
the generator, not the recorder).
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import multiprocessing as mp
import os
import shutil
import socket
import tempfile
import time
from multiprocessing.connection import Connection
from typing import Any

import numpy as np

PACKET = 172
TICK = 0.02
GRACE = 0.3

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


def _generator(ports: list[int], start_at: float, seconds: float, core: int, out: Connection) -> None:
    try:
        os.sched_setaffinity(0, {core})
    except OSError:
        pass
    libc = ctypes.CDLL(None, use_errno=True)
    n = len(ports)
    buf = np.zeros((n, PACKET), dtype=np.uint8)
    buf[:, 0] = 0x80
    buf[:, 12:] = 0xFF  # µ-law silence
    ssrc = np.arange(n, dtype=">u4")
    buf[:, 8:12] = ssrc.view(np.uint8).reshape(n, 4)
    names = np.zeros((n, 16), dtype=np.uint8)
    names[:, 0:2] = np.frombuffer(np.uint16(socket.AF_INET).tobytes(), dtype=np.uint8)
    names[:, 2:4] = np.array(ports, dtype=">u2").view(np.uint8).reshape(n, 2)
    names[:, 4:8] = np.frombuffer(socket.inet_aton("127.0.0.1"), dtype=np.uint8)
    iovs = (_Iovec * n)()
    msgs = (_Mmsghdr * n)()
    base, names_base = buf.ctypes.data, names.ctypes.data
    for i in range(n):
        iovs[i].iov_base = base + i * PACKET
        iovs[i].iov_len = PACKET
        msgs[i].msg_hdr.msg_name = names_base + i * 16
        msgs[i].msg_hdr.msg_namelen = 16
        msgs[i].msg_hdr.msg_iov = ctypes.pointer(iovs[i])
        msgs[i].msg_hdr.msg_iovlen = 1
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 * 1024 * 1024)
    fd = sock.fileno()
    ticks = int(seconds / TICK)
    sent = 0
    late_ticks = 0
    msg_size = ctypes.sizeof(_Mmsghdr)
    msgs_addr = ctypes.addressof(msgs)
    while time.time() < start_at:
        time.sleep(min(0.01, max(0.0, start_at - time.time())))
    for k in range(ticks):
        deadline = start_at + k * TICK
        delay = deadline - time.time()
        if delay > 0:
            time.sleep(delay)
        elif delay < -TICK:
            late_ticks += 1
        buf[:, 2:4] = np.array([k & 0xFFFF], dtype=">u2").view(np.uint8)
        buf[:, 4:8] = np.array([(k * 160) & 0xFFFFFFFF], dtype=">u4").view(np.uint8)
        done = 0
        while done < n:
            count = min(1024, n - done)
            r = libc.sendmmsg(fd, ctypes.c_void_p(msgs_addr + done * msg_size), count, 0)
            if r <= 0:
                break
            done += r
        sent += done
    out.send((sent, late_ticks, ticks, time.time() - start_at))
    out.close()


# -- recorders -------------------------------------------------------------------------------


def _engine_recorder(calls: int, conn: Connection) -> None:
    os.sched_setaffinity(0, {0})
    from callvault.media.codec_spec import CodecSpec
    from callvault.runtime.media.engine import MediaEngine
    from callvault.services.context import open_context
    from callvault.settings import load_settings

    data = tempfile.mkdtemp(prefix="cv-capture-")
    settings = load_settings(env={}, data_dir=data, rtp_ports="20000-39999", sip_host="127.0.0.1")
    ctx = open_context(settings)

    async def main() -> None:
        engine = MediaEngine(settings, ctx.recordings, ctx.directory, render_executor=_NoExecutor())
        await engine.start()
        pcmu = CodecSpec(0, "PCMU", 8000)
        ports: list[int] = []
        for c in range(calls):
            session = engine.open_session(f"bench-{c}", time.time())
            ports.append(session.add_stream("a", [pcmu], 0, None, None))
            ports.append(session.add_stream("b", [pcmu], 1, None, None))
        conn.send(ports)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, conn.recv)  # "start"
        cpu0 = time.process_time()
        await loop.run_in_executor(None, conn.recv)  # "count"
        # Packets still queued 0.3 s after the last send count as lost: a receiver
        # that falls behind in real time loses them once the socket buffers fill.
        await asyncio.sleep(GRACE)
        done = asyncio.Event()
        engine.capture.flush_all()
        engine.capture.call(lambda: loop.call_soon_threadsafe(done.set))
        await done.wait()
        cpu = time.process_time() - cpu0
        conn.send((engine.capture.packets_total, cpu))

    try:
        asyncio.run(main())
    finally:
        shutil.rmtree(data, ignore_errors=True)


class _NoExecutor:
    """The capture bench never finalises (the recorder process is discarded)."""

    def submit(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("not used")

    def shutdown(self, wait: bool = True) -> None:
        pass


def _asyncio_recorder(calls: int, conn: Connection) -> None:
    os.sched_setaffinity(0, {0})

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
        cpu0 = time.process_time()
        await loop.run_in_executor(None, conn.recv)
        await asyncio.sleep(GRACE)
        conn.send((Counter.count, time.process_time() - cpu0))
        for t in transports:
            t.close()

    asyncio.run(main())


def _udp_drops() -> int:
    """Datagrams the kernel dropped for full socket buffers (this network namespace)."""
    with open("/proc/net/snmp") as fh:
        rows = [line.split() for line in fh if line.startswith("Udp:")]
    return int(rows[1][rows[0].index("RcvbufErrors")])


def run_step(kind: str, calls: int, seconds: float, generators: int) -> dict[str, Any]:
    ctx = mp.get_context("fork")
    drops0 = _udp_drops()
    parent, child = ctx.Pipe()
    target = _engine_recorder if kind == "engine" else _asyncio_recorder
    recorder = ctx.Process(target=target, args=(calls, child), daemon=True)
    recorder.start()
    ports: list[int] = parent.recv()
    cores = sorted(os.sched_getaffinity(0))
    gen_cores = [c for c in cores if c != 0] or [0]
    start_at = time.time() + 0.5
    pipes = []
    procs = []
    for g in range(generators):
        a, b = ctx.Pipe()
        p = ctx.Process(
            target=_generator,
            args=(ports[g::generators], start_at, seconds, gen_cores[g % len(gen_cores)], b),
            daemon=True,
        )
        p.start()
        pipes.append(a)
        procs.append(p)
    parent.send("start")
    results = [a.recv() for a in pipes]
    for p in procs:
        p.join()
    parent.send("count")
    received, cpu = parent.recv()
    recorder.kill()
    recorder.join()
    drops = _udp_drops() - drops0
    sent = sum(r[0] for r in results)
    late = max(r[1] / max(r[2], 1) for r in results)
    rate = sent / seconds
    return {
        "kind": kind,
        "calls": calls,
        "sent": sent,
        "received": received,
        "lost": sent - received,
        "kernel_drops": drops,
        "target_pps": calls * 100,
        "sent_pps": rate,
        "on_schedule": rate >= 0.97 * calls * 100 and late < 0.05,
        "cpu_per_call_second": cpu / (calls * seconds),
        "cpu_share": cpu / seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", default="250,500,1000,2000,3000")
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--generators", type=int, default=2)
    parser.add_argument(
        "--baseline-max", type=int, default=1000, help="largest step for the asyncio baseline"
    )
    args = parser.parse_args()
    steps = [int(s) for s in args.steps.split(",")]
    print(f"load average before: {os.getloadavg()[0]:.2f} (other processes share these cores)")
    print(
        f"cores: {os.cpu_count()}, recorder on core 0, {args.generators} generator processes elsewhere, {args.seconds:.0f} s per step"
    )
    print(
        f"{'receiver':<16}{'calls':>6}{'target pps':>11}{'sent pps':>10}{'lost':>8}{'loss %':>8}{'CPU %':>7}{'CPU s/call-s':>14}{'rcvbuf drops':>13}  schedule"
    )
    best: dict[str, int] = {}
    for calls in steps:
        for kind in ("engine", "asyncio"):
            if kind == "asyncio" and calls > args.baseline_max:
                continue
            r = run_step(kind, calls, args.seconds, args.generators)
            loss = 100.0 * r["lost"] / max(r["sent"], 1)
            label = "MediaEngine" if kind == "engine" else "asyncio (plain)"
            print(
                f"{label:<16}{calls:>6}{r['target_pps']:>11}{r['sent_pps']:>10.0f}{r['lost']:>8}{loss:>8.2f}"
                f"{100 * r['cpu_share']:>7.0f}{r['cpu_per_call_second']:>14.6f}{r['kernel_drops']:>13}  {'ok' if r['on_schedule'] else 'GENERATOR BEHIND'}"
            )
            if r["lost"] <= 0 and r["on_schedule"]:
                best[kind] = max(best.get(kind, 0), calls)
    print()
    for kind, label in (("engine", "MediaEngine"), ("asyncio", "plain asyncio")):
        print(f"most concurrent calls with zero loss, {label}: {best.get(kind, 0)}")


if __name__ == "__main__":
    main()
