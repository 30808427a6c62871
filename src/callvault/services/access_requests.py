"""GDPR Art. 15 access requests: every recording of one person, in one zip to hand over.

The subject is found by :mod:`callvault.services.subject_access` (the same
lookup erasure uses). Each recording contributes its audio as archived
(``<id>/audio.opus``) and its catalog metadata (``<id>/metadata.json``);
recordings whose audio was destroyed contribute metadata only, saying so.
Only roles that may download every recording (admin, compliance officer) may
ask; each audio read is audited as a download, and the request itself once.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Mapping

from callvault.crypto.personal_hash import PersonalHasher
from callvault.db.catalog import Catalog
from callvault.errors import CallvaultError, NotFound, PermissionDenied
from callvault.services.access import Action, Principal, Scope, require
from callvault.services.audit import AccessLog
from callvault.services.playback import PlaybackService
from callvault.services.search import RecordingCatalog
from callvault.services.subject_access import Subject, find_subject_recordings


class AccessRequestService:
    def __init__(
        self,
        catalog: Catalog,
        playback: PlaybackService,
        search: RecordingCatalog,
        access_log: AccessLog,
        hasher: PersonalHasher,
        region: str,
    ) -> None:
        self._catalog = catalog
        self._playback = playback
        self._search = search
        self._log = access_log
        self._hasher = hasher
        self._region = region

    def export(self, principal: Principal, raw_subject: Mapping[str, object]) -> tuple[bytes, int]:
        """The zip and how many recordings it holds; NotFound for a subject with none."""
        if require(principal, Action.RECORDING_DOWNLOAD) is not Scope.ALL:
            raise PermissionDenied("access requests need the right to download every recording")
        subject = Subject.parse(raw_subject, self._region)
        with self._catalog.read() as session:
            found = find_subject_recordings(session, subject)
        if not found:
            self._log.record(
                principal,
                "access_request",
                detail=f"subject={subject.masked(self._hasher)}",
                outcome="not_found",
            )
            raise NotFound("no recordings of this subject")
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            index = []
            for match in found:
                metadata = self._search.get(principal, match.recording_id)
                audio = self._audio(principal, match.recording_id)
                if audio is not None:
                    archive.writestr(f"{match.recording_id}/audio.opus", audio, zipfile.ZIP_STORED)
                else:
                    metadata["audio"] = "destroyed or not available"
                archive.writestr(
                    f"{match.recording_id}/metadata.json", json.dumps(metadata, indent=2, default=str)
                )
                index.append(
                    {"recording_id": match.recording_id, "call_id": match.call_id, "audio": audio is not None}
                )
            archive.writestr("index.json", json.dumps({"recordings": index}, indent=2))
        self._log.record(
            principal,
            "access_request",
            detail=f"subject={subject.masked(self._hasher)} recordings={len(found)}",
        )
        return buffer.getvalue(), len(found)

    def _audio(self, principal: Principal, recording_id: str) -> bytes | None:
        try:
            return self._playback.open_audio(principal, recording_id, "ogg", download=True).read()
        except CallvaultError as exc:
            if exc.status_code in (404, 409, 410) or exc.code in ("key_unavailable",):
                return None
            raise
