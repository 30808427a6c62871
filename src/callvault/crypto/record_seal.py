"""AES-256-GCM sealing of the records of an append-only file written by several writers.

The capture spool is one journal per recording session, appended to by the
engine (stream descriptions, events) and by one or more capture writers
(packet batches, possibly in several processes). Every record body is sealed
on its own, so a reader can stop at the first record that fails and keep
everything before it, as it does for a torn tail.

Nonces never repeat for one key because no two writers share a nonce space:
a nonce is ``writer (u32) || counter (u64)``, where the writer number is
handed out by whoever hands out the key (the engine is writer 0, capture
worker *i* is writer *i* + 1) and the counter belongs to one
:class:`RecordSealer` object and only counts up. A writer must therefore hold
one sealer for its whole life; a second sealer for the same key and writer
number would restart the counter. :meth:`RecordSealer.ephemeral` gives a
sealer whose random key exists only in that object (for files nobody else
ever reads), so its nonces are unique by construction too.

The AAD binds each record to its file's context (``b"spool:" + recording id``
for a journal) and to its record kind, so a record moved to another
recording's journal, or relabelled as another kind, fails authentication. A
record moved within its own journal is not detected: records of different
writers interleave in no fixed order.

Cost: one ``encrypt`` per record; the capture path seals one record per
session per flush (once a second), never per packet.
"""

from __future__ import annotations

import itertools
import secrets
import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from callvault.errors import IntegrityError, InvalidInput

KEY_SIZE = 32
NONCE_SIZE = 12
TAG_SIZE = 16
OVERHEAD = NONCE_SIZE + TAG_SIZE
MAX_WRITER = 0xFFFFFFFF
_NONCE = struct.Struct(">IQ")
_AAD_PREFIX = b"callvault-record-v1\0"


class RecordSealer:
    """Seals and opens the records of one file under one data key, as writer ``writer``.

    ``seal`` is safe to call from several threads at once: the counter is an
    ``itertools.count``, whose ``next`` is atomic in CPython.
    """

    def __init__(self, key: bytes, context: bytes, writer: int = 0) -> None:
        if len(key) != KEY_SIZE:
            raise InvalidInput(f"record key must be {KEY_SIZE} bytes, got {len(key)}")
        if not 0 <= writer <= MAX_WRITER:
            raise InvalidInput(f"writer number {writer} is out of range")
        self._aead = AESGCM(key)
        self._writer = writer
        self._counter = itertools.count()
        self._aad = _AAD_PREFIX + struct.pack(">H", len(context)) + context
        self._aads = [self._aad + bytes([kind]) for kind in range(256)]

    @classmethod
    def ephemeral(cls, context: bytes) -> RecordSealer:
        """A sealer under a fresh random key that only this object knows."""
        return cls(secrets.token_bytes(KEY_SIZE), context)

    @property
    def writer(self) -> int:
        return self._writer

    def seal(self, kind: int, plaintext: bytes) -> bytes:
        """``nonce || ciphertext || tag`` of one record of ``kind`` (0-255)."""
        nonce = _NONCE.pack(self._writer, next(self._counter))
        return nonce + self._aead.encrypt(nonce, plaintext, self._aads[kind])

    def open(self, kind: int, sealed: bytes) -> bytes:
        """The plaintext of a record sealed by any writer of this key; IntegrityError if it fails."""
        if len(sealed) < OVERHEAD:
            raise IntegrityError(f"sealed record of {len(sealed)} bytes is shorter than nonce and tag")
        try:
            return self._aead.decrypt(sealed[:NONCE_SIZE], sealed[NONCE_SIZE:], self._aads[kind])
        except InvalidTag:
            raise IntegrityError("record failed authentication (tampered, or another key)") from None

    def __repr__(self) -> str:
        return f"RecordSealer(writer={self._writer})"  # never the key
