"""The capture spool: one append-only, encrypted journal file per recording session.

While a call is recorded, the raw RTP packets (arrival time + bytes, still
SRTP-protected if the call uses SRTP) are appended here at least once a
second, so a ``kill -9`` of the recorder loses at most the last second and
the next start can finalise what was spooled as an *interrupted* recording.

File layout (little-endian)::

    magic   b"CVSPOOL2"
    record* u32 body length | u32 CRC-32 of body | body
    body    u8 kind | payload                  (SESSION: the one plaintext record)
            u8 kind | nonce | sealed payload | tag   (every other kind)

Kinds: SESSION (JSON, always first and only first: recording id, start time,
and the session's *wrapped* spool key: KEK id + ciphertext, no secret),
STREAM (JSON; adding or updating a stream, latest wins), PACKETS (batches of
packets), EVENT (JSON call event). A PACKETS payload is one or more batches
``u8 stream | u32 n | f64[n] arrival | u16[n] length | bytes``: a capture
writer seals all the streams of a session it flushes into one record, so the
framing and encryption cost is per flush, not per packet, and the reader can
use array slicing.

Encryption at rest: each session has a fresh random 256-bit spool key. The
engine wraps it with the key provider (context ``b"spool:" + recording id``)
and stores only the wrapped form in the SESSION record, so recovery in a new
process can unwrap it; the raw key travels only in memory (to the capture
writers and the renderer). Every record but SESSION is sealed with AES-256-GCM
by a :class:`RecordSeal` (:class:`callvault.crypto.record_seal.RecordSealer`,
passed in by the runtime: this module does not know the cipher). The AAD
binds recording id and record kind, and nonces never repeat across writers
(see that module). SDES master keys of SRTP calls (STREAM records) and RTP
payloads are therefore never on disk in the clear.

Every record is written with a single ``os.write`` on an ``O_APPEND`` file,
so a crash can only leave a torn *last* record; the reader stops at the first
record whose length or CRC does not check out and keeps everything before. A
record whose CRC is right but which fails authentication (tampering, or a
foreign record) is handled the same way: reading stops there with a warning
and ``torn`` set, never an exception; the recording is rendered from what
precedes it. The writer does not ``fsync`` each flush: page-cache data
survives a process crash, which is what the journal is for; power loss may
cost the unsynced tail. The file is also created 0600 from the first byte
inside a 0700 directory and deleted as soon as the recording is finalised.

Next to each journal, the call-time renderer keeps an :class:`ArchivePart`:
the Ogg Opus pages it has encoded so far while the call runs, as chunks
``u32 length | nonce | sealed pages | tag`` sealed by the renderer (0600,
deleted with the journal). The journal stays the only record: after a crash
the part is discarded and the recording re-rendered from the journal.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import stat
import struct
import threading
import zlib
from array import array
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from callvault.errors import IntegrityError, StorageError
from callvault.media.codec_spec import CodecSpec

log = logging.getLogger(__name__)

MAGIC = b"CVSPOOL2"
SUFFIX = ".spool"
PART_SUFFIX = ".archive-part"
SPOOL_MODE = 0o600
MAX_RECORD = 64 * 1024 * 1024

KIND_SESSION = 1
KIND_STREAM = 2
KIND_PACKETS = 3
KIND_EVENT = 4
KIND_ARCHIVE_PAGES = 5  # chunks of the side file

_FRAME = struct.Struct("<II")
_BATCH = struct.Struct("<BI")  # stream index, packet count
_CHUNK = struct.Struct("<I")


class RecordSeal(Protocol):
    """Authenticated encryption of record payloads (see :mod:`callvault.crypto.record_seal`)."""

    def seal(self, kind: int, plaintext: bytes) -> bytes: ...

    def open(self, kind: int, sealed: bytes) -> bytes:
        """The plaintext; raises :class:`~callvault.errors.IntegrityError` when authentication fails."""
        ...


# The seal of a journal's records, given the recording id its SESSION record names.
SealFor = Callable[[str], RecordSeal]


@dataclass(frozen=True)
class SpoolHeader:
    """The plaintext SESSION record: nothing in it is secret."""

    recording_id: str
    started_at: float
    kek_id: str
    wrapped_key: bytes  # the spool key wrapped by the key provider

    def to_json(self) -> dict[str, Any]:
        return {
            "recording_id": self.recording_id,
            "started_at": self.started_at,
            "kek_id": self.kek_id,
            "wrapped_key": base64.b64encode(self.wrapped_key).decode(),
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> SpoolHeader:
        return cls(
            recording_id=str(raw["recording_id"]),
            started_at=float(raw["started_at"]),
            kek_id=str(raw["kek_id"]),
            wrapped_key=base64.b64decode(raw["wrapped_key"], validate=True),
        )


@dataclass
class SpoolStream:
    """What the finaliser must know about one RTP stream of the session."""

    index: int
    label: str
    codecs: list[CodecSpec]
    channel: int
    participant_aor: str | None = None
    srtp: dict[str, Any] | None = None  # SDES parameters; secret, see module docstring
    on_hold: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "label": self.label,
            "codecs": [[c.payload_type, c.encoding, c.clock_rate, c.channels] for c in self.codecs],
            "channel": self.channel,
            "participant_aor": self.participant_aor,
            "srtp": self.srtp,
            "on_hold": self.on_hold,
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> SpoolStream:
        return cls(
            index=int(raw["index"]),
            label=str(raw["label"]),
            codecs=[CodecSpec(int(p), str(e), int(r), int(c)) for p, e, r, c in raw["codecs"]],
            channel=int(raw["channel"]),
            participant_aor=raw.get("participant_aor"),
            srtp=raw.get("srtp"),
            on_hold=bool(raw.get("on_hold", False)),
        )


@dataclass
class PacketBatch:
    stream: int
    arrivals: array[float]
    packets: list[bytes]


@dataclass
class SpoolContents:
    """Everything readable from a journal, up to the first damaged record."""

    recording_id: str
    started_at: float
    streams: dict[int, SpoolStream] = field(default_factory=dict)
    batches: list[PacketBatch] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    valid_bytes: int = 0
    torn: bool = False  # a damaged or partial record followed the valid ones

    def packets_of(self, stream: int) -> tuple[list[float], list[bytes]]:
        arrivals: list[float] = []
        packets: list[bytes] = []
        for batch in self.batches:
            if batch.stream == stream:
                arrivals.extend(batch.arrivals)
                packets.extend(batch.packets)
        return arrivals, packets

    @property
    def last_arrival(self) -> float | None:
        last = [batch.arrivals[-1] for batch in self.batches if len(batch.arrivals)]
        return max(last) if last else None


def spool_path(spool_dir: Path, recording_id: str) -> Path:
    if not recording_id or "/" in recording_id or recording_id.startswith("."):
        raise StorageError(f"recording id {recording_id!r} cannot name a spool file")
    return spool_dir / f"{recording_id}{SUFFIX}"


def list_spools(spool_dir: Path) -> list[Path]:
    """Journals left in ``spool_dir`` (oldest first)."""
    if not spool_dir.is_dir():
        return []
    found = [p for p in spool_dir.iterdir() if p.name.endswith(SUFFIX) and p.is_file()]
    return sorted(found, key=lambda p: p.stat().st_mtime)


def _frame(body: bytes) -> bytes:
    return _FRAME.pack(len(body), zlib.crc32(body)) + body


def _json_body(kind: int, payload: dict[str, Any]) -> bytes:
    return bytes([kind]) + json.dumps(payload, separators=(",", ":")).encode()


def encode_packets(stream: int, arrivals: Sequence[float], packets: Sequence[bytes]) -> bytes:
    """One framed PACKETS record (exposed for tests and benchmarks)."""
    if len(arrivals) != len(packets):
        raise ValueError("arrivals and packets differ in length")
    lengths = array("H", map(len, packets))
    body = b"".join(
        (
            _BATCH.pack(KIND_PACKETS, stream, len(packets)),
            array("d", arrivals).tobytes(),
            lengths.tobytes(),
            *packets,
        )
    )
    return _frame(body)


class SpoolWriter:
    """Appends records to one session's journal; safe to share between two threads."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd
        self._lock = threading.Lock()
        self.bytes_written = 0

    @classmethod
    def create(cls, spool_dir: Path, recording_id: str, started_at: float) -> SpoolWriter:
        try:
            spool_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            path = spool_path(spool_dir, recording_id)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, SPOOL_MODE)
            os.fchmod(fd, SPOOL_MODE)
        except FileExistsError as exc:
            raise StorageError(f"spool for recording {recording_id} already exists") from exc
        except OSError as exc:
            raise StorageError(f"cannot create spool in {spool_dir}: {exc.strerror}") from exc
        writer = cls(path, fd)
        writer._write(
            MAGIC + _frame(_json_body(KIND_SESSION, {"recording_id": recording_id, "started_at": started_at}))
        )
        return writer

    def _write(self, data: bytes) -> None:
        with self._lock:
            if self._fd is None:
                raise StorageError(f"spool {self.path} is closed")
            try:
                written = os.write(self._fd, data)
                # A regular file only writes short on a full disk; finish the record
                # so the next one is framed correctly.
                while written < len(data):
                    written += os.write(self._fd, data[written:])
            except OSError as exc:
                raise StorageError(f"cannot write spool {self.path}: {exc.strerror}") from exc
            self.bytes_written += len(data)

    def write_stream(self, stream: SpoolStream) -> None:
        self._write(_frame(_json_body(KIND_STREAM, stream.to_json())))

    def write_event(self, kind: str, offset_seconds: float, data: dict[str, Any]) -> None:
        self._write(_frame(_json_body(KIND_EVENT, {"kind": kind, "offset": offset_seconds, "data": data})))

    def write_packets(self, stream: int, arrivals: Sequence[float], packets: Sequence[bytes]) -> None:
        if packets:
            self._write(encode_packets(stream, arrivals, packets))

    def write_raw(self, data: bytes) -> None:
        """Append pre-framed records (several streams' batches in one system call)."""
        if data:
            self._write(data)

    def sync(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.fdatasync(self._fd)

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None

    @property
    def closed(self) -> bool:
        return self._fd is None


def _records(data: memoryview, start: int) -> Iterator[tuple[int, memoryview]]:
    """Yield (end offset, body) for each intact record; stop at the first bad one."""
    offset = start
    size = len(data)
    while offset + _FRAME.size <= size:
        length, crc = _FRAME.unpack_from(data, offset)
        end = offset + _FRAME.size + length
        if length == 0 or length > MAX_RECORD or end > size:
            return
        body = data[offset + _FRAME.size : end]
        if zlib.crc32(body) != crc:
            return
        yield end, body
        offset = end


def _decode_batch(body: memoryview) -> PacketBatch:
    _, stream, count = _BATCH.unpack_from(body, 0)
    pos = _BATCH.size
    arrivals = array("d")
    arrivals.frombytes(body[pos : pos + 8 * count])
    pos += 8 * count
    lengths = array("H")
    lengths.frombytes(body[pos : pos + 2 * count])
    pos += 2 * count
    raw = bytes(body[pos:])
    if sum(lengths) != len(raw):
        raise ValueError("packet batch lengths do not add up")
    packets: list[bytes] = []
    cursor = 0
    for length in lengths:
        packets.append(raw[cursor : cursor + length])
        cursor += length
    return PacketBatch(stream, arrivals, packets)


def _apply_records(
    data: memoryview, start: int, contents: SpoolContents | None
) -> tuple[SpoolContents | None, int]:
    """Add the intact records of ``data`` from ``start`` to ``contents``; returns it and the end of the last one."""
    valid = start
    for end, body in _records(data, start):
        kind = body[0]
        try:
            if kind == KIND_PACKETS:
                batch = _decode_batch(body)
            elif kind in (KIND_SESSION, KIND_STREAM, KIND_EVENT):
                payload = json.loads(bytes(body[1:]))
            else:
                break
        except ValueError:
            break
        if kind == KIND_SESSION:
            contents = SpoolContents(str(payload["recording_id"]), float(payload["started_at"]))
        elif contents is None:
            break  # everything must follow the session header
        elif kind == KIND_STREAM:
            stream = SpoolStream.from_json(payload)
            previous = contents.streams.get(stream.index)
            if previous is not None:
                # Codecs offered earlier may still appear in packets of this stream.
                known = {c.payload_type: c for c in previous.codecs}
                known.update({c.payload_type: c for c in stream.codecs})
                stream.codecs = list(known.values())
            contents.streams[stream.index] = stream
        elif kind == KIND_EVENT:
            contents.events.append(payload)
        else:
            contents.batches.append(batch)
        valid = end
    return contents, valid


def _check_mode(path: Path, mode: int) -> None:
    if mode & 0o077:
        raise StorageError(f"spool {path} has mode {mode:04o}: it may hold SRTP keys and must be 0600")


def read_spool(path: Path) -> SpoolContents:
    """Read a journal written by :class:`SpoolWriter`, tolerating a torn tail."""
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
        data = path.read_bytes()
    except OSError as exc:
        raise StorageError(f"cannot read spool {path}: {exc.strerror}") from exc
    _check_mode(path, mode)
    if not data.startswith(MAGIC):
        raise StorageError(f"{path} is not a callvault spool (bad magic)")
    contents, valid = _apply_records(memoryview(data), len(MAGIC), None)
    if contents is None:
        raise StorageError(f"spool {path} has no readable session header")
    contents.valid_bytes = valid
    contents.torn = valid < len(data)
    return contents


class SpoolTail:
    """Reads a journal that is still being written, picking up where the last read stopped.

    Each :meth:`read` returns only the packet batches and events appended since
    the previous one; ``streams`` always holds every stream description so far
    (merged as :func:`read_spool` merges them). A record still being written
    when a read comes is simply read next time, complete.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self._header: SpoolContents | None = None

    @property
    def recording_id(self) -> str | None:
        return None if self._header is None else self._header.recording_id

    def read(self) -> SpoolContents | None:
        """What was appended since the last read; None while the session header is not readable yet."""
        try:
            with self.path.open("rb") as fh:
                _check_mode(self.path, stat.S_IMODE(os.fstat(fh.fileno()).st_mode))
                fh.seek(self.offset)
                data = fh.read()
        except OSError as exc:
            raise StorageError(f"cannot read spool {self.path}: {exc.strerror}") from exc
        start = 0
        if self.offset == 0:
            if len(data) < len(MAGIC):
                return None
            if not data.startswith(MAGIC):
                raise StorageError(f"{self.path} is not a callvault spool (bad magic)")
            start = len(MAGIC)
        header = self._header
        delta = None
        if header is not None:
            delta = SpoolContents(header.recording_id, header.started_at, streams=header.streams)
        delta, valid = _apply_records(memoryview(data), start, delta)
        if delta is None:
            return None
        if header is None:
            # The first read holds the session header; later ones share its stream table.
            self._header = SpoolContents(delta.recording_id, delta.started_at, streams=delta.streams)
        self.offset += valid
        delta.valid_bytes = self.offset
        return delta


def archive_part_path(journal: Path) -> Path:
    """The side file next to a journal holding the Ogg pages encoded so far while the call runs."""
    return journal.with_name(journal.name.removesuffix(SUFFIX) + PART_SUFFIX)


class ArchivePart:
    """Append-only side file of encoded archive pages, protected like the journal (0600).

    It holds the call's audio before it is sealed, unencrypted: it lives in the
    same 0700 spool directory as the journal (whose raw RTP is the same audio)
    and is deleted with it. It is a cache, not a record: recovery after a crash
    re-renders from the journal and ignores it.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._fd: int | None = os.open(
                path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, SPOOL_MODE
            )
            os.fchmod(self._fd, SPOOL_MODE)
        except OSError as exc:
            raise StorageError(f"cannot create {path}: {exc.strerror}") from exc
        self.size = 0

    def append(self, data: bytes) -> None:
        if not data:
            return
        if self._fd is None:
            raise StorageError(f"{self.path} is closed")
        try:
            written = 0
            while written < len(data):
                written += os.write(self._fd, data[written:])
        except OSError as exc:
            raise StorageError(f"cannot write {self.path}: {exc.strerror}") from exc
        self.size += len(data)

    def read_all(self) -> bytes:
        try:
            return self.path.read_bytes()
        except OSError as exc:
            raise StorageError(f"cannot read {self.path}: {exc.strerror}") from exc

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def delete_spool(path: Path) -> None:
    """Delete a journal and its archive side file (the side file first: a journal alone is recoverable)."""
    try:
        archive_part_path(path).unlink(missing_ok=True)
        path.unlink(missing_ok=True)
    except OSError as exc:
        raise StorageError(f"cannot delete spool {path}: {exc.strerror}") from exc


def orphan_parts(spool_dir: Path) -> list[Path]:
    """Archive side files without a journal (a render job outliving its journal); swept at start."""
    if not spool_dir.is_dir():
        return []
    return [
        p
        for p in spool_dir.iterdir()
        if p.name.endswith(PART_SUFFIX)
        and not (spool_dir / (p.name.removesuffix(PART_SUFFIX) + SUFFIX)).exists()
    ]
