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
so a crash can only leave a torn *last* record. A write that fails (a full
disk: ENOSPC or a short write; an I/O error) is rolled back: the writer
truncates the file to the record boundary where the write began, so the
journal never holds a torn record in the middle, and raises
:class:`~callvault.errors.StorageFull` (or :class:`StorageError`) so the
caller can keep the data and retry. Stream and event records that fail are
kept by the writer and go out before the next record it writes. Writers of
one journal (the engine and capture worker processes) take an exclusive
``flock`` around each write, so a roll-back never cuts another writer's record
(measured: under 10 us per flush with the machine loaded, about 4 % of a
two-stream flush; one flush per session per second).

The reader never stops silently. A torn last record (a crash mid-write) is
normal and only sets ``torn``. Anything else that does not check out (a bad
length or CRC followed by intact records: a roll-back that failed, a damaged
disk block) is skipped by searching for the next intact record; the skipped
byte range is listed in ``damaged`` and logged. A record whose CRC is right
but which fails authentication (tampering, or a foreign record) ends reading
with a warning, ``torn`` set and an entry in ``damaged``, never an exception;
the recording is rendered from what precedes it. The writer does not ``fsync`` each flush: page-cache data
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
import errno
import fcntl
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

import numpy as np

from callvault.errors import IntegrityError, StorageError
from callvault.media.codec_spec import CodecSpec
from callvault.storage.oserrors import storage_error

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

SEALED_KINDS = (KIND_STREAM, KIND_PACKETS, KIND_EVENT)
# How far the reader looks at once for the next intact record after a damaged one.
RESYNC_WINDOW = 1 << 20

# The one call that puts journal bytes on disk. Tests replace it to make the disk "full"
# at an exact byte: the rest of the writer (roll-back, retry) then runs for real.
write_fd = os.write

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
    """What the renderer must know about one RTP stream of the session."""

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
    # (byte offset, bytes skipped) of damage before intact records; bytes -1: reading ended there.
    damaged: list[tuple[int, int]] = field(default_factory=list)

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


def _json(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


def encode_batch(stream: int, arrivals: Sequence[float], packets: Sequence[bytes]) -> bytes:
    """One stream's batch of packets, as it goes (with others) into the plaintext of a PACKETS record."""
    if len(arrivals) != len(packets):
        raise ValueError("arrivals and packets differ in length")
    lengths = array("H", map(len, packets))
    return b"".join(
        (
            _BATCH.pack(stream, len(packets)),
            array("d", arrivals).tobytes(),
            lengths.tobytes(),
            *packets,
        )
    )


class SpoolWriter:
    """Appends sealed records to one session's journal; safe to share between two threads.

    Each writer of one journal (the engine, each capture worker process) needs
    its own ``seal`` with its own writer number; see :mod:`callvault.crypto.record_seal`.

    A failed write leaves the journal as it was (see the module docstring).
    :meth:`write_batches` then raises, and the caller keeps the packets;
    :meth:`write_stream` and :meth:`write_event` keep their record instead
    (``deferred``) and write it before the next record, or at :meth:`retry`.
    """

    def __init__(self, path: Path, fd: int, seal: RecordSeal) -> None:
        self.path = path
        self._fd: int | None = fd
        self._seal = seal
        self._lock = threading.Lock()
        self.bytes_written = 0
        self._deferred: list[bytes] = []
        self.failed_writes = 0

    @classmethod
    def create(cls, spool_dir: Path, header: SpoolHeader, seal: RecordSeal) -> SpoolWriter:
        """Create the journal of ``header.recording_id``, starting with its (plaintext) SESSION record."""
        try:
            spool_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            path = spool_path(spool_dir, header.recording_id)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, SPOOL_MODE)
            os.fchmod(fd, SPOOL_MODE)
        except FileExistsError as exc:
            raise StorageError(f"spool for recording {header.recording_id} already exists") from exc
        except OSError as exc:
            raise storage_error(f"cannot create spool in {spool_dir}", exc) from exc
        writer = cls(path, fd, seal)
        try:
            writer._write(MAGIC + _frame(bytes([KIND_SESSION]) + _json(header.to_json())))
        except StorageError:
            writer.close()
            path.unlink(missing_ok=True)
            raise
        return writer

    @classmethod
    def append_to(cls, path: Path, seal: RecordSeal) -> SpoolWriter:
        """Another writer of an existing journal (a capture worker process)."""
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND)
        except OSError as exc:
            raise StorageError(f"cannot open spool {path}: {exc.strerror}") from exc
        return cls(path, fd, seal)

    def _write(self, record: bytes) -> None:
        with self._lock:
            if self._fd is None:
                raise StorageError(f"spool {self.path} is closed")
            data = b"".join((*self._deferred, record))
            self._append(self._fd, data)
            self._deferred.clear()

    def _append(self, fd: int, data: bytes) -> None:
        """Append ``data`` whole, or nothing: a failed write is truncated back to where it began."""
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            written = 0
            began = -1
            view = memoryview(data)
            try:
                while written < len(data):
                    count = write_fd(fd, view[written:])
                    if count <= 0:
                        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                    if began < 0:
                        # O_APPEND: the write went to the end, which the offset now follows.
                        began = os.lseek(fd, 0, os.SEEK_CUR) - count
                    written += count
            except OSError as exc:
                self.failed_writes += 1
                if written:
                    self._roll_back(fd, began, written)
                raise storage_error(f"cannot write spool {self.path}", exc) from exc
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
        self.bytes_written += len(data)

    def _roll_back(self, fd: int, began: int, written: int) -> None:
        try:
            os.ftruncate(fd, began)
        except OSError as exc:
            # The reader skips the torn bytes to the next intact record and reports them.
            log.error(
                "spool %s: a failed write left %d bytes at byte %d that cannot be truncated (%s)",
                self.path,
                written,
                began,
                exc.strerror,
            )

    def _sealed(self, kind: int, plaintext: bytes) -> bytes:
        return _frame(bytes([kind]) + self._seal.seal(kind, plaintext))

    def _write_or_defer(self, record: bytes) -> None:
        try:
            self._write(record)
        except StorageError as exc:
            with self._lock:
                if self._fd is None:
                    raise
                self._deferred.append(record)
            log.warning("spool %s: record kept in memory to retry (%s)", self.path, exc.message)

    def write_stream(self, stream: SpoolStream) -> None:
        self._write_or_defer(self._sealed(KIND_STREAM, _json(stream.to_json())))

    def write_event(self, kind: str, offset_seconds: float, data: dict[str, Any]) -> None:
        record = _json({"kind": kind, "offset": offset_seconds, "data": data})
        self._write_or_defer(self._sealed(KIND_EVENT, record))

    def write_packets(self, stream: int, arrivals: Sequence[float], packets: Sequence[bytes]) -> None:
        if packets:
            self.write_batches([encode_batch(stream, arrivals, packets)])

    def write_batches(self, batches: Sequence[bytes]) -> None:
        """Append batches from :func:`encode_batch` (several streams') as one sealed record.

        Raises :class:`StorageError` (:class:`StorageFull` for a full disk) when the
        write failed; the journal is then unchanged and the caller still has the packets.
        """
        if batches:
            self._write(self._sealed(KIND_PACKETS, b"".join(batches)))

    @property
    def deferred(self) -> int:
        """Stream and event records waiting in memory for the disk."""
        with self._lock:
            return len(self._deferred)

    def retry(self) -> bool:
        """Write the deferred records now; True when none is left waiting."""
        with self._lock:
            if self._fd is None or not self._deferred:
                return not self._deferred
            try:
                self._append(self._fd, b"".join(self._deferred))
            except StorageError:
                return False
            self._deferred.clear()
            return True

    def sync(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.fdatasync(self._fd)

    def close(self) -> int:
        """Close the journal after a last try to write deferred records; returns how many were lost."""
        self.retry()
        with self._lock:
            lost = len(self._deferred)
            if lost:
                log.error(
                    "spool %s: %d stream/event records could not be written and are lost", self.path, lost
                )
            self._deferred.clear()
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
            return lost

    @property
    def closed(self) -> bool:
        return self._fd is None


def _frame_ok(data: memoryview, offset: int) -> int | None:
    """The end of the intact record at ``offset``, or None."""
    length, crc = _FRAME.unpack_from(data, offset)
    end: int = offset + _FRAME.size + length
    if length == 0 or length > MAX_RECORD or end > len(data):
        return None
    if zlib.crc32(data[offset + _FRAME.size : end]) != crc:
        return None
    return end


def _resync(data: memoryview, offset: int) -> int | None:
    """The offset of the next intact sealed record after a bad one at ``offset``; None: a torn tail.

    Vectorised over windows: a random u32 is a plausible length (fits the rest of
    the file) and is followed by a sealed kind only rarely, so the CRC is computed
    for a handful of candidates, not at every byte.
    """
    size = len(data)
    raw = np.frombuffer(data, dtype=np.uint8)
    position = offset + 1
    last = size - _FRAME.size - 1  # a record has a header and at least its kind byte
    while position <= last:
        stop = min(last + 1, position + RESYNC_WINDOW)
        at = np.arange(position, stop, dtype=np.int64)
        lengths = (
            raw[at].astype(np.int64)
            | raw[at + 1].astype(np.int64) << 8
            | raw[at + 2].astype(np.int64) << 16
            | raw[at + 3].astype(np.int64) << 24
        )
        plausible = (lengths > 0) & (lengths <= MAX_RECORD) & (at + _FRAME.size + lengths <= size)
        kinds = raw[at + _FRAME.size]
        plausible &= np.isin(kinds, SEALED_KINDS)
        for candidate in np.flatnonzero(plausible).tolist():
            if _frame_ok(data, position + candidate) is not None:
                return position + candidate
        position = stop
    return None


def _records(
    data: memoryview,
    start: int,
    damaged: list[tuple[int, int]] | None = None,
    path: Path | None = None,
    base: int = 0,
) -> Iterator[tuple[int, memoryview]]:
    """Yield (end offset, body) for each intact record.

    Without ``damaged``, stop at the first bad one. With it, skip a bad stretch
    that intact records follow (listing it there, as file offsets: ``data``
    starts at byte ``base`` of the file) and stop only at a torn tail.
    """
    offset = start
    size = len(data)
    while offset + _FRAME.size <= size:
        end = _frame_ok(data, offset)
        if end is None:
            if damaged is None:
                return
            following = _resync(data, offset)
            if following is None:
                return
            log.warning(
                "spool %s: %d damaged bytes at byte %d are skipped; reading goes on after them",
                path,
                following - offset,
                base + offset,
            )
            damaged.append((base + offset, following - offset))
            offset = following
            continue
        yield end, data[offset + _FRAME.size : end]
        offset = end


def _decode_batches(plain: bytes) -> list[PacketBatch]:
    view = memoryview(plain)
    batches: list[PacketBatch] = []
    pos = 0
    while pos < len(view):
        if pos + _BATCH.size > len(view):
            raise ValueError("packet batch header is cut short")
        stream, count = _BATCH.unpack_from(view, pos)
        pos += _BATCH.size
        arrivals = array("d")
        arrivals.frombytes(view[pos : pos + 8 * count])
        pos += 8 * count
        lengths = array("H")
        lengths.frombytes(view[pos : pos + 2 * count])
        pos += 2 * count
        total = sum(lengths)
        if len(arrivals) != count or len(lengths) != count or pos + total > len(view):
            raise ValueError("packet batch lengths do not add up")
        packets: list[bytes] = []
        cursor = pos
        for length in lengths:
            packets.append(plain[cursor : cursor + length])
            cursor += length
        pos += total
        batches.append(PacketBatch(stream, arrivals, packets))
    return batches


def _read_header(data: memoryview, path: Path) -> tuple[SpoolHeader, int] | None:
    """The SESSION record at the start of ``data`` and where it ends; None if not all written yet."""
    if len(data) < len(MAGIC):
        return None
    if bytes(data[: len(MAGIC)]) != MAGIC:
        raise StorageError(f"{path} is not a callvault spool of this version (bad magic)")
    for end, body in _records(data, len(MAGIC)):
        try:
            if body[0] != KIND_SESSION:
                raise ValueError("the first record is not the session header")
            return SpoolHeader.from_json(json.loads(bytes(body[1:]))), end
        except (ValueError, KeyError, TypeError):
            raise StorageError(f"spool {path} has no readable session header") from None
    return None


def _apply_records(
    data: memoryview, start: int, contents: SpoolContents, seal: RecordSeal, path: Path, base: int = 0
) -> tuple[int, bool]:
    """Add the intact records of ``data`` from ``start`` to ``contents``.

    Returns the end of the last record applied, and whether reading stopped at
    a record that is whole but unusable (failed authentication, bad content).
    """
    valid = start
    for end, body in _records(data, start, contents.damaged, path, base):
        kind = body[0]
        try:
            if kind not in SEALED_KINDS:
                raise ValueError(f"record kind {kind} is not expected here")
            plain = seal.open(kind, bytes(body[1:]))
            if kind == KIND_PACKETS:
                contents.batches.extend(_decode_batches(plain))
            elif kind == KIND_STREAM:
                _merge_stream(contents, SpoolStream.from_json(json.loads(plain)))
            else:
                contents.events.append(json.loads(plain))
        except (IntegrityError, ValueError, KeyError, TypeError) as exc:
            message = exc.message if isinstance(exc, IntegrityError) else str(exc)
            # ``valid`` is where this record starts, unless skipped damage came just before it.
            at = end - len(body) - _FRAME.size
            log.warning(
                "spool %s: record at byte %d is unusable (%s); reading stops there", path, base + at, message
            )
            contents.damaged.append((base + at, -1))
            return at, True
        valid = end
    return valid, False


def _merge_stream(contents: SpoolContents, stream: SpoolStream) -> None:
    previous = contents.streams.get(stream.index)
    if previous is not None:
        # Codecs offered earlier may still appear in packets of this stream.
        known = {c.payload_type: c for c in previous.codecs}
        known.update({c.payload_type: c for c in stream.codecs})
        stream.codecs = list(known.values())
    contents.streams[stream.index] = stream


def _check_mode(path: Path, mode: int) -> None:
    if mode & 0o077:
        raise StorageError(f"spool {path} has mode {mode:04o}: journals must be 0600")


def _read_file(path: Path, offset: int = 0) -> bytes:
    try:
        with path.open("rb") as fh:
            _check_mode(path, stat.S_IMODE(os.fstat(fh.fileno()).st_mode))
            fh.seek(offset)
            return fh.read()
    except OSError as exc:
        raise StorageError(f"cannot read spool {path}: {exc.strerror}") from exc


def read_spool_header(path: Path) -> SpoolHeader:
    """The plaintext SESSION record of a journal: what it takes to unwrap its key."""
    found = _read_header(memoryview(_read_file(path)), path)
    if found is None:
        raise StorageError(f"spool {path} has no readable session header")
    return found[0]


def read_spool(path: Path, seal_for: SealFor) -> SpoolContents:
    """Read a journal written by :class:`SpoolWriter`, up to a torn tail or the first record that fails."""
    data = memoryview(_read_file(path))
    found = _read_header(data, path)
    if found is None:
        raise StorageError(f"spool {path} has no readable session header")
    header, start = found
    contents = SpoolContents(header.recording_id, header.started_at)
    valid, _ = _apply_records(data, start, contents, seal_for(header.recording_id), path)
    contents.valid_bytes = valid
    contents.torn = valid < len(data)
    return contents


class SpoolTail:
    """Reads a journal that is still being written, picking up where the last read stopped.

    Each :meth:`read` returns only the packet batches and events appended since
    the previous one; ``streams`` always holds every stream description so far
    (merged as :func:`read_spool` merges them). A record still being written
    when a read comes is simply read next time, complete. A record that fails
    authentication ends the journal for this reader (as for :func:`read_spool`).
    """

    def __init__(self, path: Path, seal_for: SealFor) -> None:
        self.path = path
        self.offset = 0
        self._seal_for = seal_for
        self._seal: RecordSeal | None = None
        self._header: SpoolContents | None = None
        self.stopped = False  # a whole record failed; nothing after it is read

    @property
    def recording_id(self) -> str | None:
        return None if self._header is None else self._header.recording_id

    def read(self) -> SpoolContents | None:
        """What was appended since the last read; None while the session header is not readable yet."""
        data = memoryview(_read_file(self.path, self.offset))
        start = 0
        if self._header is None:
            found = _read_header(data, self.path)
            if found is None:
                return None
            header, start = found
            self._header = SpoolContents(header.recording_id, header.started_at)
            self._seal = self._seal_for(header.recording_id)
        header_contents = self._header
        assert self._seal is not None
        delta = SpoolContents(
            header_contents.recording_id, header_contents.started_at, streams=header_contents.streams
        )
        if self.stopped:
            delta.torn = True
            return delta
        valid, self.stopped = _apply_records(data, start, delta, self._seal, self.path, self.offset)
        self.offset += valid
        delta.valid_bytes = self.offset
        delta.torn = self.stopped
        return delta


def archive_part_path(journal: Path) -> Path:
    """The side file next to a journal holding the Ogg pages encoded so far while the call runs."""
    return journal.with_name(journal.name.removesuffix(SUFFIX) + PART_SUFFIX)


class ArchivePart:
    """Append-only side file of encoded archive pages, sealed chunk by chunk, 0600.

    Each :meth:`append` writes one chunk ``u32 length | sealed pages`` (sealed
    by ``seal`` as kind ARCHIVE_PAGES). The call-time renderer passes a seal
    whose key exists only in its own memory: the file is a cache, not a
    record, readable only by the object that wrote it; recovery after a crash
    re-renders from the journal and ignores it.
    """

    def __init__(self, path: Path, seal: RecordSeal) -> None:
        self.path = path
        self._seal = seal
        try:
            self._fd: int | None = os.open(
                path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, SPOOL_MODE
            )
            os.fchmod(self._fd, SPOOL_MODE)
        except OSError as exc:
            raise StorageError(f"cannot create {path}: {exc.strerror}") from exc
        self.size = 0  # plaintext bytes appended

    def append(self, data: bytes) -> None:
        if not data:
            return
        if self._fd is None:
            raise StorageError(f"{self.path} is closed")
        sealed = self._seal.seal(KIND_ARCHIVE_PAGES, data)
        chunk = _CHUNK.pack(len(sealed)) + sealed
        try:
            written = 0
            while written < len(chunk):
                written += os.write(self._fd, chunk[written:])
        except OSError as exc:
            raise StorageError(f"cannot write {self.path}: {exc.strerror}") from exc
        self.size += len(data)

    def read_all(self) -> bytes:
        """Every page appended, decrypted; StorageError if the file is not what this object wrote."""
        try:
            raw = self.path.read_bytes()
        except OSError as exc:
            raise StorageError(f"cannot read {self.path}: {exc.strerror}") from exc
        pages: list[bytes] = []
        pos = 0
        while pos < len(raw):
            if pos + _CHUNK.size > len(raw):
                raise StorageError(f"{self.path} ends in a partial chunk")
            (length,) = _CHUNK.unpack_from(raw, pos)
            pos += _CHUNK.size
            if pos + length > len(raw):
                raise StorageError(f"{self.path} ends in a partial chunk")
            try:
                pages.append(self._seal.open(KIND_ARCHIVE_PAGES, raw[pos : pos + length]))
            except IntegrityError as exc:
                raise StorageError(f"{self.path}: {exc.message}") from None
            pos += length
        plain = b"".join(pages)
        if len(plain) != self.size:
            raise StorageError(f"{self.path} holds {len(plain)} bytes of pages, {self.size} were written")
        return plain

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
