"""The seal log: every signed manifest, appended to a hash chain with signed checkpoints.

Per-recording checks (hashes, signature) cannot notice a recording that is
gone altogether, a row that was inserted, or a whole catalog restored from an
older backup. Like a transparency log, each signed manifest (sealing, and each
later re-signing: metadata update, crypto-shred) appends an entry
``(seq, recording id, SHA-256 of the manifest, previous entry hash, entry
hash, time)`` in the *same transaction* that stores the manifest, together
with a checkpoint: the signing key's Ed25519 signature over ``(seq, head
hash, count, time)``. A signature per entry means an entry appended by
someone holding database access but not the key stands out.

Appends are serialised so the chain stays linear: on SQLite every writer
already holds the database's write lock (``BEGIN IMMEDIATE``); on PostgreSQL a
transaction-scoped advisory lock is taken before reading the head, and the
primary key on ``seq`` is the backstop.

After the commit (in a thread, so the sealer does not wait for the file's
fsyncs) the newest checkpoint is mirrored *outside the catalog*, to
``seal-log-checkpoint.json`` in the data directory. A catalog restored from
an older backup has a shorter chain than that checkpoint (or a different
entry at its seq), which ``verify --all`` reports as rolled back. The mirror
is only replaced by a checkpoint that extends it, so a rolled-back catalog
that goes on sealing cannot overwrite the evidence.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from callvault.crypto.secretfile import read_private, write_private
from callvault.crypto.signing import ManifestSigner, canonical_json
from callvault.db.catalog import Catalog
from callvault.db.models import SealCheckpoint, SealLogEntry
from callvault.db.seal_chain import GENESIS, entry_hash, manifest_sha256, utc_iso
from callvault.errors import CallvaultError, ConfigError

log = logging.getLogger(__name__)

MIRROR_NAME = "seal-log-checkpoint.json"
_MIRROR_FORMAT = "callvault-seal-checkpoint"
_LOG_NAME = "callvault-seal-log"
# Any fixed 64-bit number: the PostgreSQL advisory lock that serialises appends.
_PG_LOCK_KEY = 0x63766C6F67  # "cvlog"
_HEAD = select(SealLogEntry.seq, SealLogEntry.entry_hash).order_by(SealLogEntry.seq.desc()).limit(1)
_INSERT_ENTRY = insert(SealLogEntry)
_INSERT_CHECKPOINT = insert(SealCheckpoint)


@dataclass(frozen=True)
class Checkpoint:
    seq: int
    head: str
    count: int
    at: str
    key_id: str
    signature: bytes

    def signed_bytes(self) -> bytes:
        return checkpoint_bytes(self.seq, self.head, self.count, self.at, self.key_id)

    @classmethod
    def from_row(cls, row: SealCheckpoint) -> Checkpoint:
        return cls(row.seq, row.head, row.count, utc_iso(row.at), row.key_id, row.signature)


def checkpoint_bytes(seq: int, head: str, count: int, at: str, key_id: str) -> bytes:
    doc = {"log": _LOG_NAME, "seq": seq, "head": head, "count": count, "at": at, "key_id": key_id}
    return canonical_json(doc)


class SealLog:
    def __init__(self, catalog: Catalog, signer: ManifestSigner, data_dir: Path) -> None:
        self._catalog = catalog
        self._signer = signer
        self.mirror_path = data_dir / MIRROR_NAME
        self._mirror_lock = threading.Lock()
        self._pending_lock = threading.Lock()
        self._newest: Checkpoint | None = None  # committed, not yet mirrored
        self._writer: threading.Thread | None = None

    # -- appending -----------------------------------------------------------

    def append(self, session: Session, recording_id: str, manifest: str) -> None:
        """Append ``manifest`` to the chain inside the caller's write transaction."""
        if session.get_bind().dialect.name == "postgresql":
            session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
        # Plain statements, built once: appended on every seal, no ORM objects needed.
        connection = session.connection()
        head = connection.execute(_HEAD).first()
        seq, prev = (head.seq + 1, head.entry_hash) if head else (1, GENESIS)
        at = datetime.now(UTC)
        digest = manifest_sha256(manifest)
        this = entry_hash(seq, recording_id, digest, prev, at)
        row = {
            "seq": seq,
            "recording_id": recording_id,
            "manifest_sha256": digest,
            "prev_hash": prev,
            "entry_hash": this,
            "at": at,
        }
        connection.execute(_INSERT_ENTRY, row)
        self._checkpoint(session, seq, this, at)

    def append_many(self, session: Session, entries: list[tuple[str, str]]) -> None:
        """Append ``(recording_id, manifest)`` pairs in order, each with its signed checkpoint.

        Bulk deletions re-sign thousands of tombstones; one lock and one head lookup per
        batch instead of per entry keep them fast. Same chain as :meth:`append`.
        """
        if not entries:
            return
        if session.get_bind().dialect.name == "postgresql":
            session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
        head = session.scalars(select(SealLogEntry).order_by(SealLogEntry.seq.desc()).limit(1)).first()
        seq, prev = (head.seq, head.entry_hash) if head else (0, GENESIS)
        at = datetime.now(UTC)
        stamp = utc_iso(at)
        key_id, sign = self._signer.current_key()
        rows: list[dict[str, object]] = []
        checkpoints: list[dict[str, object]] = []
        signature = b""
        for recording_id, manifest in entries:
            seq += 1
            digest = manifest_sha256(manifest)
            this = entry_hash(seq, recording_id, digest, prev, at)
            rows.append(
                {
                    "seq": seq,
                    "recording_id": recording_id,
                    "manifest_sha256": digest,
                    "prev_hash": prev,
                    "entry_hash": this,
                    "at": at,
                }
            )
            # Every entry is signed, as by append(); only the last checkpoint is mirrored.
            signature = sign(checkpoint_bytes(seq, this, seq, stamp, key_id))
            checkpoints.append(
                {"seq": seq, "head": this, "count": seq, "at": at, "key_id": key_id, "signature": signature}
            )
            prev = this
        # Core inserts (executemany): no unit-of-work bookkeeping for thousands of rows.
        session.execute(insert(SealLogEntry), rows)
        session.execute(insert(SealCheckpoint), checkpoints)
        checkpoint = Checkpoint(seq, prev, seq, stamp, key_id, signature)
        Catalog.after_write(session, lambda: self._mirror_soon(checkpoint))

    def _checkpoint(self, session: Session, seq: int, head: str, at: datetime) -> None:
        key_id, sign = self._signer.current_key()
        stamp = utc_iso(at)
        signature = sign(checkpoint_bytes(seq, head, seq, stamp, key_id))
        row = {"seq": seq, "head": head, "count": seq, "at": at, "key_id": key_id, "signature": signature}
        session.connection().execute(_INSERT_CHECKPOINT, row)
        checkpoint = Checkpoint(seq, head, seq, stamp, key_id, signature)
        # Mirrored only once the entry is durable: a mirror ahead of the catalog would read as a rollback.
        Catalog.after_write(session, lambda: self._mirror_soon(checkpoint))

    def _mirror_soon(self, checkpoint: Checkpoint) -> None:
        # In a thread: the file write (two fsyncs) must not delay the sealer, whose next step
        # (deleting the spool) waits on it. One thread at a time writes the newest checkpoint
        # committed so far: under load many seals share one write instead of each starting a
        # thread, and the mirror only ever keeps the newest anyway. Not a daemon, so a process
        # that exits without close() still writes it; close() and verify wait for it.
        with self._pending_lock:
            if self._newest is None or checkpoint.seq > self._newest.seq:
                self._newest = checkpoint
            if self._writer is not None:
                return  # the running writer picks it up before it stops
            # Started under the lock, so flush() never finds a writer it cannot join yet.
            self._writer = threading.Thread(target=self._mirror_newest, name="seal-log-mirror")
            self._writer.start()

    def _mirror_newest(self) -> None:
        try:
            while True:
                with self._pending_lock:
                    checkpoint, self._newest = self._newest, None
                    if checkpoint is None:
                        self._writer = None
                        return
                self.mirror(checkpoint)
        except BaseException:
            with self._pending_lock:
                self._writer = None  # an unforeseen error must not stop later mirrors
            raise

    def flush(self) -> None:
        """Wait until every checkpoint this process committed is mirrored (or given up on)."""
        with self._pending_lock:
            writer = self._writer
        if writer is not None:
            writer.join()

    def adopt_backfill(self) -> None:
        """Sign the head of a log back-filled by the migration (it had no key to sign with).

        Only while no checkpoint exists at all, in the catalog or outside it:
        afterwards every entry carries its own checkpoint, and an unsigned one is
        evidence (someone without the key appended it), not something to adopt.
        """
        if self.mirror_path.exists():
            return
        with self._catalog.read() as session:
            if _has_checkpoint(session) or session.scalar(select(SealLogEntry.seq).limit(1)) is None:
                return
        with self._catalog.write() as session:
            if session.get_bind().dialect.name == "postgresql":
                session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
            if _has_checkpoint(session):
                return
            head = session.scalars(select(SealLogEntry).order_by(SealLogEntry.seq.desc()).limit(1)).one()
            self._checkpoint(session, head.seq, head.entry_hash, datetime.now(UTC))
            log.info("seal log: signed the back-filled head at seq %d", head.seq)

    # -- the mirror outside the catalog ---------------------------------------

    def mirror(self, checkpoint: Checkpoint) -> None:
        """Replace the mirrored checkpoint if ``checkpoint`` extends it (never raises)."""
        try:
            with self._mirror_lock:
                existing = self.read_mirror()
                if existing is not None:
                    if existing.seq >= checkpoint.seq:
                        return
                    if not self._extends(existing):
                        log.error(
                            "seal log does not extend the checkpoint outside the catalog (seq %d): "
                            "catalog rolled back? Keeping that checkpoint; run 'callvault verify --all'",
                            existing.seq,
                        )
                        return
                write_private(self.mirror_path, _mirror_doc(checkpoint))
        except (CallvaultError, SQLAlchemyError) as exc:
            # The seal is committed; a stale mirror only weakens rollback detection until the next seal.
            reason = exc.message if isinstance(exc, CallvaultError) else type(exc).__name__
            log.warning("seal log checkpoint not mirrored to %s: %s", self.mirror_path, reason)

    def _extends(self, checkpoint: Checkpoint) -> bool:
        with self._catalog.read() as session:
            entry = session.get(SealLogEntry, checkpoint.seq)
            return entry is not None and entry.entry_hash == checkpoint.head

    def read_mirror(self) -> Checkpoint | None:
        """The checkpoint outside the catalog; None if there is none yet."""
        if not self.mirror_path.exists():
            return None
        where = f"seal log checkpoint {self.mirror_path}"
        try:
            doc = json.loads(read_private(self.mirror_path, "seal log checkpoint"))
            body = doc["checkpoint"]
            if doc.get("format") != _MIRROR_FORMAT or body.get("log") != _LOG_NAME:
                raise ValueError("wrong format")
            return Checkpoint(
                seq=int(body["seq"]),
                head=str(body["head"]),
                count=int(body["count"]),
                at=str(body["at"]),
                key_id=str(body["key_id"]),
                signature=base64.b64decode(doc["signature"], validate=True),
            )
        except (ValueError, KeyError, TypeError, AttributeError, binascii.Error):
            raise ConfigError(f"{where} is malformed") from None


def _has_checkpoint(session: Session) -> bool:
    return session.scalar(select(SealCheckpoint.seq).limit(1)) is not None


def _mirror_doc(checkpoint: Checkpoint) -> bytes:
    body: dict[str, Any] = {
        "log": _LOG_NAME,
        "seq": checkpoint.seq,
        "head": checkpoint.head,
        "count": checkpoint.count,
        "at": checkpoint.at,
        "key_id": checkpoint.key_id,
    }
    doc = {
        "format": _MIRROR_FORMAT,
        "checkpoint": body,
        "signature": base64.b64encode(checkpoint.signature).decode(),
    }
    return json.dumps(doc, indent=2).encode() + b"\n"
