"""Recording announcements: the audio every call is checked for (upload, list, remove; audited).

An uploaded file is untrusted: it is decoded and fingerprinted in the decoder
sandbox (:mod:`.decoder_sandbox`), never in the server process, and only the
fingerprint is kept (:mod:`callvault.media.announcement_match`), with the
file's SHA-256 to say which file it was made from. A file that is not audio
is refused 415; audio that cannot serve as an announcement (silent, under a
second of sound, over two minutes) 422; a name already taken 409. Every
change, and every refused upload, is in the audit trail; the change and its
audit entry commit together.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError as DbIntegrityError

from callvault.db.catalog import Catalog
from callvault.db.disclosure_models import Announcement
from callvault.errors import (
    CallvaultError,
    Conflict,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
)
from callvault.services.access import Action, Principal, require
from callvault.services.audit import AccessLog
from callvault.services.decoder_sandbox import DecoderSandbox
from callvault.services.manifest import iso

# Decoded length accepted from an announcement file (the sound itself may be 2 minutes at most).
MAX_FILE_SECONDS: Final = 600.0
MAX_NAME = 120


class AnnouncementService:
    def __init__(
        self,
        catalog: Catalog,
        access_log: AccessLog,
        sandbox: DecoderSandbox,
        max_bytes: int,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self._catalog = catalog
        self._log = access_log
        self._sandbox = sandbox
        self._max_bytes = max_bytes
        self._clock = clock or (lambda: datetime.now(UTC))

    def may_add(self, principal: Principal) -> None:
        """Refuse (and log) a caller who may not manage announcements, before the file is read."""
        try:
            require(principal, Action.ANNOUNCEMENT_MANAGE)
        except PermissionDenied as exc:
            self.log_refusal(principal, exc)
            raise

    def log_refusal(self, principal: Principal, exc: CallvaultError) -> None:
        outcome = "denied" if isinstance(exc, PermissionDenied) else "refused"
        self._log.record(principal, "announcement_add", detail=f"refused: {exc.message}", outcome=outcome)

    def add(
        self, principal: Principal, name: str | None, data: bytes, file_name: str | None
    ) -> dict[str, Any]:
        """Fingerprint ``data`` and keep it under ``name`` (default: the file name without extension)."""
        try:
            return self._add(principal, name, data, file_name)
        except CallvaultError as exc:
            self.log_refusal(principal, exc)
            raise

    def _add(
        self, principal: Principal, name: str | None, data: bytes, file_name: str | None
    ) -> dict[str, Any]:
        require(principal, Action.ANNOUNCEMENT_MANAGE)
        chosen = _clean_name(name if name is not None else (file_name or "").rsplit(".", 1)[0])
        if not data:
            raise InvalidInput("the announcement file is empty")
        if len(data) > self._max_bytes:
            raise PayloadTooLarge(f"the announcement file is larger than {self._max_bytes} bytes")
        with self._catalog.read() as session:
            if session.scalar(select(Announcement.id).where(Announcement.name == chosen)) is not None:
                raise Conflict(f"an announcement named {chosen!r} already exists; remove it first")
        made = self._sandbox.fingerprint(data, MAX_FILE_SECONDS)
        digest = hashlib.sha256(data).hexdigest()
        with self._catalog.write() as session:
            row = Announcement(
                name=chosen,
                fingerprint=made.fingerprint,
                duration_seconds=round(made.sound_seconds, 2),
                file_name=file_name[-255:] if file_name else None,
                file_sha256=digest,
                created_at=self._clock(),
                created_by=principal.username,
            )
            session.add(row)
            try:
                session.flush()
            except DbIntegrityError:
                raise Conflict(f"an announcement named {chosen!r} already exists; remove it first") from None
            view = _view(row)
            detail = f"{row.id} {chosen}: {made.sound_seconds:.1f} s of sound, sha256 {digest[:16]}"
            self._log.record_in(session, principal, "announcement_add", detail=detail)
        return view

    def list(self, principal: Principal) -> list[dict[str, Any]]:
        require(principal, Action.ANNOUNCEMENT_VIEW)
        with self._catalog.read() as session:
            return [_view(row) for row in session.scalars(select(Announcement).order_by(Announcement.id))]

    def remove(self, principal: Principal, announcement: str) -> None:
        """Remove by id or name; checks already made keep the name of what they heard."""
        require(principal, Action.ANNOUNCEMENT_MANAGE)
        with self._catalog.write() as session:
            query = select(Announcement).where(Announcement.name == announcement)
            if announcement.isdigit():
                query = select(Announcement).where(Announcement.id == int(announcement))
            row = session.scalars(query).first()
            if row is None:
                raise NotFound(f"no announcement {announcement!r}")
            detail = f"{row.id} {row.name}: sha256 {row.file_sha256[:16]}"
            session.delete(row)
            self._log.record_in(session, principal, "announcement_remove", detail=detail)


def _clean_name(raw: str) -> str:
    name = raw.strip()
    if not name or len(name) > MAX_NAME or not name.isprintable():
        raise InvalidInput(f"name must be 1 to {MAX_NAME} printable characters")
    return name


def _view(row: Announcement) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "duration_seconds": row.duration_seconds,
        "file_name": row.file_name,
        "file_sha256": row.file_sha256,
        "created_at": iso(row.created_at),
        "created_by": row.created_by,
    }
