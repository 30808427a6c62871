"""The disclosure check of one sealed call: was an announcement heard in its first seconds?

Run by the recorder when it seals a call (in a thread, off the event loop),
with the opening the render worker took from the PCM it rendered anyway
(:class:`~callvault.services.call_record.CallOpening`), so no audio is
decoded twice. Every announcement is looked for in every channel; the best
score above :data:`MATCH_THRESHOLD` wins and the call is ``verified``, with
where it was heard. Otherwise the call is ``missing`` when its consent
requirement needs a disclosure (:mod:`.disclosure_policy`) and
``not_required`` when not.

The fingerprints are read from the catalog once and kept until the set of
announcements changes (one indexed id query per call tells).

:data:`MATCH_THRESHOLD` comes from ``bench/disclosure.py``: with announcements
through G.711, G.722, G.729 and Opus, ±20 dB and line noise down to 10 dB
SNR, the lowest score of a played announcement was 0.73 (G.729, clipped and
noisy) and the highest score of a call without it (other speech, another
announcement, the same words in another voice) 0.36: the threshold sits in
the middle of that gap.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from sqlalchemy import select

from callvault.db.catalog import Catalog
from callvault.db.disclosure_models import Announcement, DisclosureCheck
from callvault.db.models import Recording
from callvault.errors import NotFound
from callvault.media.announcement_match import Fingerprint, best_match
from callvault.services.call_record import CallEvent, CallOpening
from callvault.services.disclosure_policy import consent_requirement, needs_disclosure

MATCH_THRESHOLD: Final = 0.55
HEARD_EVENT: Final = "disclosure_heard"


@dataclass(frozen=True)
class Template:
    id: int
    name: str
    fingerprint: Fingerprint


@dataclass(frozen=True)
class Heard:
    announcement: Template
    channel: str
    offset_seconds: float
    score: float


@dataclass(frozen=True)
class DisclosureVerdict:
    status: str  # verified | missing | not_required
    requirement: str | None
    heard: Heard | None  # the best match, whether above the threshold or not
    templates: int

    def events(self) -> list[CallEvent]:
        """The recording's timeline event where the announcement was heard (signed with the recording)."""
        if self.status != "verified" or self.heard is None:
            return []
        heard = self.heard
        data: dict[str, object] = {
            "announcement": heard.announcement.name,
            "channel": heard.channel,
            "score": round(heard.score, 3),
        }
        return [CallEvent(HEARD_EVENT, heard.offset_seconds, data)]


def listen(opening: CallOpening | None, templates: list[Template]) -> Heard | None:
    """The best match of any template in any channel of ``opening`` (None: nothing could be compared)."""
    best: Heard | None = None
    if opening is None:
        return None
    for template in templates:
        for row, channel in enumerate(opening.channels):
            match = best_match(opening.envelopes[row], template.fingerprint)
            if match is not None and (best is None or match.score > best.score):
                best = Heard(template, channel, match.offset_seconds, match.score)
    return best


class DisclosureChecker:
    def __init__(self, catalog: Catalog, threshold: float = MATCH_THRESHOLD) -> None:
        self._catalog = catalog
        self._threshold = threshold
        self._lock = threading.Lock()
        self._ids: tuple[int, ...] | None = None
        self._templates: list[Template] = []

    def templates(self) -> list[Template]:
        """The announcements' fingerprints, read again only when announcements were added or removed."""
        with self._lock, self._catalog.read() as session:
            ids = tuple(session.scalars(select(Announcement.id).order_by(Announcement.id)))
            if ids != self._ids:
                rows = session.execute(
                    select(Announcement.id, Announcement.name, Announcement.fingerprint).order_by(
                        Announcement.id
                    )
                )
                self._templates = [Template(i, n, Fingerprint.from_bytes(f)) for i, n, f in rows]
                self._ids = ids
            return list(self._templates)

    def check(self, recording_id: str, opening: CallOpening | None) -> DisclosureVerdict:
        """Decide and store the recording's disclosure state (a second check replaces the first)."""
        templates = self.templates()
        heard = listen(opening, templates)
        verified = heard is not None and heard.score >= self._threshold
        with self._catalog.write() as session:
            recording = session.get(Recording, recording_id)
            if recording is None:
                raise NotFound(f"recording {recording_id} not found")
            requirement = consent_requirement(recording)
            status = (
                "verified" if verified else "missing" if needs_disclosure(requirement) else "not_required"
            )
            session.merge(
                DisclosureCheck(
                    recording_id=recording_id,
                    status=status,
                    started_at=recording.started_at,
                    requirement=requirement,
                    offset_seconds=round(heard.offset_seconds, 2) if verified and heard else None,
                    channel=heard.channel if verified and heard else None,
                    announcement_id=heard.announcement.id if verified and heard else None,
                    announcement_name=heard.announcement.name if verified and heard else None,
                    score=round(heard.score, 3) if heard else None,
                    window_seconds=opening.window_seconds if opening else 0.0,
                    checked_at=datetime.now(UTC),
                )
            )
        return DisclosureVerdict(status, requirement, heard, len(templates))
