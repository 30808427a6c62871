"""Passive capture: pcap import throughput and live capture capacity on one core.

Run: ``python bench/passive.py [--import-calls 20 --import-seconds 60] [--live 250,500,1000,2000 --live-seconds 5]``

Import: a capture of ``--import-calls`` concurrent G.711 calls (SIP + RTP both
ways, ``--import-seconds`` each, written by tests.support.wire) is imported by a
process pinned to one core, in two runs: the capture stage alone (read, demux,
dialogs, journal: what ``import-pcap`` does before rendering) and the whole
import (plus rendering and sealing into a SQLite vault, render worker a thread
of the same process). Printed: call-hours per core-hour (call audio over CPU
seconds, user+system). Baseline: ``tshark -r FILE -q -z rtp,streams``, Wireshark
dissecting the same file and finding the same RTP streams (from SIP/SDP),
also one core: what a VoIP monitoring tool's analysis costs without decoding,
rendering or storing any audio.

Live: a recorder pinned to one core reads ``lo`` through the AF_PACKET path of
``serve`` (runtime.passive.live.capture_loop: a TPACKET_V3 ring, a kernel BPF
filter ``inbound and udp`` so loopback's sent copies never reach user space) into a PassiveRecorder
that follows N calls (their SIP fed first) and journals their RTP;
bench/capture.py's sendmmsg generator, pinned to the other core, sends 50 G.711
packets a second each way for every call. Loss: packets the generator's sendmmsg
accepted that the recorder did not journal; kernel drops read from
PACKET_STATISTICS. The catalogue is stubbed (``begin`` returns an id): the
figure is capture, not database, capacity.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere
sys.path.insert(0, str(Path(__file__).resolve().parent))

from tests.support.audio import voice  # noqa: E402
from tests.support.wire import CallPlan, Party, call_frames, ethernet, ipv4, pcap, sdp, sip, udp  # noqa: E402

import capture as capture_bench  # noqa: E402  (bench/capture.py: the sendmmsg generator)
from callvault.crypto.keyring import LocalKeyring  # noqa: E402
from callvault.runtime.passive.bpf import compile_filter  # noqa: E402
from callvault.runtime.passive.live import capture_loop, kernel_drops, open_interface  # noqa: E402
from callvault.runtime.passive.pcap_import import OfflineSealing, import_capture  # noqa: E402
from callvault.runtime.passive.recorder import PassiveRecorder  # noqa: E402
from callvault.services.call_record import IngestSource  # noqa: E402
from callvault.services.context import open_context  # noqa: E402
from callvault.settings import load_settings  # noqa: E402

CORE = 0


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# -- import --------------------------------------------------------------------------------


def build_capture(calls: int, seconds: int, path: Path) -> None:
    audio = voice(seconds, 8000, 140, 3)
    frames = []
    for i in range(calls):
        plan = CallPlan(
            Party(f"+1415555{i:04d}", f"198.51.{i // 200}.{i % 200 + 1}", 5060, 30000 + 2 * i, audio),
            Party(f"{1000 + i}", "10.20.0.15", 5060, 16000 + 2 * i, audio[::-1].copy()),
            call_id=f"bench-{i}@test",
            start=1_760_000_000.0 + i * 0.137,
        )
        frames += call_frames(plan)
    frames.sort(key=lambda f: f[0])
    path.write_bytes(pcap(frames))


def _import_worker(path: str, data_dir: str, stage_only: bool, conn: Connection) -> None:
    os.sched_setaffinity(0, {CORE})
    settings = load_settings(env={"CALLVAULT_DATA_DIR": data_dir})
    ctx = open_context(settings)
    data = Path(path).read_bytes()
    source = IngestSource("import", user="bench")

    async def nothing(*_: Any) -> bool:
        return True

    async def run() -> Any:
        with ThreadPoolExecutor(1) as renders:
            sealing = OfflineSealing(ctx, renders)
            try:
                seal = nothing if stage_only else sealing.seal
                return await import_capture(ctx, data, Path(path).name, source, seal)
            finally:
                sealing.close()

    began, cpu0 = time.perf_counter(), _cpu()
    result = asyncio.run(run())
    conn.send(
        {
            "wall": time.perf_counter() - began,
            "cpu": _cpu() - cpu0,
            "calls": len(result.recording_ids),
            "sealed": result.sealed,
        }
    )
    ctx.close()


def measure_import(calls: int, seconds: int) -> None:
    work = Path(tempfile.mkdtemp(prefix="cv-passive-bench-"))
    try:
        capture = work / "calls.pcap"
        build_capture(calls, seconds, capture)
        call_hours = calls * seconds / 3600
        size_mb = capture.stat().st_size / 1e6
        print(
            f"pcap import: {calls} concurrent G.711 calls x {seconds} s ({call_hours:.2f} call-hours), {size_mb:.1f} MB"
        )
        for label, stage_only in (
            ("capture stage (read, demux, journal)", True),
            ("whole import (+ render, seal)", False),
        ):
            parent, child = mp.Pipe()
            data_dir = work / ("stage" if stage_only else "full")
            proc = mp.get_context("spawn").Process(
                target=_import_worker, args=(str(capture), str(data_dir), stage_only, child)
            )
            proc.start()
            out = parent.recv()
            proc.join()
            rate = calls * seconds / out["cpu"]
            print(
                f"  {label:40s} {out['cpu']:7.2f} CPU s  {out['wall']:7.2f} s wall  {rate:8.0f} call-hours per core-hour  (calls {out['calls']}, sealed {out['sealed']})"
            )
        tshark = shutil.which("tshark")
        if tshark:
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            began = time.perf_counter()
            subprocess.run(
                ["taskset", "-c", str(CORE), tshark, "-r", str(capture), "-q", "-z", "rtp,streams"],
                check=True,
                capture_output=True,
            )
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
            print(
                f"  {'baseline: tshark -z rtp,streams':40s} {cpu:7.2f} CPU s  {time.perf_counter() - began:7.2f} s wall  {calls * seconds / cpu:8.0f} call-hours per core-hour"
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)


# -- live ------------------------------------------------------------------------------------


class _StubRecordings:
    def begin(self, *_: Any) -> str:
        return str(uuid.uuid4())


def _live_recorder(calls: int, base_port: int, seconds: float, work: str, conn: Connection) -> None:
    os.sched_setaffinity(0, {CORE})
    spool = Path(work) / "spool"
    spool.mkdir(parents=True)
    keys = LocalKeyring(Path(work) / "keyring.json")
    recorder = PassiveRecorder(
        _StubRecordings(),
        lambda _: None,
        keys,
        spool,
        IngestSource("capture"),
        lambda _: None,
        rtp_timeout=60,
    )  # type: ignore[arg-type]
    now = time.time()
    a, b = ("127.0.0.1", 5060), ("127.0.0.1", 5062)
    for i in range(calls):  # each call: RTP to the callee on base+2i, to the caller on base+2i+1
        common = [
            ("Via", "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKb"),
            ("From", "<sip:+14155550100@a>;tag=a"),
            ("Call-ID", f"live-{i}"),
        ]
        invite = sip(
            "INVITE sip:1001@b SIP/2.0",
            [*common, ("To", "<sip:1001@b>"), ("CSeq", "1 INVITE")],
            sdp("127.0.0.1", base_port + 2 * i + 1),
        )
        ok = sip(
            "SIP/2.0 200 OK",
            [*common, ("To", "<sip:1001@b>;tag=b"), ("CSeq", "1 INVITE")],
            sdp("127.0.0.1", base_port + 2 * i),
        )
        recorder.frame(now, 1, ethernet(ipv4(a[0], b[0], 17, udp(a[1], b[1], invite))))
        recorder.frame(now, 1, ethernet(ipv4(b[0], a[0], 17, udp(b[1], a[1], ok))))
    program = compile_filter(f"inbound and udp dst portrange {base_port}-{base_port + 2 * calls}")
    interfaces = {"lo": open_interface("lo", program)}
    stop = threading.Event()
    thread = threading.Thread(target=capture_loop, args=(interfaces, recorder.frame, stop, recorder.tick))
    conn.send("ready")
    cpu0 = _cpu()
    thread.start()
    conn.recv()  # the generator finished
    time.sleep(0.3)
    stop.set()
    thread.join()
    cpu = _cpu() - cpu0
    drops = kernel_drops(interfaces["lo"].sock)
    recorder.finish()
    conn.send({"received": recorder.counts["rtp_packets"], "drops": drops, "cpu": cpu, "seconds": seconds})


def live_step(calls: int, seconds: float) -> dict[str, Any]:
    base = 42000
    work = tempfile.mkdtemp(prefix="cv-live-bench-")
    try:
        ctx = mp.get_context("fork")
        rec_parent, rec_child = ctx.Pipe()
        recorder = ctx.Process(target=_live_recorder, args=(calls, base, seconds, work, rec_child))
        recorder.start()
        assert rec_parent.recv() == "ready"
        gen_parent, gen_child = ctx.Pipe()
        ports = [base + p for p in range(2 * calls)]
        generator = ctx.Process(
            target=capture_bench._generator, args=(ports, time.time() + 0.5, seconds, 1, gen_child)
        )
        generator.start()
        sent = gen_parent.recv()
        generator.join()
        rec_parent.send("done")
        got = rec_parent.recv()
        recorder.join()
        return {
            "calls": calls,
            "sent": sent["sent"],
            **got,
            "gen_rate": sent["sent"] / (2 * calls * 50 * seconds),
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)


def measure_live(steps: list[int], seconds: float) -> None:
    print(f"live capture on lo, recorder on one core, {seconds:.0f} s per step")
    best = 0
    for calls in steps:
        r = live_step(calls, seconds)
        lost = r["sent"] - r["received"]
        cpu_share = r["cpu"] / seconds
        per_packet = r["cpu"] / max(1, r["received"]) * 1e6  # robust to other load on the machine
        print(
            f"  {calls:5d} calls: sent {r['sent']:8d}  journalled {r['received']:8d}  lost {lost:6d}  kernel drops {r['drops']:6d}  recorder CPU {cpu_share:5.0%} ({per_packet:.1f} us/packet)  generator at {r['gen_rate']:.0%} of target"
        )
        if lost == 0 and r["gen_rate"] >= 0.98:
            best = calls
    print(f"  => {best} concurrent G.711 calls with zero loss on one core (capture loop in Python)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--import-calls", type=int, default=20)
    parser.add_argument("--import-seconds", type=int, default=60)
    parser.add_argument("--live", default="250,500,1000,2000")
    parser.add_argument("--live-seconds", type=float, default=5)
    parser.add_argument("--skip-import", action="store_true")
    parser.add_argument("--skip-live", action="store_true")
    args = parser.parse_args()
    np.seterr(all="ignore")
    if not args.skip_import:
        measure_import(args.import_calls, args.import_seconds)
    if not args.skip_live:
        measure_live([int(s) for s in args.live.split(",")], args.live_seconds)


if __name__ == "__main__":
    main()
