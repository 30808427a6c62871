"""The spool journal: round trip, torn tail after a crash, file modes."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from callvault.errors import StorageError
from callvault.media.codec_spec import CodecSpec
from callvault.storage.spool import (
    SpoolStream,
    SpoolWriter,
    list_spools,
    read_spool,
)

PCMU = CodecSpec(0, "PCMU", 8000)
EVENTS = CodecSpec(101, "TELEPHONE-EVENT", 8000)


def _write_session(spool_dir: Path) -> SpoolWriter:
    writer = SpoolWriter.create(spool_dir, "rec-1", 1700000000.5)
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
    contents = read_spool(writer.path)
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
    writer = SpoolWriter.create(tmp_path, "rec-2", 0.0)
    writer.write_stream(SpoolStream(0, "a", [PCMU], 0))
    pcma = CodecSpec(8, "PCMA", 8000)
    writer.write_stream(SpoolStream(0, "a", [pcma], 1, on_hold=True))
    writer.close()
    stream = read_spool(writer.path).streams[0]
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
    contents = read_spool(writer.path)
    assert contents.torn
    assert contents.valid_bytes == intact
    assert contents.packets_of(1) == ([1.01], [b"x" * 172])
    assert contents.last_arrival == 2.0


def test_corrupt_record_stops_reading(tmp_path: Path) -> None:
    writer = _write_session(tmp_path)
    intact = writer.path.stat().st_size
    writer.write_packets(1, [5.0], [b"A" * 172])
    writer.write_packets(1, [6.0], [b"C" * 172])
    writer.close()
    data = bytearray(writer.path.read_bytes())
    data[intact + 40] ^= 0xFF  # flips a byte inside the first new record: CRC mismatch
    writer.path.write_bytes(bytes(data))
    contents = read_spool(writer.path)
    assert contents.torn
    assert contents.packets_of(1) == ([1.01], [b"x" * 172])


def test_files_are_private(tmp_path: Path) -> None:
    spool_dir = tmp_path / "spool"
    writer = _write_session(spool_dir)
    writer.close()
    assert stat.S_IMODE(writer.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(spool_dir.stat().st_mode) == 0o700
    os.chmod(writer.path, 0o644)
    with pytest.raises(StorageError, match="must be 0600"):
        read_spool(writer.path)


def test_list_and_duplicate(tmp_path: Path) -> None:
    writer = _write_session(tmp_path)
    writer.close()
    assert list_spools(tmp_path) == [writer.path]
    with pytest.raises(StorageError, match="already exists"):
        SpoolWriter.create(tmp_path, "rec-1", 0.0)
    with pytest.raises(StorageError, match="closed"):
        writer.write_event("x", 0.0, {})


def test_not_a_spool(tmp_path: Path) -> None:
    path = tmp_path / "junk.spool"
    path.write_bytes(b"hello world")
    os.chmod(path, 0o600)
    with pytest.raises(StorageError, match="bad magic"):
        read_spool(path)
