"""`verify` on rows that claim a call in progress, at the edges of the liveness window, and on
rows sealed without audio. The clock is frozen so that the edges are exact.

The window is ``rtp_timeout + 30 s`` (services/context.py): a live session writes its
spool journal at least once a second while RTP flows, and ends a call silent for longer
than ``rtp_timeout``.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import text

from callvault.services import integrity
from callvault.services.call_record import CallRecord
from callvault.services.context import ServiceContext
from callvault.storage.spool import spool_path
from tests.support.people import ADMIN

NOW = float(int(time.time()))  # whole seconds: every difference below is exact


class _FrozenDatetime(datetime):
    @classmethod
    def now(cls, tz: object = None) -> _FrozenDatetime:
        moment = datetime.fromtimestamp(NOW, UTC)
        return cls(*moment.timetuple()[:6], tzinfo=UTC)


@pytest.fixture
def frozen(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(integrity, "time", SimpleNamespace(time=lambda: NOW))
    monkeypatch.setattr(integrity, "datetime", _FrozenDatetime)


def _window(ctx: ServiceContext) -> float:
    return float(ctx.settings.rtp_timeout) + 30.0


def _unsealed(ctx: ServiceContext, *, created_ago: float) -> str:
    recording_id = ctx.recordings.begin(CallRecord(started_at=datetime.now(UTC), source="siprec"))
    created = datetime.fromtimestamp(NOW - created_ago, UTC)
    with ctx.catalog.engine.begin() as conn:
        conn.execute(
            text("UPDATE recordings SET created_at = :at WHERE id = :id"), {"at": created, "id": recording_id}
        )
    return recording_id


def _journal(ctx: ServiceContext, recording_id: str, *, written_ago: float) -> None:
    journal = spool_path(ctx.settings.spool_dir, recording_id)
    journal.parent.mkdir(parents=True, exist_ok=True)
    journal.write_bytes(b"")
    stamp = int((NOW - written_ago) * 1_000_000_000)
    os.utime(journal, ns=(stamp, stamp))


def _problems(ctx: ServiceContext, recording_id: str) -> list[str]:
    return ctx.integrity.verify(ADMIN, [recording_id])[0].problems


def test_a_journal_written_exactly_one_window_ago_is_still_live(ctx: ServiceContext, frozen: None) -> None:
    window = _window(ctx)
    live, stale = _unsealed(ctx, created_ago=3600), _unsealed(ctx, created_ago=3600)
    _journal(ctx, live, written_ago=window)
    _journal(ctx, stale, written_ago=window + 1)
    assert _problems(ctx, live) == []
    assert _problems(ctx, stale) == [
        f"status 'recording' but no live session holds it (its spool journal was last written "
        f"{window + 1:.0f} s ago); not sealed, not verifiable"
    ]


def test_a_row_without_journal_is_being_sealed_only_within_the_window(
    ctx: ServiceContext, frozen: None
) -> None:
    window = _window(ctx)
    just_now = _unsealed(ctx, created_ago=0)
    edge = _unsealed(ctx, created_ago=window)
    too_old = _unsealed(ctx, created_ago=window + 1)
    from_the_future = _unsealed(ctx, created_ago=-5)  # a clock stepped back: not a session starting
    assert _problems(ctx, just_now) == []
    assert _problems(ctx, edge) == []
    expected = [
        "status 'recording' but no live session holds it (it has no spool journal); not sealed, not verifiable"
    ]
    assert _problems(ctx, too_old) == expected
    assert _problems(ctx, from_the_future) == expected


def test_a_call_sealed_without_audio_verifies_without_an_object(ctx: ServiceContext) -> None:
    """An INVITE that failed after the row was begun: interrupted, signed, and nothing stored."""
    recording_id = ctx.recordings.begin(
        CallRecord(started_at=datetime.now(UTC) - timedelta(minutes=1), source="siprec")
    )
    ctx.recordings.mark_interrupted_without_audio(recording_id)
    result = ctx.integrity.verify(ADMIN, [recording_id])[0]
    assert result.problems == []
