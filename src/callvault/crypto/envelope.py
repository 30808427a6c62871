"""Chunked AES-256-GCM encryption of one recording object.

Layout of a stored object::

    header   magic "CVE1" | version u8 | 3 zero bytes | chunk size u32 |
             plaintext length u64 | nonce prefix (8 random bytes) | header tag (16)
    chunk 0  ciphertext of plaintext[0:chunk_size] | tag (16)
    ...
    chunk n-1 (the last; may be shorter; an empty object still has one empty chunk)

All integers are big-endian. Chunk ``i`` is sealed with nonce ``prefix || i``
(u32) and AAD ``header fields || i || last flag || object id``, so a chunk
moved to another position, another object, or cut from / appended after the
end fails authentication. The header carries its own tag (nonce ``prefix ||
0xFFFFFFFF``, an index no chunk may use) so a reader learns the plaintext size
from an authenticated header before it decrypts any chunk: the API can send
``Content-Length`` and then stream without a late surprise.

The total plaintext length sits in the header, so :class:`ObjectEncryptor`
must be told the length up front. Recordings are finalised into a spool file
before they enter the vault, so the size is known (``os.stat``); requiring it
keeps random access a single fixed-size header read instead of a trailer hunt.
"""

from __future__ import annotations

import secrets
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from callvault.errors import IntegrityError, InvalidInput, RangeNotSatisfiable

MAGIC = b"CVE1"
VERSION = 1
KEY_SIZE = 32
TAG_SIZE = 16
NONCE_PREFIX_SIZE = 8
DEFAULT_CHUNK_SIZE = 64 * 1024
MAX_CHUNK_SIZE = 16 * 1024 * 1024
_HEADER_FIELDS = struct.Struct(">4sB3xIQ8s")
HEADER_SIZE = _HEADER_FIELDS.size + TAG_SIZE
_HEADER_INDEX = 0xFFFFFFFF
MAX_CHUNKS = _HEADER_INDEX  # chunk indices 0 .. 2**32 - 2
_INDEX = struct.Struct(">IB")

ReadRange = Callable[[int, int], bytes]


def new_data_key() -> bytes:
    """A fresh random 256-bit data key for one recording."""
    return secrets.token_bytes(KEY_SIZE)


def _aead(data_key: bytes) -> AESGCM:
    if len(data_key) != KEY_SIZE:
        raise InvalidInput(f"data key must be {KEY_SIZE} bytes, got {len(data_key)}")
    return AESGCM(data_key)


def _chunk_count(plaintext_length: int, chunk_size: int) -> int:
    return max(1, -(-plaintext_length // chunk_size))


def ciphertext_size(plaintext_length: int, chunk_size: int = DEFAULT_CHUNK_SIZE) -> int:
    """Size of the stored object for a plaintext of ``plaintext_length`` bytes."""
    return HEADER_SIZE + plaintext_length + _chunk_count(plaintext_length, chunk_size) * TAG_SIZE


@dataclass(frozen=True)
class EnvelopeHeader:
    chunk_size: int
    plaintext_length: int
    nonce_prefix: bytes

    @property
    def fields(self) -> bytes:
        return _HEADER_FIELDS.pack(MAGIC, VERSION, self.chunk_size, self.plaintext_length, self.nonce_prefix)

    @property
    def chunk_count(self) -> int:
        return _chunk_count(self.plaintext_length, self.chunk_size)

    @property
    def ciphertext_size(self) -> int:
        return ciphertext_size(self.plaintext_length, self.chunk_size)

    def chunk_offset(self, index: int) -> int:
        """Offset of chunk ``index`` in the stored object."""
        return HEADER_SIZE + index * (self.chunk_size + TAG_SIZE)

    def chunk_plaintext_size(self, index: int) -> int:
        if index == self.chunk_count - 1:
            return self.plaintext_length - index * self.chunk_size
        return self.chunk_size

    def nonce(self, index: int) -> bytes:
        return self.nonce_prefix + index.to_bytes(4, "big")

    def chunk_aad(self, index: int, object_id: bytes) -> bytes:
        last = 1 if index == self.chunk_count - 1 else 0
        return self.fields + _INDEX.pack(index, last) + object_id

    def seal_header(self, aead: AESGCM, object_id: bytes) -> bytes:
        fields = self.fields
        return fields + aead.encrypt(self.nonce(_HEADER_INDEX), b"", fields + object_id)


def _validate_layout(chunk_size: int, plaintext_length: int) -> None:
    if not 1 <= chunk_size <= MAX_CHUNK_SIZE:
        raise InvalidInput(f"chunk size must be 1 to {MAX_CHUNK_SIZE} bytes, got {chunk_size}")
    if plaintext_length < 0:
        raise InvalidInput(f"plaintext length must not be negative, got {plaintext_length}")
    if _chunk_count(plaintext_length, chunk_size) > MAX_CHUNKS:
        raise InvalidInput(f"{plaintext_length} bytes need more than {MAX_CHUNKS} chunks of {chunk_size}")


def open_header(raw: bytes, aead: AESGCM, object_id: str) -> EnvelopeHeader:
    """Parse and authenticate the header; IntegrityError if it is not ours or tampered."""
    if len(raw) < HEADER_SIZE:
        raise IntegrityError(f"object {object_id!r}: header truncated ({len(raw)} of {HEADER_SIZE} bytes)")
    fields, tag = raw[: _HEADER_FIELDS.size], raw[_HEADER_FIELDS.size : HEADER_SIZE]
    magic, version, chunk_size, plaintext_length, prefix = _HEADER_FIELDS.unpack(fields)
    if magic != MAGIC:
        raise IntegrityError(f"object {object_id!r}: not an encrypted callvault object (magic {magic!r})")
    if version != VERSION:
        raise IntegrityError(f"object {object_id!r}: unsupported envelope version {version}")
    try:
        _validate_layout(chunk_size, plaintext_length)
    except InvalidInput as exc:
        raise IntegrityError(f"object {object_id!r}: header is inconsistent: {exc.message}") from None
    header = EnvelopeHeader(chunk_size, plaintext_length, prefix)
    try:
        aead.decrypt(header.nonce(_HEADER_INDEX), tag, fields + object_id.encode())
    except InvalidTag:
        raise IntegrityError(
            f"object {object_id!r}: header failed authentication (wrong key, wrong object id or tampered)"
        ) from None
    return header


def _open_chunk(aead: AESGCM, header: EnvelopeHeader, object_id: str, index: int, sealed: bytes) -> bytes:
    try:
        return aead.decrypt(header.nonce(index), sealed, header.chunk_aad(index, object_id.encode()))
    except InvalidTag:
        raise IntegrityError(
            f"object {object_id!r}: chunk {index} of {header.chunk_count} failed authentication "
            "(tampered, truncated, reordered or swapped)"
        ) from None


class ObjectEncryptor:
    """Encrypt a plaintext of known length fed in pieces of any size.

    ``update`` returns the ciphertext completed so far (the header comes with
    the first output); ``finish`` returns the last chunk and checks that exactly
    ``plaintext_length`` bytes were fed.
    """

    def __init__(
        self,
        data_key: bytes,
        object_id: str,
        plaintext_length: int,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
    ) -> None:
        _validate_layout(chunk_size, plaintext_length)
        self._aead = _aead(data_key)
        self._object_id = object_id.encode()
        self.header = EnvelopeHeader(chunk_size, plaintext_length, secrets.token_bytes(NONCE_PREFIX_SIZE))
        self._pending = bytearray()
        self._index = 0
        self._fed = 0
        self._header_sent = False
        self._finished = False

    def _seal(self, index: int, plaintext: bytes | memoryview) -> bytes:
        return self._aead.encrypt(
            self.header.nonce(index), plaintext, self.header.chunk_aad(index, self._object_id)
        )

    def _start(self, out: list[bytes]) -> None:
        if not self._header_sent:
            out.append(self.header.seal_header(self._aead, self._object_id))
            self._header_sent = True

    def update(self, data: bytes | memoryview) -> bytes:
        return b"".join(self._update_pieces(data))

    def finish(self) -> bytes:
        return b"".join(self._finish_pieces())

    def _update_pieces(self, data: bytes | memoryview) -> list[bytes]:
        if self._finished:
            raise InvalidInput("encryptor already finished")
        if self._fed + len(data) > self.header.plaintext_length:
            raise InvalidInput(
                f"fed {self._fed + len(data)} bytes, more than the declared {self.header.plaintext_length}"
            )
        self._fed += len(data)
        out: list[bytes] = []
        self._start(out)
        view = memoryview(data)
        chunk_size = self.header.chunk_size
        # Only full chunks that are not the last are sealed here: the last one needs its
        # flag, and finish() is where we know it is complete.
        last = self.header.chunk_count - 1
        if self._pending:
            take = min(len(view), chunk_size - len(self._pending))
            self._pending += view[:take]
            view = view[take:]
            if len(self._pending) == chunk_size and self._index < last:
                out.append(self._seal(self._index, bytes(self._pending)))
                self._pending.clear()
                self._index += 1
        while len(view) >= chunk_size and self._index < last:
            out.append(self._seal(self._index, view[:chunk_size]))
            view = view[chunk_size:]
            self._index += 1
        self._pending += view
        return out

    def _finish_pieces(self) -> list[bytes]:
        if self._finished:
            raise InvalidInput("encryptor already finished")
        if self._fed != self.header.plaintext_length:
            raise InvalidInput(f"declared {self.header.plaintext_length} bytes but only {self._fed} were fed")
        out: list[bytes] = []
        self._start(out)
        out.append(self._seal(self._index, bytes(self._pending)))
        self._pending.clear()
        self._finished = True
        return out


def encrypt_object(
    plaintext: bytes, data_key: bytes, object_id: str, chunk_size: int = DEFAULT_CHUNK_SIZE
) -> bytes:
    """Encrypt a whole recording object in memory."""
    encryptor = ObjectEncryptor(data_key, object_id, len(plaintext), chunk_size)
    # One join of all pieces: each extra copy of a large recording costs more than the AES.
    return b"".join(encryptor._update_pieces(plaintext) + encryptor._finish_pieces())


def decrypt_object(blob: bytes, data_key: bytes, object_id: str) -> bytes:
    """Decrypt and authenticate a whole object; IntegrityError names the failing chunk."""
    aead = _aead(data_key)
    header = open_header(blob, aead, object_id)
    expected = header.ciphertext_size
    if len(blob) < expected:
        broken = (len(blob) - HEADER_SIZE) // (header.chunk_size + TAG_SIZE)
        raise IntegrityError(
            f"object {object_id!r}: truncated at {len(blob)} of {expected} bytes "
            f"(chunk {broken} of {header.chunk_count} incomplete)"
        )
    if len(blob) > expected:
        raise IntegrityError(
            f"object {object_id!r}: {len(blob) - expected} unexpected bytes after the last chunk "
            f"(chunk {header.chunk_count - 1})"
        )
    view = memoryview(blob)
    parts = []
    for index in range(header.chunk_count):
        offset = header.chunk_offset(index)
        sealed = view[offset : offset + header.chunk_plaintext_size(index) + TAG_SIZE]
        parts.append(_open_chunk(aead, header, object_id, index, bytes(sealed)))
    return b"".join(parts)


def ciphertext_range_for(header: EnvelopeHeader, plaintext_start: int, plaintext_end: int) -> tuple[int, int]:
    """(offset, length) of the stored bytes holding every chunk that covers the plaintext range."""
    if plaintext_end <= plaintext_start:
        return (HEADER_SIZE, 0)
    first = plaintext_start // header.chunk_size
    last = (plaintext_end - 1) // header.chunk_size
    end = header.chunk_offset(last) + header.chunk_plaintext_size(last) + TAG_SIZE
    start = header.chunk_offset(first)
    return (start, end - start)


class EncryptedObjectReader:
    """Random access to an encrypted object through ``read_range(start, length)``.

    The header is read and authenticated on construction, so a wrong key, a
    wrong object id or a damaged header fails before anything is streamed.
    Reads fetch only the chunks they need, in batches growing to
    ``prefetch_chunks``, so a remote store sees few large requests.
    """

    def __init__(
        self, read_range: ReadRange, data_key: bytes, object_id: str, *, prefetch_chunks: int = 16
    ) -> None:
        if prefetch_chunks < 1:
            raise InvalidInput("prefetch_chunks must be at least 1")
        self._read_range = read_range
        self._aead = _aead(data_key)
        self._object_id = object_id
        self._prefetch = prefetch_chunks
        self.header = open_header(read_range(0, HEADER_SIZE), self._aead, object_id)

    @property
    def plaintext_size(self) -> int:
        return self.header.plaintext_length

    @property
    def chunk_size(self) -> int:
        return self.header.chunk_size

    def ciphertext_range_for(self, plaintext_start: int, plaintext_end: int) -> tuple[int, int]:
        start, end = self._bounds(plaintext_start, plaintext_end)
        return ciphertext_range_for(self.header, start, end)

    def _bounds(self, start: int, end: int | None) -> tuple[int, int]:
        size = self.plaintext_size
        stop = size if end is None else min(end, size)
        if start < 0 or start > size or stop < start:
            raise RangeNotSatisfiable(f"range {start}-{end} is outside the {size}-byte object")
        return start, stop

    def _fetch(self, first: int, last: int) -> list[bytes]:
        header = self.header
        offset = header.chunk_offset(first)
        length = header.chunk_offset(last) + header.chunk_plaintext_size(last) + TAG_SIZE - offset
        is_final = last == header.chunk_count - 1
        # One byte past the final chunk tells an appended tail apart from a clean end.
        data = self._read_range(offset, length + 1 if is_final else length)
        if len(data) < length:
            broken = first + (len(data) // (header.chunk_size + TAG_SIZE))
            raise IntegrityError(
                f"object {self._object_id!r}: truncated: chunk {broken} of {header.chunk_count} incomplete"
            )
        if len(data) > length:
            raise IntegrityError(
                f"object {self._object_id!r}: unexpected bytes after the last chunk "
                f"(chunk {header.chunk_count - 1})"
            )
        view = memoryview(data)
        plain = []
        for index in range(first, last + 1):
            start = header.chunk_offset(index) - offset
            sealed = view[start : start + header.chunk_plaintext_size(index) + TAG_SIZE]
            plain.append(_open_chunk(self._aead, header, self._object_id, index, bytes(sealed)))
        return plain

    def iter_chunks(self, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """Plaintext of ``[start, end)`` in chunk-sized pieces, for streaming responses."""
        start, stop = self._bounds(start, end)
        if start == stop:
            return
        chunk_size = self.header.chunk_size
        first, last = start // chunk_size, (stop - 1) // chunk_size
        # Batches grow 1, 2, 4 … prefetch_chunks: the first byte of playback waits for one
        # chunk only, and a long stream still makes few large requests.
        batch, batch_first = 1, first
        while batch_first <= last:
            batch_last = min(last, batch_first + batch - 1)
            for index, plain in enumerate(self._fetch(batch_first, batch_last), batch_first):
                base = index * chunk_size
                lo = max(start - base, 0)
                hi = min(stop - base, len(plain))
                yield plain[lo:hi] if (lo, hi) != (0, len(plain)) else plain
            batch_first, batch = batch_last + 1, min(batch * 2, self._prefetch)

    def read(self, start: int, end_exclusive: int) -> bytes:
        """Plaintext bytes ``[start, end_exclusive)``; the end is clamped to the object size.

        The covering chunks are fetched with one ``read_range`` call.
        """
        start, stop = self._bounds(start, end_exclusive)
        if start == stop:
            return b""
        chunk_size = self.header.chunk_size
        first = start // chunk_size
        plain = b"".join(self._fetch(first, (stop - 1) // chunk_size))
        base = first * chunk_size
        return plain[start - base : stop - base]
