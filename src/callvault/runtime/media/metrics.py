"""Prometheus metrics of the recorder's media capture (default registry, exported at ``/metrics``).

Packet counters are added in the engine's process when a recording is
sealed, from the per-stream statistics its render computed: the capture
thread itself counts nothing per packet.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import Counter, Gauge, Histogram

from callvault.services.call_record import StreamRecord

SESSIONS_ACTIVE = Gauge(
    "callvault_recording_sessions_active", "Recording sessions whose media is being captured."
)
PACKETS_RECEIVED = Counter(
    "callvault_rtp_packets_received",
    "RTP packets received in finalised recordings (unique sequence numbers).",
)
PACKETS_LOST = Counter("callvault_rtp_packets_lost", "RTP packets never received in finalised recordings.")
PACKETS_LATE = Counter(
    "callvault_rtp_packets_late",
    "RTP packets that arrived after a later one (reordered) in finalised recordings.",
)
PACKETS_DUPLICATED = Counter(
    "callvault_rtp_packets_duplicated", "Duplicate RTP packets received in finalised recordings."
)
PACKETS_DROPPED = Counter(
    "callvault_rtp_packets_dropped",
    "RTP packets refused in finalised recordings: reason 'source' (not from the address the stream "
    "latched to), 'srtp_auth' (failed SRTP authentication; also counted as lost).",
    ["reason"],
)
RECORDINGS_FINALISED = Counter(
    "callvault_recordings_finalised", "Recordings sealed by the recorder, by final status.", ["status"]
)
FINALISE_SECONDS = Histogram(
    "callvault_finalise_seconds",
    "Seconds from the end of a recording session (BYE, RTP timeout) to its recording being sealed.",
    buckets=(0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0),
)
FINALISE_BACKLOG = Gauge("callvault_finalise_backlog", "Recording sessions ended but not sealed yet.")


def _count(stats: dict[str, object], name: str) -> int:
    value = stats.get(name, 0)
    return int(value) if isinstance(value, int | float) else 0


def count_packets(streams: Iterable[StreamRecord]) -> None:
    """Add one sealed recording's per-stream packet statistics to the counters."""
    for stream in streams:
        PACKETS_RECEIVED.inc(_count(stream.stats, "received"))
        PACKETS_LOST.inc(max(0, _count(stream.stats, "lost")))
        PACKETS_LATE.inc(_count(stream.stats, "late"))
        PACKETS_DUPLICATED.inc(_count(stream.stats, "duplicated"))
        PACKETS_DROPPED.labels(reason="source").inc(_count(stream.stats, "dropped_source"))
        PACKETS_DROPPED.labels(reason="srtp_auth").inc(_count(stream.stats, "srtp_auth_failed"))


# -- storage trouble (see .journal_backlog, .disk_reserve) ------------------------------------------
SPOOL_LOST_PACKETS = Counter(
    "callvault_spool_lost_packets",
    "RTP packets received but lost because the spool journal could not be written (full disk).",
)
SPOOL_WRITE_FAILURES = Counter(
    "callvault_spool_write_failures",
    "Spool write outages (a full disk until the next successful write) in finalised recordings.",
)
DISK_FREE_BYTES = Gauge(
    "callvault_disk_free_bytes",
    "Free bytes on the file system of the spool and of a local vault.",
    ["volume"],
)
DISK_RESERVE_LOW = Gauge(
    "callvault_disk_reserve_low",
    "1 while free space is below CALLVAULT_MIN_FREE_DISK_MB: new calls are refused with 503.",
)
RENDER_TAIL_SECONDS = Histogram(
    "callvault_render_tail_seconds",
    "Seconds of audio left to render at hang-up (the rest was rendered while the call ran).",
    buckets=(1.0, 5.0, 10.0, 15.0, 20.0, 30.0, 60.0, 150.0, 600.0),
)
DISCLOSURE_CHECKS = Counter(
    "callvault_disclosure_checks", "Calls checked for the recording announcement, by result.", ["status"]
)
DISCLOSURE_CHECK_SECONDS = Histogram(
    "callvault_disclosure_check_seconds",
    "Seconds one disclosure check took at sealing (matching and the catalog write; in a thread).",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
)
PAUSES = Counter(
    "callvault_recording_pauses",
    "Silences started on live calls (PCI pause by API, keypad digits, ...), by cause.",
    ["cause"],
)
