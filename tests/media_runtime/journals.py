"""Journals for tests that write and read the spool directly, sealed under a fixed test key."""

from __future__ import annotations

from pathlib import Path

from callvault.runtime.media.spool_key import journal_reader, journal_seal
from callvault.storage.spool import SpoolContents, SpoolHeader, SpoolWriter, read_spool

TEST_KEY = bytes(range(32))


def create_journal(
    spool_dir: Path, recording_id: str, started_at: float, key: bytes = TEST_KEY
) -> SpoolWriter:
    # No key provider here: the wrapped key is a placeholder nobody unwraps.
    header = SpoolHeader(recording_id, started_at, "test-kek", b"\0" * 61)
    return SpoolWriter.create(spool_dir, header, journal_seal(key, recording_id))


def read_journal(path: Path, key: bytes = TEST_KEY) -> SpoolContents:
    return read_spool(path, journal_reader(key))
