"""Prometheus metrics of passive capture (live interfaces and capture imports), at ``/metrics``.

Counted per batch of frames or per call, never per packet on the capture thread.
"""

from __future__ import annotations

from prometheus_client import Counter

FRAMES = Counter("callvault_capture_frames", "Frames read from capture interfaces and files.", ["source"])
CALLS = Counter("callvault_capture_calls", "Sniffed calls recorded.", ["source"])
CALLS_LOST = Counter(
    "callvault_capture_calls_lost",
    "Sniffed calls answered but not recorded because the catalogue refused them (database down).",
    ["source"],
)
DAMAGED = Counter(
    "callvault_capture_damaged_frames",
    "Frames or SIP messages that could not be used (truncated, malformed, unknown link type).",
    ["source"],
)
UNSIGNALLED = Counter(
    "callvault_capture_unsignalled_packets",
    "RTP packets of no followed dialog (capture started mid-call, or SIP not visible).",
    ["source"],
)
DROPPED = Counter(
    "callvault_capture_kernel_drops",
    "Packets the kernel dropped before the capture read them.",
    ["interface"],
)
IMPORT_ERRORS = Counter("callvault_capture_import_errors", "Capture files refused or cut short.")


def count(source: str, counts: dict[str, int], damaged: int) -> None:
    FRAMES.labels(source).inc(counts.get("frames", 0))
    CALLS.labels(source).inc(counts.get("calls", 0))
    CALLS_LOST.labels(source).inc(counts.get("calls_lost", 0))
    UNSIGNALLED.labels(source).inc(counts.get("unsignalled_packets", 0))
    DAMAGED.labels(source).inc(damaged)
