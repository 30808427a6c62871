"""Speech analytics at rest: one row of metrics per call, its category hits; the search
filters over them and the block the recording's detail view shows.

Rows are replaced whole when a call is analysed again (new categories, a new
transcript), and dropped with the transcript when the audio is destroyed
(:func:`forget_insights`, called on the deletion paths).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, select
from sqlalchemy.orm import Session

from callvault.db.insight_models import CategoryHit, PhraseCategory, RecordingInsight
from callvault.db.models import Recording
from callvault.errors import InvalidInput
from callvault.speech.phrases import Adherence, Hit
from callvault.speech.sentiment import NEGATIVE, POSITIVE, ScoredSegment, SideSentiment
from callvault.speech.talk_metrics import TalkMetrics

SENTIMENTS = ("positive", "neutral", "negative")
MAX_SECONDS = 10.0**7


def forget_insights(session: Session, recording_ids: Sequence[str]) -> None:
    """Delete the analytics of ``recording_ids`` in the caller's transaction (deletion paths)."""
    ids = list(recording_ids)
    if not ids:
        return
    for table in (CategoryHit, RecordingInsight):
        session.execute(
            delete(table).where(table.recording_id.in_(ids)), execution_options={"synchronize_session": False}
        )


def save_insight(
    session: Session,
    recording_id: str,
    source: str,
    metrics: TalkMetrics,
    sentiment: Sequence[SideSentiment],
    timeline: Sequence[ScoredSegment],
    hits: Sequence[Hit],
    adherence: Sequence[Adherence],
) -> None:
    """Replace the recording's analytics with these (in the caller's transaction)."""
    forget_insights(session, [recording_id])
    sides = {side.speaker: side for side in sentiment}
    session.add(
        RecordingInsight(
            recording_id=recording_id,
            activity_source=source,
            **{k: v for k, v in metrics.to_json().items()},
            agent_sentiment=_rounded(sides["agent"].score) if "agent" in sides else None,
            customer_sentiment=_rounded(sides["customer"].score) if "customer" in sides else None,
            detail={
                "sentiment": {
                    side.speaker: {
                        "score": _rounded(side.score),
                        "label": side.label,
                        "quarters": [_rounded(q) for q in side.quarters],
                    }
                    for side in sentiment
                },
                "timeline": [
                    [s.speaker, round(s.start, 2), round(s.end, 2), round(s.score, 3)] for s in timeline
                ],
                "adherence": [
                    {
                        "category_id": a.category_id,
                        "category": a.name,
                        "within_s": a.within_s,
                        "met": a.met,
                        "at": a.at,
                    }
                    for a in adherence
                ],
            },
            computed_at=datetime.now(UTC),
        )
    )
    session.add_all(
        CategoryHit(
            recording_id=recording_id,
            category_id=hit.category_id,
            speaker=hit.speaker,
            phrase=hit.phrase[:400],
            start_s=hit.start,
            end_s=hit.end,
        )
        for hit in hits
    )


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def insight_view(session: Session, recording_id: str) -> dict[str, Any] | None:
    """The analytics block of a recording's detail view; None before it is analysed."""
    row = session.get(RecordingInsight, recording_id)
    if row is None:
        return None
    names = dict(session.execute(select(PhraseCategory.id, PhraseCategory.name)).tuples().all())
    hits = session.scalars(
        select(CategoryHit).where(CategoryHit.recording_id == recording_id).order_by(CategoryHit.start_s)
    ).all()
    metrics = {name: getattr(row, name) for name in TalkMetrics.__dataclass_fields__}
    return {
        "source": row.activity_source,
        "metrics": metrics,
        "sentiment": row.detail.get("sentiment", {}),
        "sentiment_timeline": row.detail.get("timeline", []),
        "adherence": row.detail.get("adherence", []),
        "categories": sorted({names[h.category_id] for h in hits if h.category_id in names}),
        "hits": [
            {
                "category": names.get(h.category_id),
                "speaker": h.speaker,
                "phrase": h.phrase,
                "start": h.start_s,
                "end": h.end_s,
            }
            for h in hits
        ],
        "computed_at": row.computed_at.isoformat(),
    }


# -- search filters --------------------------------------------------------------------------------

# query field -> (column, comparison)
_RANGE_FILTERS = {
    "min_overtalk": (RecordingInsight.overtalk_s, ">="),
    "max_overtalk": (RecordingInsight.overtalk_s, "<="),
    "min_silence": (RecordingInsight.silence_s, ">="),
    "max_silence": (RecordingInsight.silence_s, "<="),
    "min_hold": (RecordingInsight.hold_s, ">="),
    "min_talk_ratio": (RecordingInsight.agent_talk_ratio, ">="),
    "max_talk_ratio": (RecordingInsight.agent_talk_ratio, "<="),
    "min_monologue": (RecordingInsight.agent_longest_monologue_s, ">="),
}


def validate_insight_filters(values: dict[str, Any]) -> None:
    for name in _RANGE_FILTERS:
        value = values.get(name)
        if value is None:
            continue
        upper = 1.0 if "ratio" in name else MAX_SECONDS
        if not 0 <= value <= upper:
            raise InvalidInput(f"{name} must be between 0 and {upper:g}")
    sentiment = values.get("sentiment")
    if sentiment is not None and sentiment not in SENTIMENTS:
        raise InvalidInput(f"sentiment must be one of {', '.join(SENTIMENTS)}")
    category = values.get("category")
    if category is not None and not 0 < len(category) <= 80:
        raise InvalidInput("category must be a category's name (1-80 characters)")


def insight_conditions(values: dict[str, Any]) -> list[ColumnElement[bool]]:
    """Conditions on ``recordings`` for the analytics filters set in ``values``."""
    wanted: list[ColumnElement[bool]] = []
    for name, (column, op) in _RANGE_FILTERS.items():
        value = values.get(name)
        if value is not None:
            wanted.append(column >= value if op == ">=" else column <= value)
    sentiment = values.get("sentiment")
    if sentiment == "positive":
        wanted.append(RecordingInsight.customer_sentiment >= POSITIVE)
    elif sentiment == "negative":
        wanted.append(RecordingInsight.customer_sentiment <= NEGATIVE)
    elif sentiment == "neutral":
        wanted.append(
            and_(
                RecordingInsight.customer_sentiment > NEGATIVE, RecordingInsight.customer_sentiment < POSITIVE
            )
        )
    conditions: list[ColumnElement[bool]] = []
    if wanted:
        conditions.append(Recording.id.in_(select(RecordingInsight.recording_id).where(*wanted)))
    category = values.get("category")
    if category is not None:
        category_id = select(PhraseCategory.id).where(PhraseCategory.name == category).scalar_subquery()
        conditions.append(
            Recording.id.in_(select(CategoryHit.recording_id).where(CategoryHit.category_id == category_id))
        )
    return conditions
