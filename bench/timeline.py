"""Time the RTP stream timeline (placement, statistics, events) on generated calls.

Run: ``python bench/timeline.py`` (this checkout), or
``python bench/timeline.py --against REV`` to measure another git revision in the
same run, as the baseline, and check that both lay out every packet identically.

Two calls, generated here from a fixed seed with numpy and ``struct`` (no callvault
code, so every revision gets the same bytes):

* ``two-stream-10min``: a 10-minute call, two PCMU streams at 20 ms, a little
  jitter and 0.5 % loss: what every ordinary call costs at seal time.
* ``jittery-switching``: one 10-minute stream with up to 80 ms jitter (reordering),
  duplicates, 2 % loss with bursts, an SSRC switch every 2 minutes, a sender clock
  50 ppm fast (re-anchoring), a timestamp reset and DTMF (RFC 4733) events.

Each revision runs in its own interpreter (``PYTHONPATH`` at that revision's
``src``), ``--rounds`` times alternating with the baseline, ``--repeat`` layouts per
round. Times are CPU seconds of the process (the layout is single-threaded numpy),
so other work on a shared machine disturbs them less than wall time; the best and
median are printed with the baseline's beside them, and a digest of every output
(placements, payloads, statistics, events, anchor) must be equal across revisions.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

REPO = Path(__file__).resolve().parents[1]
CLOCK = 8000
FRAME = 160  # 20 ms at 8 kHz
MINUTES = 10


# -- generated calls ------------------------------------------------------------------------------


def _datagrams(
    seq: npt.NDArray[np.int64],
    ts: npt.NDArray[np.int64],
    pt: npt.NDArray[np.int64],
    ssrc: npt.NDArray[np.int64],
    payloads: list[bytes],
) -> list[bytes]:
    header = np.zeros((len(seq), 12), dtype=np.uint8)
    header[:, 0] = 0x80
    header[:, 1] = pt & 0x7F
    header[:, 2:4] = ((seq & 0xFFFF).astype(">u2")).view(np.uint8).reshape(-1, 2)
    header[:, 4:8] = ((ts & 0xFFFFFFFF).astype(">u4")).view(np.uint8).reshape(-1, 4)
    header[:, 8:12] = ((ssrc & 0xFFFFFFFF).astype(">u4")).view(np.uint8).reshape(-1, 4)
    return [h.tobytes() + p for h, p in zip(header, payloads, strict=True)]


def _audio(rng: np.random.Generator, count: int) -> list[bytes]:
    noise = rng.integers(0, 256, size=(count, FRAME), dtype=np.uint8)
    return [row.tobytes() for row in noise]


def two_stream_call(seed: int = 1) -> list[tuple[npt.NDArray[np.float64], list[bytes]]]:
    rng = np.random.default_rng(seed)
    streams = []
    count = MINUTES * 60 * 50
    for _ in range(2):
        index = np.arange(count, dtype=np.int64)
        seq = index + int(rng.integers(0, 65536))  # wraps during the call
        ts = index * FRAME + int(rng.integers(0, 1 << 32))
        arrival = 1_700_000_000.0 + index * 0.02 + 0.03 + rng.exponential(0.002, count)
        keep = rng.random(count) > 0.005
        pt = np.zeros(count, dtype=np.int64)
        ssrc = np.full(count, int(rng.integers(0, 1 << 32)), dtype=np.int64)
        data = _datagrams(seq[keep], ts[keep], pt[keep], ssrc[keep], _audio(rng, int(keep.sum())))
        order = np.argsort(arrival[keep], kind="stable")
        streams.append((arrival[keep][order], [data[i] for i in order.tolist()]))
    return streams


def jittery_switching_call(seed: int = 2) -> list[tuple[npt.NDArray[np.float64], list[bytes]]]:
    rng = np.random.default_rng(seed)
    count = MINUTES * 60 * 50
    index = np.arange(count, dtype=np.int64)
    segment = index // (2 * 60 * 50)  # a new SSRC every 2 minutes
    ssrcs = rng.integers(0, 1 << 32, size=int(segment.max()) + 1)
    ssrc = ssrcs[segment].astype(np.int64)
    seq = np.empty(count, dtype=np.int64)
    ts = np.empty(count, dtype=np.int64)
    for s in range(int(segment.max()) + 1):
        part = np.flatnonzero(segment == s)
        local = part - part[0]
        seq[part] = local + int(rng.integers(0, 65536))
        ts[part] = local * FRAME + int(rng.integers(0, 1 << 32))
    # A timestamp reset in the middle of the second SSRC, same SSRC and sequence.
    reset = np.flatnonzero(segment == 1)[len(np.flatnonzero(segment == 1)) // 2]
    ts[reset : np.flatnonzero(segment == 1)[-1] + 1] += 123_456_789
    pt = np.zeros(count, dtype=np.int64)
    payloads = _audio(rng, count)
    # DTMF: a digit of 5 packets every 20 s, replacing the audio of those slots.
    for first in range(500, count - 10, 1000):
        for step in range(5):
            slot = first + step
            pt[slot] = 101
            end = 0x80 if step == 4 else 0
            payloads[slot] = bytes([5, end | 10]) + int((step + 1) * FRAME).to_bytes(2, "big")
            ts[slot] = ts[first]
    sent = 1_700_000_000.0 + index * 0.02 * (1 + 50e-6)  # the sender's clock runs 50 ppm fast
    arrival = sent + 0.04 + rng.uniform(0.0, 0.08, count)
    # Loss: 2 % single packets and a 1 s burst each 3 minutes; duplicates: 0.5 %.
    keep = rng.random(count) > 0.02
    for start in range(4000, count, 9000):
        keep[start : start + 50] = False
    dup = np.flatnonzero(keep & (rng.random(count) < 0.005))
    order = np.concatenate([np.flatnonzero(keep), dup])
    arrivals = np.concatenate([arrival[keep], arrival[dup] + 0.01])
    data = _datagrams(seq[order], ts[order], pt[order], ssrc[order], [payloads[i] for i in order.tolist()])
    by_arrival = np.argsort(arrivals, kind="stable")
    return [(arrivals[by_arrival], [data[i] for i in by_arrival.tolist()])]


SCENES = {"two-stream-10min": two_stream_call, "jittery-switching": jittery_switching_call}


# -- one revision's measurement (runs in a child interpreter) ---------------------------------


def _digest(timeline: Any) -> str:
    h = hashlib.sha256()
    arrays = timeline.placement_arrays()
    h.update(np.ascontiguousarray(arrays.offset).tobytes())
    h.update(np.ascontiguousarray(arrays.payload_type).tobytes())
    for payload in arrays.payloads:
        h.update(payload)
    h.update(repr(timeline.stats).encode())
    h.update(repr(timeline.events()).encode())
    h.update(repr((timeline.anchor_wall, timeline.last_arrival)).encode())
    return h.hexdigest()


def measure(repeat: int) -> dict[str, Any]:
    from callvault.rtp.timeline import StreamTimeline

    out: dict[str, Any] = {"module": sys.modules["callvault.rtp.timeline"].__file__}
    for name, make in SCENES.items():
        streams = make()
        times: list[float] = []
        digests: set[str] = set()
        for _ in range(repeat):
            start = time.process_time()
            timelines = []
            for arrivals, datagrams in streams:
                timeline = StreamTimeline(CLOCK, audio_payload_types=(0,), event_payload_types=(101,))
                timeline.add_batch(arrivals, datagrams)
                timeline.placement_arrays()
                timeline.events()
                timelines.append(timeline)
            times.append(time.process_time() - start)
            digests.add("/".join(_digest(t) for t in timelines))
        assert len(digests) == 1, "the same input laid out differently twice"
        out[name] = {
            "packets": sum(len(d) for _, d in streams),
            "times": times,
            "digest": digests.pop(),
        }
    return out


# -- driver ---------------------------------------------------------------------------------------


def _run(src: Path, repeat: int) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(src)}
    result = subprocess.run(
        [sys.executable, __file__, "--measure", "--repeat", str(repeat)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    measured: dict[str, Any] = json.loads(result.stdout)
    if not str(measured["module"]).startswith(str(src)):
        sys.exit(f"measured {measured['module']}, not the revision under {src}")
    return measured


def _summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in SCENES:
        digests = {run[name]["digest"] for run in runs}
        assert len(digests) == 1, f"{name}: one revision laid the same input out differently"
        times = [t for run in runs for t in run[name]["times"]]
        out[name] = {
            "packets": runs[0][name]["packets"],
            "best": min(times),
            "median": statistics.median(times),
            "digest": digests.pop(),
        }
    return out


def _export(rev: str, into: Path) -> Path:
    """The ``src`` folder of git revision ``rev``, written under ``into``."""
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", "--format=tar", rev, "src"], capture_output=True, check=True
    ).stdout
    tar_path = into / "src.tar"
    tar_path.write_bytes(archive)
    with tarfile.open(tar_path) as tar:
        tar.extractall(into, filter="data")
    return into / "src"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--against", metavar="REV", help="git revision measured as the baseline (e.g. main)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.measure:
        print(json.dumps(measure(options.repeat)))
        return 0
    with tempfile.TemporaryDirectory(prefix="timeline-bench-") as tmp:
        baseline_src = _export(options.against, Path(tmp)) if options.against else None
        runs: dict[str, list[dict[str, Any]]] = {"current": [], "baseline": []}
        for _ in range(options.rounds):  # alternating, so both see the same machine load
            if baseline_src is not None:
                runs["baseline"].append(_run(baseline_src, options.repeat))
            runs["current"].append(_run(REPO / "src", options.repeat))
    current = _summary(runs["current"])
    baseline = _summary(runs["baseline"]) if baseline_src is not None else None
    runs_each = options.rounds * options.repeat
    print(f"StreamTimeline, {runs_each} layouts of each call per revision (best / median CPU seconds)")
    header = f"{'call':<20} {'packets':>8} {'this checkout':>17}"
    if baseline:
        header += f" {options.against:>17} {'ratio':>6}  output"
    print(header)
    identical = True
    for name in SCENES:
        now = current[name]
        line = f"{name:<20} {now['packets']:>8} {now['best']:>8.3f} / {now['median']:<6.3f}"
        if baseline:
            then = baseline[name]
            same = then["digest"] == now["digest"]
            identical &= same
            line += (
                f" {then['best']:>8.3f} / {then['median']:<6.3f} {now['best'] / then['best']:>6.2f}"
                f"  {'identical' if same else 'DIFFERENT'}"
            )
        print(line)
    if not identical:
        print("the layouts differ from the baseline's", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
