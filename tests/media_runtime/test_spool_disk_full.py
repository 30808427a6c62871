"""A full disk under the spool: failed writes roll back, nothing is lost silently (writer and backlog)."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.media_runtime.journals import create_journal, read_journal
from tests.support.full_disk import full_disk

from callvault.errors import StorageError, StorageFull
from callvault.media.codec_spec import CodecSpec
from callvault.runtime.media.journal_backlog import LOSS_EVENT, JournalBacklog
from callvault.storage.spool import SpoolStream

PCMU = CodecSpec(0, "PCMU", 8000)


def _packets(first: int, count: int) -> tuple[list[float], list[bytes]]:
    """``count`` 20 ms packets numbered from ``first``: arrival = number * 0.02 s."""
    return [n * 0.02 for n in range(first, first + count)], [
        b"\x80\x00" + n.to_bytes(2, "big") for n in range(first, first + count)
    ]


@pytest.mark.parametrize("room", [0, 3, 9, 40])
def test_a_failed_write_is_rolled_back_to_the_record_boundary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, room: int
) -> None:
    writer = create_journal(tmp_path, "rec-f", 0.0)
    writer.write_stream(SpoolStream(0, "agent", [PCMU], 0))
    writer.write_packets(0, *_packets(0, 5))
    before = writer.path.stat().st_size
    with full_disk(monkeypatch) as disk:
        disk.fill(room)  # a short write of `room` bytes, then ENOSPC (or ENOSPC at once)
        with pytest.raises(StorageFull, match="No space left on device") as caught:
            writer.write_packets(0, *_packets(5, 5))
        assert caught.value.status_code == 503 and caught.value.code == "storage_full"
        assert disk.short + disk.refused >= 1
        # No torn record: the journal is exactly what it was before the write.
        assert writer.path.stat().st_size == before
        disk.free()
        writer.write_packets(0, *_packets(5, 5))  # the caller's retry goes through
    writer.close()
    contents = read_journal(writer.path)
    assert not contents.torn and contents.damaged == []
    assert contents.packets_of(0) == _packets(0, 10)


def test_stream_and_event_records_wait_in_memory_and_go_out_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = create_journal(tmp_path, "rec-s", 0.0)
    with full_disk(monkeypatch) as disk:
        disk.fill(5)
        writer.write_stream(SpoolStream(0, "agent", [PCMU], 0))  # does not raise: kept
        writer.write_event("hold", 1.0, {"stream": "agent"})
        assert writer.deferred == 2
        assert not writer.retry()
        with pytest.raises(StorageError):
            writer.write_packets(0, *_packets(0, 3))
        disk.free()
        writer.write_packets(0, *_packets(0, 3))
        assert writer.deferred == 0
    assert writer.close() == 0
    contents = read_journal(writer.path)
    assert contents.streams[0].label == "agent" and contents.events[0]["kind"] == "hold"
    assert contents.packets_of(0) == _packets(0, 3) and contents.damaged == []


def test_records_the_disk_never_takes_are_counted_at_close(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = create_journal(tmp_path, "rec-c", 0.0)
    with full_disk(monkeypatch) as disk:
        disk.fill(0)
        writer.write_event("hold", 1.0, {})
        assert writer.close() == 1


def test_backlog_retries_then_drops_oldest_and_accounts_for_every_packet(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = create_journal(tmp_path, "rec-b", 0.0)
    writer.write_stream(SpoolStream(0, "agent", [PCMU], 0))
    writer.write_stream(SpoolStream(1, "customer", [PCMU], 1))
    backlog = JournalBacklog(writer, backlog_seconds=1.0)
    with full_disk(monkeypatch) as disk:
        # Second 0 is stored; the disk is full from second 1 to second 4 (flushes at 2, 3, 4).
        assert backlog.write([(0, *_packets(0, 50)), (1, *_packets(0, 50))], now=1.0)
        disk.fill(0)
        for second in (1, 2, 3):
            batches = [(0, *_packets(50 * second, 50)), (1, *_packets(50 * second, 50))]
            assert not backlog.write(batches, now=second + 1.0)
            assert backlog.waiting
        # At now=4 only the last second (arrivals >= 3.0) is still kept: seconds 1 and 2 are lost.
        assert backlog.dropped == 2 * 100
        disk.free()
        assert backlog.write([(0, *_packets(200, 50)), (1, *_packets(200, 50))], now=5.0)
        assert not backlog.waiting
    assert backlog.close(5.0) == []  # the outage ended: its account is in the journal
    writer.close()
    contents = read_journal(writer.path)
    arrivals, _ = contents.packets_of(0)
    assert arrivals == _packets(0, 50)[0] + _packets(150, 100)[0]  # before and after, in order
    (event,) = [e for e in contents.events if e["kind"] == LOSS_EVENT]
    report = event["data"]
    assert report["failed_at"] == 2.0 and report["recovered_at"] == 5.0 and report["error"] == "storage_full"
    for stream in ("0", "1"):
        lost = report["streams"][stream]
        assert lost["packets"] == 100 and lost["first"] == 1.0 and lost["last"] == pytest.approx(2.98)
        assert lost["seconds"] == pytest.approx(2.0)


def test_an_outage_lasting_to_the_hang_up_is_reported_at_close(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = create_journal(tmp_path, "rec-t", 0.0)
    backlog = JournalBacklog(writer, backlog_seconds=10.0)
    with full_disk(monkeypatch) as disk:
        assert backlog.write([(0, *_packets(0, 50))], now=1.0)
        disk.fill(0)
        assert not backlog.write([(0, *_packets(50, 25))], now=1.5)
        assert backlog.dropped == 0  # still within the backlog
        (report,) = backlog.close(1.6)
    assert report["recovered_at"] is None and report["streams"]["0"]["packets"] == 25
    assert backlog.dropped == 25
