"""``callvault verify``: check every stored object, hash, manifest and signature.

For each recording with a manifest, whatever its status: the manifest rebuilt
from today's catalog rows must equal the signed one; the signature must verify
under the key the manifest names (the current signing key or a retired one);
the manifest must be the one the seal log recorded last for the recording;
the stored object must hash to ``object_sha256``; decrypting it (authenticated
chunk by chunk) must give ``audio_sha256``. A row in status ``recording``
without a manifest must belong to a live session (see :meth:`_unsealed`).
``verify --all`` also walks the seal log (:mod:`callvault.services.seal_log_audit`)
to name recordings that are missing altogether and catalogs rolled back to an
older state. Every failure is named, none stops the run.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from callvault.crypto.signing import ManifestSigner, canonical_json
from callvault.db.catalog import Catalog
from callvault.db.models import Recording, SealLogEntry
from callvault.db.seal_chain import manifest_sha256
from callvault.errors import CallvaultError, ConfigError, NotFound
from callvault.services.access import Action, Principal, require
from callvault.services.audit import AccessLog
from callvault.services.manifest import build_manifest
from callvault.services.playback import PlaybackService
from callvault.services.seal_log import SealLog
from callvault.services.seal_log_audit import LogProblem, audit_seal_log
from callvault.storage.blobstore import BlobStore
from callvault.storage.spool import spool_path


@dataclass
class VerifyResult:
    recording_id: str
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass
class VaultReport:
    """``verify --all``: every recording's result plus what the seal log walk found."""

    results: list[VerifyResult]
    log_problems: list[LogProblem]

    @property
    def ok(self) -> bool:
        return not self.log_problems and all(r.ok for r in self.results)


@dataclass(frozen=True)
class Liveness:
    """How ``verify`` (often another process than the recorder) tells a call in progress.

    A live session's spool journal is written at least once a second while RTP
    flows, and a call without RTP for ``rtp_timeout`` is ended; so a journal
    written within ``window`` seconds belongs to a live session. A row created
    within the window without a journal is an upload or import being sealed.
    """

    spool_dir: Path
    window: float


class IntegrityService:
    def __init__(
        self,
        catalog: Catalog,
        blobs: BlobStore,
        signer: ManifestSigner,
        playback: PlaybackService,
        access_log: AccessLog,
        seal_log: SealLog,
        liveness: Liveness,
    ) -> None:
        self._catalog = catalog
        self._blobs = blobs
        self._signer = signer
        self._playback = playback
        self._log = access_log
        self._seal_log = seal_log
        self._liveness = liveness

    def recording_ids(self) -> list[str]:
        with self._catalog.read() as session:
            return list(session.scalars(select(Recording.id).order_by(Recording.started_at, Recording.id)))

    def verify(
        self,
        principal: Principal,
        recording_ids: Iterable[str] | None = None,
        progress: Callable[[VerifyResult], None] | None = None,
    ) -> list[VerifyResult]:
        require(principal, Action.INTEGRITY_VERIFY)
        ids = list(recording_ids) if recording_ids is not None else self.recording_ids()
        results = self._verify_each(ids, progress)
        failed = sum(1 for r in results if not r.ok)
        self._log.record(principal, "verify", detail=f"{len(results)} checked, {failed} failed")
        return results

    def verify_all(
        self, principal: Principal, progress: Callable[[VerifyResult], None] | None = None
    ) -> VaultReport:
        """Every recording, then the seal log walk (missing, inserted, rolled back)."""
        require(principal, Action.INTEGRITY_VERIFY)
        ids = self.recording_ids()
        results = self._verify_each(ids, progress)
        self._seal_log.flush()  # what this process sealed is compared with its own mirror
        mirror, mirror_error = None, None
        try:
            mirror = self._seal_log.read_mirror()
        except ConfigError as exc:  # a damaged anchor is a finding, not a reason to stop verifying
            mirror_error = exc.message
        # The mirror is read before the log: it is written after its entry commits, so it can
        # only lag what the snapshot below sees, never run ahead of it (no false "rolled back").
        with self._catalog.snapshot() as session:
            log_problems = audit_seal_log(
                session, self._signer, mirror, str(self._seal_log.mirror_path), mirror_error
            )
        failed = sum(1 for r in results if not r.ok)
        self._log.record(
            principal,
            "verify",
            detail=f"{len(results)} checked, {failed} failed, {len(log_problems)} seal log problems",
        )
        return VaultReport(results, log_problems)

    def _verify_each(
        self, ids: list[str], progress: Callable[[VerifyResult], None] | None
    ) -> list[VerifyResult]:
        results = []
        for recording_id in ids:
            result = self.verify_one(recording_id)
            results.append(result)
            if progress:
                progress(result)
        return results

    def verify_one(self, recording_id: str) -> VerifyResult:
        result = VerifyResult(recording_id)
        # One snapshot for the row and its log entry: a seal committing in between is seen whole or not at all.
        with self._catalog.snapshot() as session:
            recording = session.get(Recording, recording_id)
            if recording is None:
                raise NotFound(f"recording {recording_id} not found")
            logged = session.scalars(
                select(SealLogEntry)
                .where(SealLogEntry.recording_id == recording_id)
                .order_by(SealLogEntry.seq.desc())
                .limit(1)
            ).first()
            if recording.manifest is None and recording.status == "recording" and logged is None:
                result.problems.extend(self._unsealed(recording))
                return result
            rebuilt = build_manifest(session, recording)
        if recording.manifest is None or recording.manifest_signature is None:
            result.problems.append("manifest or signature missing")
        else:
            result.problems.extend(self._manifest_problems(recording, rebuilt))
        if logged is None:
            if recording.manifest is not None:
                result.problems.append("inserted: signed manifest without a seal log entry (not sealed here)")
        elif recording.manifest is None or logged.manifest_sha256 != manifest_sha256(recording.manifest):
            result.problems.append(
                f"manifest differs from its seal log entry (seq {logged.seq}): row replaced or rolled back"
            )
        result.problems.extend(self._object_problems(recording))
        return result

    def _object_problems(self, recording: Recording) -> list[str]:
        if recording.object_key is None:
            return ["no stored object"] if recording.status in ("complete", "incomplete") else []
        if recording.key_destroyed_at is not None:
            return []  # crypto-shredded: the object is gone by design, the re-signed row is the evidence
        try:
            blob = self._blobs.get(recording.object_key)
        except CallvaultError as exc:
            return [f"stored object unreadable: {exc.message}"]
        problems = []
        if hashlib.sha256(blob).hexdigest() != recording.object_sha256:
            problems.append("stored object hash mismatch")
        if recording.wrapped_key is None or recording.kek_id is None:
            return [*problems, "no wrapped data key, and the key is not recorded as destroyed"]
        try:
            reader = self._playback.open_reader(recording)
            digest = hashlib.sha256()
            for piece in reader.iter_chunks():
                digest.update(piece)
            if digest.hexdigest() != recording.audio_sha256:
                problems.append("audio hash mismatch")
        except CallvaultError as exc:
            problems.append(f"decryption failed: {exc.message}")
        return problems

    def _manifest_problems(self, recording: Recording, rebuilt: dict[str, Any]) -> list[str]:
        assert recording.manifest is not None and recording.manifest_signature is not None
        problems = []
        try:
            stored = json.loads(recording.manifest)
        except json.JSONDecodeError:
            return ["signed manifest is not JSON"]
        key_id = stored.get("signing_key_id") if isinstance(stored, dict) else None
        if key_id is None:
            # Manifests signed before they named their key: the row says which key it was.
            rebuilt.pop("signing_key_id", None)
            key_id = recording.signing_key_id or self._signer.key_id
        if canonical_json(rebuilt).decode() != recording.manifest:
            problems.append("catalog rows differ from the signed manifest")
        if self._signer.public_key(str(key_id)) is None:
            problems.append(f"manifest signed by key {key_id}, which this vault never had (forged?)")
        elif not self._signer.verify(str(key_id), recording.manifest.encode(), recording.manifest_signature):
            problems.append("manifest signature does not verify")
        return problems

    def _unsealed(self, recording: Recording) -> list[str]:
        """A row claiming to be recorded right now: fine only if a live session holds it."""
        window = self._liveness.window
        try:
            journal = spool_path(self._liveness.spool_dir, recording.id)
            idle = time.time() - journal.stat().st_mtime
        except (OSError, CallvaultError):  # no journal (or an id that cannot name one)
            created = recording.created_at
            created = created if created.tzinfo else created.replace(tzinfo=UTC)
            if 0 <= (datetime.now(UTC) - created).total_seconds() <= window:
                return []  # an upload or import between cataloguing and sealing
            reason = "it has no spool journal"
        else:
            if idle <= window:
                return []
            reason = f"its spool journal was last written {idle:.0f} s ago"
        return [f"status 'recording' but no live session holds it ({reason}); not sealed, not verifiable"]
