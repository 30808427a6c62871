"""The spool key of a recording session: made and wrapped at open, unwrapped at recovery.

Each session's journal is sealed under its own fresh random 256-bit key
(:func:`callvault.crypto.envelope.new_data_key`). The engine wraps it with the
key provider, bound to the context ``b"spool:" + recording id``, and the
wrapped form goes into the journal's plaintext SESSION record, so a new
process can unwrap it after a ``kill -9``. The raw key lives only in memory:
the engine's writer, the capture writers (handed over the workers' control
socket) and the render jobs (arguments of the job). It is never logged.

Writer numbers (the nonce space of each writer, see
:mod:`callvault.crypto.record_seal`): the engine process is
:data:`ENGINE_WRITER`; capture worker *i* is ``i + 1``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from callvault.crypto.envelope import new_data_key
from callvault.crypto.keyprovider import KeyProvider, WrappedKey
from callvault.crypto.record_seal import RecordSealer
from callvault.storage.spool import SealFor, SpoolHeader, SpoolWriter

ENGINE_WRITER = 0
SIDE_FILE_CONTEXT = b"archive-part"


def spool_context(recording_id: str) -> bytes:
    return b"spool:" + recording_id.encode()


def journal_seal(key: bytes, recording_id: str, writer: int = ENGINE_WRITER) -> RecordSealer:
    """The seal of ``recording_id``'s journal records as written by ``writer``."""
    return RecordSealer(key, spool_context(recording_id), writer)


def journal_reader(key: bytes) -> SealFor:
    """What :func:`~callvault.storage.spool.read_spool` needs to open a journal sealed under ``key``.

    Only opening is done with it, so the writer number does not matter.
    """

    def seal_for(recording_id: str) -> RecordSealer:
        return journal_seal(key, recording_id)

    return seal_for


def side_file_seal() -> RecordSealer:
    """A seal for an archive side file: a fresh key that only the renderer's memory holds."""
    return RecordSealer.ephemeral(SIDE_FILE_CONTEXT)


@dataclass(frozen=True)
class SpoolKey:
    recording_id: str
    key: bytes = field(repr=False)
    wrapped: WrappedKey

    @classmethod
    def new(cls, keys: KeyProvider, recording_id: str) -> SpoolKey:
        key = new_data_key()
        return cls(recording_id, key, keys.wrap(key, spool_context(recording_id)))

    @classmethod
    def unwrap(cls, keys: KeyProvider, header: SpoolHeader) -> SpoolKey:
        """The key of a journal found on disk; KeyUnavailable (KEK gone) or IntegrityError (tampered)."""
        wrapped = WrappedKey(header.kek_id, header.wrapped_key)
        return cls(header.recording_id, keys.unwrap(wrapped, spool_context(header.recording_id)), wrapped)

    def header(self, started_at: float) -> SpoolHeader:
        return SpoolHeader(self.recording_id, started_at, self.wrapped.kek_id, self.wrapped.wrapped)

    def create_journal(self, spool_dir: Path, started_at: float) -> SpoolWriter:
        """Create the journal, written to by the engine as writer :data:`ENGINE_WRITER`."""
        return SpoolWriter.create(
            spool_dir, self.header(started_at), journal_seal(self.key, self.recording_id)
        )
