"""The coaching library: clips of recordings, playlists by topic, shared with agents or teams.

A clip is a span of a sealed recording with a title, notes and tags. Its
audio is not copied: each play cuts the span from the encrypted recording on
the server (:meth:`PlaybackService.open_span`) and sends it as WAV, so a
clip's audio lives and dies with its recording (retention, erasure and
crypto-shredding reach it with no extra step; a play afterwards is 410).
Who may not hear the call's personal data (no ``transcript.original`` over
it: agents, QA evaluators) hears the span of the redacted rendition, card
numbers and the like silenced, and nothing (409) until the call is
transcribed (:meth:`RedactedAudio.clip_silence`).

Who sees a clip (``qa.library``): admins and compliance officers all;
supervisors and QA evaluators the clips of their team's calls; an agent the
clips shared with them or their team, directly, through a playlist, or by a
coaching item. Coaches (``qa.coach``) cut clips of calls in their scope and
share them only inside it (a supervisor cannot hand another team's agent a
call of theirs). Every play is in the audit trail (``clip_play``, with the
recording's id) and counts for usage monitoring like a playback. A compliance
officer may export a clip as a file under a named policy (``export``, with
the basis): the one way its audio outlives the recording.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from callvault.db.catalog import Catalog
from callvault.db.models import Recording, User
from callvault.db.qa_models import QaClip, QaClipView, QaPlaylist, QaShare
from callvault.errors import InvalidInput, NotFound, PermissionDenied
from callvault.services.access import Action, Principal, Scope, require
from callvault.services.audit import AccessLog
from callvault.services.manifest import iso
from callvault.services.playback import PlaybackAudio, PlaybackService, require_audio
from callvault.services.qa_scope import (
    evaluable_recording,
    in_scope,
    is_row_id,
    team_named,
    user_id_named,
)
from callvault.services.redaction import RedactedAudio

MIN_CLIP_SECONDS = 0.5
MAX_TAGS = 20
_CLIP_FIELDS = {"recording_id", "start", "end", "title", "notes", "tags", "share"}
_PLAYLIST_FIELDS = {"name", "topic", "clip_ids", "share"}


class ClipLibrary:
    def __init__(
        self, catalog: Catalog, access_log: AccessLog, playback: PlaybackService, redaction: RedactedAudio
    ) -> None:
        self._catalog = catalog
        self._log = access_log
        self._playback = playback
        self._redaction = redaction

    def create_clip(self, principal: Principal, body: Any) -> dict[str, Any]:
        require(principal, Action.QA_COACH)
        if not isinstance(body, dict) or not set(body) <= _CLIP_FIELDS:
            raise InvalidInput(f"a clip has the fields {', '.join(sorted(_CLIP_FIELDS))}")
        title, notes, tags = _title(body.get("title")), _notes(body.get("notes")), _tags(body.get("tags"))
        with self._catalog.write() as session:
            recording = evaluable_recording(session, principal, Action.QA_COACH, body.get("recording_id"))
            start, end = _span(body.get("start"), body.get("end"), recording.duration_seconds)
            clip = QaClip(
                recording_id=recording.id,
                team_id=recording.team_id,
                agent_user_id=recording.agent_user_id,
                start_seconds=start,
                end_seconds=end,
                title=title,
                notes=notes,
                tags=tags,
                created_at=datetime.now(UTC),
                created_by=principal.username,
            )
            session.add(clip)
            session.flush()
            shared = _add_shares(session, principal, body.get("share"), clip_id=clip.id)
            self._log.record_in(
                session,
                principal,
                "clip_create",
                recording.id,
                detail=f"clip {clip.id} {start:g}-{end:g}s{shared}",
            )
            return self._view(session, clip, principal)

    def share(self, principal: Principal, clip_id: int, body: Any) -> dict[str, Any]:
        require(principal, Action.QA_COACH)
        with self._catalog.write() as session:
            clip = self._visible(session, principal, clip_id)
            shared = _add_shares(session, principal, body, clip_id=clip.id)
            self._log.record_in(
                session, principal, "clip_share", clip.recording_id, detail=f"clip {clip.id}{shared}"
            )
            return self._view(session, clip, principal)

    def list_clips(self, principal: Principal, tag: str | None = None) -> list[dict[str, Any]]:
        with self._catalog.read() as session:
            query = (
                select(QaClip)
                .where(_visible_condition(session, principal))
                .order_by(QaClip.id.desc())
                .limit(500)
            )
            clips = [c for c in session.scalars(query) if tag is None or tag in c.tags]
            return [self._view(session, c, principal) for c in clips]

    def get_clip(self, principal: Principal, clip_id: int) -> dict[str, Any]:
        with self._catalog.read() as session:
            return self._view(session, self._visible(session, principal, clip_id), principal)

    def open_clip_audio(
        self, principal: Principal, clip_id: int, verb: str = "clip_play", detail: str = ""
    ) -> PlaybackAudio:
        """The clip's audio as WAV, cut from the recording now (the redacted rendition for those
        who may not hear the call's personal data); the play is audited."""
        with self._catalog.read() as session:
            clip = self._visible(session, principal, clip_id)
            recording = session.get(Recording, clip.recording_id)
            assert recording is not None
        require_audio(recording)  # a destroyed call is 410 before anything about its transcript
        silence = self._redaction.clip_silence(principal, recording)
        audio = self._playback.open_span(recording, clip.start_seconds, clip.end_seconds, silence)
        redacted = "" if silence is None else f" redacted={len(silence)}"
        self._log.record(
            principal, verb, clip.recording_id, detail=f"clip {clip.id}{redacted} {detail}".rstrip()
        )
        return audio

    def export_clip(self, principal: Principal, clip_id: int, basis: str) -> PlaybackAudio:
        """The clip as a WAV file to keep outside the vault (a compliance officer, under a policy
        named in ``basis``): the one way a clip's audio outlives its recording. Audited as
        ``export`` with the basis, and counted for usage limits like every export."""
        require(principal, Action.QA_CLIP_EXPORT)
        if not isinstance(basis, str) or not 3 <= len(basis.strip()) <= 500:
            raise InvalidInput("basis (the policy the export is made under) must be 3-500 characters")
        audio = self.open_clip_audio(principal, clip_id, verb="export", detail=basis.strip())
        audio.filename = f"clip-{clip_id}.wav"
        return audio

    def mark_watched(self, principal: Principal, clip_id: int) -> dict[str, Any]:
        if principal.user_id is None:
            raise InvalidInput("only a user account can mark a clip watched")
        with self._catalog.write() as session:
            clip = self._visible(session, principal, clip_id)
            seen = session.scalar(
                select(QaClipView).where(
                    QaClipView.clip_id == clip.id, QaClipView.user_id == principal.user_id
                )
            )
            if seen is None:
                session.add(
                    QaClipView(clip_id=clip.id, user_id=principal.user_id, watched_at=datetime.now(UTC))
                )
                session.flush()
                self._log.record_in(
                    session, principal, "clip_watched", clip.recording_id, detail=f"clip {clip.id}"
                )
            return self._view(session, clip, principal)

    def create_playlist(self, principal: Principal, body: Any) -> dict[str, Any]:
        require(principal, Action.QA_COACH)
        if not isinstance(body, dict) or not set(body) <= _PLAYLIST_FIELDS:
            raise InvalidInput(f"a playlist has the fields {', '.join(sorted(_PLAYLIST_FIELDS))}")
        name = _title(body.get("name"), "name")
        topic = body.get("topic")
        if topic is not None and (not isinstance(topic, str) or len(topic) > 200):
            raise InvalidInput("topic must be text of at most 200 characters")
        clip_ids = body.get("clip_ids", [])
        if (
            not isinstance(clip_ids, list)
            or len(clip_ids) > 500
            or len(set(map(str, clip_ids))) != len(clip_ids)
        ):
            raise InvalidInput("clip_ids must be a list of at most 500 distinct clip ids")
        with self._catalog.write() as session:
            for clip_id in clip_ids:
                if not is_row_id(clip_id):
                    raise InvalidInput("clip_ids must be clip ids (whole numbers from 1)")
                self._visible(session, principal, clip_id)
            playlist = QaPlaylist(
                name=name,
                topic=topic,
                clip_ids=clip_ids,
                created_at=datetime.now(UTC),
                created_by=principal.username,
            )
            session.add(playlist)
            session.flush()
            shared = _add_shares(session, principal, body.get("share"), playlist_id=playlist.id)
            self._log.record_in(
                session, principal, "playlist_create", detail=f"playlist {playlist.id}{shared}"
            )
            return self._playlist_view(session, playlist, principal)

    def list_playlists(self, principal: Principal) -> list[dict[str, Any]]:
        require(principal, Action.QA_LIBRARY)
        with self._catalog.read() as session:
            playlists = session.scalars(select(QaPlaylist).order_by(QaPlaylist.id.desc()).limit(500))
            views = [self._playlist_view(session, p, principal) for p in playlists]
            return [v for v in views if v["clips"] or v["created_by"] == principal.username]

    def _playlist_view(self, session: Session, playlist: QaPlaylist, principal: Principal) -> dict[str, Any]:
        clips = []
        for clip_id in playlist.clip_ids:
            try:
                clips.append(self._view(session, self._visible(session, principal, clip_id), principal))
            except NotFound:
                continue
        return {
            "id": playlist.id,
            "name": playlist.name,
            "topic": playlist.topic,
            "clips": clips,
            "created_at": iso(playlist.created_at),
            "created_by": playlist.created_by,
        }

    def _view(self, session: Session, clip: QaClip, principal: Principal) -> dict[str, Any]:
        """The clip as ``principal`` sees it, with ``rendition``: what its audio plays to them
        (``original``, ``redacted``, or ``pending`` until the call is transcribed)."""
        view = _clip_view(session, clip, principal)
        recording = session.get(Recording, clip.recording_id)
        assert recording is not None
        view["rendition"] = self._redaction.clip_rendition(session, principal, recording)
        return view

    @staticmethod
    def _visible(session: Session, principal: Principal, clip_id: int) -> QaClip:
        clip = session.get(QaClip, clip_id)
        if clip is None or not _sees(session, principal, clip):
            raise NotFound(f"clip {clip_id} not found")
        return clip


def _sees(session: Session, principal: Principal, clip: QaClip) -> bool:
    scope = require(principal, Action.QA_LIBRARY)
    if scope is not Scope.OWN:
        return in_scope(principal, Action.QA_LIBRARY, clip.team_id, clip.agent_user_id)
    return (
        session.scalar(select(QaClip.id).where(QaClip.id == clip.id, _shared_with(session, principal)))
        is not None
    )


def _visible_condition(session: Session, principal: Principal) -> Any:
    scope = require(principal, Action.QA_LIBRARY)
    if scope is Scope.ALL:
        return QaClip.id.is_not(None)
    if scope is Scope.TEAM:
        return QaClip.team_id == principal.team_id if principal.team_id is not None else QaClip.id.is_(None)
    return _shared_with(session, principal)


def _shared_with(session: Session, principal: Principal) -> Any:
    """Clips shared with the caller or their team, directly or through a playlist."""
    target = []
    if principal.user_id is not None:
        target.append(QaShare.user_id == principal.user_id)
    if principal.team_id is not None:
        target.append(QaShare.team_id == principal.team_id)
    if not target:
        return QaClip.id.is_(None)
    direct = select(QaShare.clip_id).where(QaShare.clip_id.is_not(None), or_(*target))
    playlists = select(QaShare.playlist_id).where(QaShare.playlist_id.is_not(None), or_(*target))
    listed: set[int] = set()
    for clip_ids in session.scalars(select(QaPlaylist.clip_ids).where(QaPlaylist.id.in_(playlists))):
        listed.update(int(c) for c in clip_ids)
    return or_(QaClip.id.in_(direct), QaClip.id.in_(sorted(listed)))


def _add_shares(
    session: Session,
    principal: Principal,
    raw: Any,
    clip_id: int | None = None,
    playlist_id: int | None = None,
) -> str:
    """Share rows for ``{"users": [...], "teams": [...]}``, each inside the coach's scope."""
    if raw is None:
        return ""
    if not isinstance(raw, dict) or not set(raw) <= {"users", "teams"}:
        raise InvalidInput('share must be {"users": [usernames], "teams": [team names]}')
    users, teams = raw.get("users", []), raw.get("teams", [])
    if not isinstance(users, list) or not isinstance(teams, list) or len(users) + len(teams) > 200:
        raise InvalidInput("share.users and share.teams must be lists (at most 200 names in all)")
    for name in users:
        user: User = user_id_named(session, name, "share.users")
        if not in_scope(principal, Action.QA_COACH, user.team_id, user.id):
            raise PermissionDenied(f"share.users: {user.username} is outside your team")
        session.add(QaShare(clip_id=clip_id, playlist_id=playlist_id, user_id=user.id))
    for name in teams:
        team_id = team_named(session, name, "share.teams")
        if not in_scope(principal, Action.QA_COACH, team_id, None):
            raise PermissionDenied(f"share.teams: {name} is not your team")
        session.add(QaShare(clip_id=clip_id, playlist_id=playlist_id, team_id=team_id))
    session.flush()
    return f", shared with {len(users)} user(s) and {len(teams)} team(s)" if users or teams else ""


def _clip_view(session: Session, clip: QaClip, principal: Principal) -> dict[str, Any]:
    watched = session.scalar(
        select(QaClipView.watched_at).where(
            QaClipView.clip_id == clip.id, QaClipView.user_id == principal.user_id
        )
    )
    return {
        "id": clip.id,
        "recording_id": clip.recording_id,
        "start": clip.start_seconds,
        "end": clip.end_seconds,
        "duration_seconds": round(clip.end_seconds - clip.start_seconds, 3),
        "title": clip.title,
        "notes": clip.notes,
        "tags": clip.tags,
        "created_at": iso(clip.created_at),
        "created_by": clip.created_by,
        "watched_at": iso(watched),
        "audio_url": f"/api/v1/qa/clips/{clip.id}/audio",
    }


def _span(start: Any, end: Any, duration: float | None) -> tuple[float, float]:
    for name, value in (("start", start), ("end", end)):
        if isinstance(value, bool) or not isinstance(value, int | float) or value != value or value < 0:
            raise InvalidInput(f"{name} must be seconds into the call (a number >= 0)")
    if duration is None:
        raise InvalidInput("the recording's length is unknown: no clip can be cut from it")
    if end > duration + 0.01:
        raise InvalidInput(f"end {end:g} s is past the end of the call ({duration:.2f} s)")
    if end - start < MIN_CLIP_SECONDS:
        raise InvalidInput(f"a clip runs from start to an end at least {MIN_CLIP_SECONDS:g} s later")
    return float(start), float(min(end, duration))


def _title(value: Any, what: str = "title") -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > 200:
        raise InvalidInput(f"{what} must be a non-empty string of at most 200 characters")
    return value.strip()


def _notes(value: Any) -> str | None:
    if value is not None and (not isinstance(value, str) or len(value) > 4000):
        raise InvalidInput("notes must be text of at most 4000 characters")
    return value


def _tags(value: Any) -> list[str]:
    if value is None:
        return []
    if (
        not isinstance(value, list)
        or len(value) > MAX_TAGS
        or not all(isinstance(t, str) and 0 < len(t.strip()) <= 64 for t in value)
    ):
        raise InvalidInput(
            f"tags must be a list of at most {MAX_TAGS} non-empty strings of up to 64 characters"
        )
    return sorted({t.strip() for t in value})
