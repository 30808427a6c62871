"""The spool journal: round trip, torn tail after a crash, failed authentication, file modes."""

from __future__ import annotations

import logging
import os
import stat
import struct
import zlib
from pathlib import Path

import pytest
from tests.media_runtime.journals import TEST_KEY, create_journal, read_journal

from callvault.crypto.record_seal import RecordSealer
from callvault.errors import IntegrityError, StorageError
from callvault.media.codec_spec import CodecSpec
from callvault.runtime.media.spool_key import journal_reader, journal_seal, side_file_seal
from callvault.storage.spool import (
    MAGIC,
    ArchivePart,
    SpoolStream,
    SpoolTail,
    SpoolWriter,
    archive_part_path,
    encode_batch,
    list_spools,
    read_spool_header,
)

PCMU = CodecSpec(0, "PCMU", 8000)
EVENTS = CodecSpec(101, "TELEPHONE-EVENT", 8000)


def _write_session(spool_dir: Path) -> SpoolWriter:
    writer = create_journal(spool_dir, "rec-1", 1700000000.5)
    writer.write_stream(SpoolStream(0, "agent", [PCMU, EVENTS], 0, "sip:1001@pbx"))
    writer.write_stream(
        SpoolStream(
            1,
            "customer",
            [PCMU],
            1,
            None,
            srtp={"suite": "AES_CM_128_HMAC_SHA1_80", "master_key": {"b64": "AAAA"}},
        )
    )
    writer.write_packets(0, [1.0, 1.02], [b"\x80\x00abc", b"\x80\x00defg"])
    writer.write_packets(1, [1.01], [b"x" * 172])
    writer.write_event("hold", 3.5, {"stream": "customer"})
    writer.write_packets(0, [2.0], [b""])
    return writer


def test_round_trip(tmp_path: Path) -> None:
    writer = _write_session(tmp_path)
    writer.close()
    contents = read_journal(writer.path)
    assert contents.recording_id == "rec-1"
    assert contents.started_at == 1700000000.5
    assert contents.streams[0].label == "agent"
    assert contents.streams[0].codecs == [PCMU, EVENTS]
    assert contents.streams[0].participant_aor == "sip:1001@pbx"
    assert contents.streams[1].srtp == {"suite": "AES_CM_128_HMAC_SHA1_80", "master_key": {"b64": "AAAA"}}
    assert contents.packets_of(0) == ([1.0, 1.02, 2.0], [b"\x80\x00abc", b"\x80\x00defg", b""])
    assert contents.packets_of(1) == ([1.01], [b"x" * 172])
    assert contents.events == [{"kind": "hold", "offset": 3.5, "data": {"stream": "customer"}}]
    assert contents.last_arrival == 2.0
    assert not contents.torn
    assert contents.valid_bytes == writer.path.stat().st_size


def test_stream_update_keeps_earlier_codecs(tmp_path: Path) -> None:
    writer = create_journal(tmp_path, "rec-2", 0.0)
    writer.write_stream(SpoolStream(0, "a", [PCMU], 0))
    pcma = CodecSpec(8, "PCMA", 8000)
    writer.write_stream(SpoolStream(0, "a", [pcma], 1, on_hold=True))
    writer.close()
    stream = read_journal(writer.path).streams[0]
    assert {c.payload_type for c in stream.codecs} == {0, 8}
    assert stream.channel == 1 and stream.on_hold


@pytest.mark.parametrize("cut", [1, 5, 9, 30])
def test_torn_last_record_is_dropped(tmp_path: Path, cut: int) -> None:
    writer = _write_session(tmp_path)
    intact = writer.path.stat().st_size
    writer.write_packets(1, [5.0, 5.02], [b"A" * 172, b"B" * 172])
    writer.close()
    full = writer.path.read_bytes()
    # kill -9 in the middle of the last write: only a prefix of the record reached the file.
    writer.path.write_bytes(full[: intact + cut])
    contents = read_journal(writer.path)
    assert contents.torn
    assert contents.valid_bytes == intact
    assert contents.packets_of(1) == ([1.01], [b"x" * 172])
    assert contents.last_arrival == 2.0


def test_damaged_record_in_the_middle_is_skipped_and_reported(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    writer = _write_session(tmp_path)
    intact = writer.path.stat().st_size
    writer.write_packets(1, [5.0], [b"A" * 172])
    damaged_end = writer.path.stat().st_size
    writer.write_packets(1, [6.0], [b"C" * 172])
    writer.close()
    data = bytearray(writer.path.read_bytes())
    data[intact + 40] ^= 0xFF  # flips a byte inside the first new record: CRC mismatch
    writer.path.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING, logger="callvault.storage.spool"):
        contents = read_journal(writer.path)
    # Reading does not stop silently at the bad record: it goes on after it and says what it skipped.
    assert contents.damaged == [(intact, damaged_end - intact)]
    assert contents.packets_of(1) == ([1.01, 6.0], [b"x" * 172, b"C" * 172])
    assert not contents.torn and contents.valid_bytes == len(data)
    assert f"{damaged_end - intact} damaged bytes at byte {intact}" in caplog.text


def test_tail_reads_past_damage_in_the_middle_once(tmp_path: Path) -> None:
    writer = _write_session(tmp_path)
    tail = SpoolTail(writer.path, journal_reader(TEST_KEY))
    assert tail.read() is not None
    damaged_at = writer.path.stat().st_size
    writer.write_packets(1, [5.0], [b"A" * 172])
    with writer.path.open("r+b") as fh:  # damage the record just written
        fh.seek(damaged_at + 30)
        fh.write(b"\xff\xff")
    second = tail.read()
    # Damage at the end looks like a record still being written: nothing is skipped yet.
    assert second is not None and second.damaged == [] and second.batches == []
    writer.write_packets(1, [6.0], [b"C" * 172])
    writer.close()
    third = tail.read()
    assert third is not None and [b.arrivals.tolist() for b in third.batches] == [[6.0]]
    assert len(third.damaged) == 1 and third.damaged[0][0] == damaged_at
    fourth = tail.read()
    assert fourth is not None and fourth.damaged == [] and not fourth.torn


def test_torn_tail_is_not_damage(tmp_path: Path) -> None:
    writer = _write_session(tmp_path)
    intact = writer.path.stat().st_size
    writer.write_packets(1, [5.0, 5.02], [b"A" * 172, b"B" * 172])
    writer.close()
    writer.path.write_bytes(writer.path.read_bytes()[:-3])
    contents = read_journal(writer.path)
    assert contents.torn and contents.damaged == [] and contents.valid_bytes == intact


def test_files_are_private(tmp_path: Path) -> None:
    spool_dir = tmp_path / "spool"
    writer = _write_session(spool_dir)
    writer.close()
    assert stat.S_IMODE(writer.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(spool_dir.stat().st_mode) == 0o700
    os.chmod(writer.path, 0o644)
    with pytest.raises(StorageError, match="must be 0600"):
        read_journal(writer.path)


def test_list_and_duplicate(tmp_path: Path) -> None:
    writer = _write_session(tmp_path)
    writer.close()
    assert list_spools(tmp_path) == [writer.path]
    with pytest.raises(StorageError, match="already exists"):
        create_journal(tmp_path, "rec-1", 0.0)
    with pytest.raises(StorageError, match="closed"):
        writer.write_event("x", 0.0, {})


def test_not_a_spool(tmp_path: Path) -> None:
    path = tmp_path / "junk.spool"
    path.write_bytes(b"hello world")
    os.chmod(path, 0o600)
    with pytest.raises(StorageError, match="bad magic"):
        read_journal(path)


def _frames(data: bytes) -> list[tuple[int, int]]:
    """(offset, length) of each record's body after the magic."""
    frames: list[tuple[int, int]] = []
    offset = len(MAGIC)
    while offset + 8 <= len(data):
        length = struct.unpack_from("<I", data, offset)[0]
        frames.append((offset + 8, length))
        offset += 8 + length
    return frames


def _tamper(path: Path, record: int, at: int) -> None:
    """Flip a byte inside the sealed body of ``record`` and fix its CRC: only authentication can tell."""
    data = bytearray(path.read_bytes())
    body, length = _frames(bytes(data))[record]
    data[body + at] ^= 0x01
    struct.pack_into("<I", data, body - 4, zlib.crc32(data[body : body + length]))
    path.write_bytes(bytes(data))


def test_nothing_secret_is_in_the_clear(tmp_path: Path) -> None:
    writer = _write_session(tmp_path)
    writer.close()
    data = writer.path.read_bytes()
    for secret in (b"master_key", b"AES_CM_128", b"x" * 16, b"\x80\x00defg", b"sip:1001@pbx", b"customer"):
        assert secret not in data
    header = read_spool_header(writer.path)  # the one plaintext record: no secret, a wrapped key
    assert (header.recording_id, header.started_at, header.kek_id) == ("rec-1", 1700000000.5, "test-kek")
    assert b'"recording_id":"rec-1"' in data


def test_record_failing_authentication_stops_reading(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    writer = _write_session(tmp_path)  # records: session, 2 streams, packets, packets, event, packets
    writer.close()
    _tamper(writer.path, 4, at=20)  # the second packets record, CRC intact
    with caplog.at_level(logging.WARNING, logger="callvault.storage.spool"):
        contents = read_journal(writer.path)
    assert contents.torn
    assert contents.packets_of(0) == ([1.0, 1.02], [b"\x80\x00abc", b"\x80\x00defg"])
    assert contents.packets_of(1) == ([], []) and contents.events == []  # nothing after it is read
    assert "failed authentication" in caplog.text and "reading stops there" in caplog.text


def test_wrong_key_reads_the_header_only(tmp_path: Path) -> None:
    writer = _write_session(tmp_path)
    writer.close()
    contents = read_journal(writer.path, key=b"\x01" * 32)
    assert contents.recording_id == "rec-1" and contents.torn
    assert contents.streams == {} and contents.batches == []


def test_record_moved_to_another_journal_fails(tmp_path: Path) -> None:
    one = create_journal(tmp_path, "rec-a", 0.0)
    two = create_journal(tmp_path, "rec-b", 0.0)
    one.write_packets(0, [1.0], [b"a"])
    one.close()
    two.close()
    data = one.path.read_bytes()
    body, length = _frames(data)[1]
    with two.path.open("ab") as fh:
        fh.write(data[body - 8 : body + length])  # same key, but bound to rec-a
    contents = read_journal(two.path)
    assert contents.torn and contents.batches == []


def test_writers_sharing_a_journal_never_share_a_nonce(tmp_path: Path) -> None:
    engine = create_journal(tmp_path, "rec-w", 0.0)
    capture = SpoolWriter.append_to(engine.path, journal_seal(TEST_KEY, "rec-w", writer=1))
    for second in range(3):
        engine.write_event("tick", float(second), {})
        capture.write_batches(
            [encode_batch(0, [second + 0.5], [b"p%d" % second]), encode_batch(1, [second + 0.6], [b"q"])]
        )
    engine.close()
    capture.close()
    data = engine.path.read_bytes()
    nonces = [data[body + 1 : body + 13] for body, _ in _frames(data)[1:]]
    assert len(nonces) == 6 and len(set(nonces)) == 6
    assert {n[:4] for n in nonces} == {b"\0\0\0\0", b"\0\0\0\1"}  # writer numbers
    contents = read_journal(engine.path)
    assert not contents.torn and len(contents.events) == 3
    assert contents.packets_of(0)[1] == [b"p0", b"p1", b"p2"]
    assert contents.packets_of(1) == ([0.6, 1.6, 2.6], [b"q"] * 3)  # one record, two streams


def test_tail_stops_at_a_record_failing_authentication(tmp_path: Path) -> None:
    writer = _write_session(tmp_path)
    _tamper(writer.path, 4, at=30)
    tail = SpoolTail(writer.path, journal_reader(TEST_KEY))
    first = tail.read()
    assert first is not None and first.torn and len(first.batches) == 1
    writer.write_packets(0, [9.0], [b"later"])  # appended after the bad record: never read
    writer.close()
    second = tail.read()
    assert second is not None and second.torn and second.batches == []
    assert tail.offset == first.valid_bytes


def test_archive_part_is_sealed_and_readable_only_by_its_writer(tmp_path: Path) -> None:
    journal = tmp_path / "rec.spool"
    part = ArchivePart(archive_part_path(journal), side_file_seal())
    pages = [b"OggS" + bytes(range(200)), b"OggS" + b"page two"]
    for page in pages:
        part.append(page)
    raw = archive_part_path(journal).read_bytes()
    assert b"OggS" not in raw and bytes(range(200)) not in raw
    assert stat.S_IMODE(archive_part_path(journal).stat().st_mode) == 0o600
    assert part.read_all() == b"".join(pages)
    part.close()
    other = ArchivePart(tmp_path / "other.archive-part", side_file_seal())
    (tmp_path / "other.archive-part").write_bytes(raw)
    other.size = part.size
    with pytest.raises(StorageError, match="failed authentication"):
        other.read_all()
    other.close()


def test_sealer_binds_kind_and_context() -> None:
    sealer = RecordSealer(TEST_KEY, b"spool:rec", writer=7)
    sealed = sealer.seal(3, b"payload")
    assert sealer.open(3, sealed) == b"payload"
    assert sealed[:4] == b"\0\0\0\7" and sealer.seal(3, b"payload")[:12] != sealed[:12]
    with pytest.raises(IntegrityError):
        sealer.open(2, sealed)
    with pytest.raises(IntegrityError):
        RecordSealer(TEST_KEY, b"spool:other").open(3, sealed)
    with pytest.raises(IntegrityError, match="shorter"):
        sealer.open(3, b"short")
    assert TEST_KEY.hex() not in repr(sealer) and repr(TEST_KEY) not in repr(sealer)
