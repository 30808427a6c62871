"""Comments pinned to a moment of a recording (QA notes, compliance remarks).

Whoever may view a recording may read its comments; whoever may play it may
add one (the moment they comment on is one they heard). Comments are never
edited or removed: adding one is an audited change, and reading them is part
of viewing the recording, which is audited where it happens.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select

from callvault.db.catalog import Catalog
from callvault.db.models import Recording
from callvault.db.web_models import RecordingComment
from callvault.errors import InvalidInput
from callvault.services.access import Action, Principal, check_recording
from callvault.services.audit import AccessLog

MAX_COMMENT = 2000
MAX_COMMENTS_SHOWN = 500


@dataclass(frozen=True)
class Comment:
    id: int
    recording_id: str
    author: str
    offset_seconds: float
    body: str
    created_at: datetime

    def to_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "recording_id": self.recording_id,
            "author": self.author,
            "offset_seconds": self.offset_seconds,
            "body": self.body,
            "created_at": self.created_at.isoformat(timespec="seconds").replace("+00:00", "Z"),
        }


def _clean_body(body: str) -> str:
    text = "".join(ch for ch in body.strip() if ch in "\n\t" or unicodedata.category(ch)[0] != "C")
    if not text:
        raise InvalidInput("comment: write something")
    if len(text) > MAX_COMMENT:
        raise InvalidInput(f"comment: at most {MAX_COMMENT} characters")
    return text


class CommentService:
    def __init__(self, catalog: Catalog, access_log: AccessLog) -> None:
        self._catalog = catalog
        self._log = access_log

    def list(self, principal: Principal, recording_id: str) -> list[Comment]:
        with self._catalog.read() as session:
            check_recording(principal, Action.RECORDING_VIEW, session.get(Recording, recording_id))
            rows = session.scalars(
                select(RecordingComment)
                .where(RecordingComment.recording_id == recording_id)
                .order_by(RecordingComment.offset_seconds, RecordingComment.id)
                .limit(MAX_COMMENTS_SHOWN)
            ).all()
            return [_view(r) for r in rows]

    def add(self, principal: Principal, recording_id: str, offset_seconds: float, body: str) -> Comment:
        text = _clean_body(body)
        with self._catalog.write() as session:
            recording = check_recording(
                principal, Action.RECORDING_PLAY, session.get(Recording, recording_id)
            )
            length = recording.duration_seconds or 0.0
            if not 0.0 <= offset_seconds <= max(length, 0.0) + 1.0:
                raise InvalidInput(f"offset_seconds must be between 0 and the call's length ({length:.1f} s)")
            row = RecordingComment(
                recording_id=recording_id,
                user_id=principal.user_id,
                username=principal.username,
                offset_seconds=round(offset_seconds, 3),
                body=text,
                created_at=datetime.now(UTC),
            )
            session.add(row)
            session.flush()
            self._log.record_in(
                session, principal, "comment_add", recording_id, f"at={row.offset_seconds:.1f}s id={row.id}"
            )
            return _view(row)


def _view(row: RecordingComment) -> Comment:
    created = row.created_at if row.created_at.tzinfo else row.created_at.replace(tzinfo=UTC)
    return Comment(row.id, row.recording_id, row.username, row.offset_seconds, row.body, created)
