"""What a sampling rule's ``criteria`` may ask of a call, checked on the way in and turned into SQL.

The call itself: ``min_duration`` / ``max_duration`` (seconds), ``statuses``
(complete, incomplete, interrupted), ``tags`` (all of them). What speech
analytics found in it (:mod:`callvault.services.insight_store`):

- ``categories``: phrase categories by name, any of them hit in the call;
- ``min_overtalk``: at least this many seconds of both sides talking at once;
- ``max_customer_sentiment``: the customer's sentiment over the call (-1 … +1)
  at or below this;
- ``customer_ends_negative``: ``true`` for calls whose customer's sentiment in
  the last quarter of the call is negative (a call that ended badly, whatever
  its start).

A call not analysed yet matches no analytics criterion; a daily run picks it
up once it is (a week's rule keeps its room until filled). Categories are
matched by their name when the rule runs: one renamed or deleted since no
longer matches (the rule's page shows the names it asks for).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from callvault.db.insight_models import CategoryHit, PhraseCategory, RecordingInsight
from callvault.db.models import Recording, RecordingTag
from callvault.errors import InvalidInput
from callvault.services.recordings import FINAL_STATUSES
from callvault.speech.sentiment import NEGATIVE, QUARTERS

CRITERIA = frozenset(
    {
        "min_duration",
        "max_duration",
        "statuses",
        "tags",
        "categories",
        "min_overtalk",
        "max_customer_sentiment",
        "customer_ends_negative",
    }
)
MAX_LIST = 20
MAX_SECONDS = 86400


def parse_criteria(session: Session, raw: Any) -> dict[str, Any]:
    """The criteria as stored, or InvalidInput naming the field (categories must exist)."""
    if raw is None:
        return {}
    if not isinstance(raw, dict) or not set(raw) <= CRITERIA:
        raise InvalidInput(f"criteria may have {', '.join(sorted(CRITERIA))}")
    out: dict[str, Any] = {}
    for name in ("min_duration", "max_duration", "min_overtalk"):
        value = _seconds(raw.get(name), name)
        if value is not None:
            out[name] = value
    if "min_duration" in out and "max_duration" in out and out["min_duration"] > out["max_duration"]:
        raise InvalidInput("criteria.min_duration is above criteria.max_duration")
    statuses = raw.get("statuses")
    if statuses is not None:
        if not isinstance(statuses, list) or not statuses or not set(statuses) <= set(FINAL_STATUSES):
            raise InvalidInput(f"criteria.statuses must be a list of {', '.join(FINAL_STATUSES)}")
        out["statuses"] = sorted(set(statuses))
    for name, limit in (("tags", 64), ("categories", 80)):
        names = _names(raw.get(name), name, limit)
        if names is not None:
            out[name] = names
    if "categories" in out:
        known = set(
            session.scalars(select(PhraseCategory.name).where(PhraseCategory.name.in_(out["categories"])))
        )
        missing = [n for n in out["categories"] if n not in known]
        if missing:
            raise InvalidInput(f"criteria.categories: no phrase category named {missing[0]!r}")
    sentiment = raw.get("max_customer_sentiment")
    if sentiment is not None:
        if isinstance(sentiment, bool) or not isinstance(sentiment, int | float) or not -1 <= sentiment <= 1:
            raise InvalidInput("criteria.max_customer_sentiment must be a number from -1 to 1")
        out["max_customer_sentiment"] = float(sentiment)
    ends = raw.get("customer_ends_negative")
    if ends is not None:
        if not isinstance(ends, bool):
            raise InvalidInput("criteria.customer_ends_negative must be true or false")
        if ends:
            out["customer_ends_negative"] = True
    return out


def criteria_conditions(criteria: dict[str, Any]) -> list[ColumnElement[bool]]:
    """Conditions on ``recordings`` for the criteria (statuses excepted: the caller's default)."""
    parts: list[ColumnElement[bool]] = []
    if criteria.get("min_duration") is not None:
        parts.append(Recording.duration_seconds >= criteria["min_duration"])
    if criteria.get("max_duration") is not None:
        parts.append(Recording.duration_seconds <= criteria["max_duration"])
    for tag in criteria.get("tags") or []:
        parts.append(Recording.id.in_(select(RecordingTag.recording_id).where(RecordingTag.tag == tag)))
    if criteria.get("categories"):
        hit = (
            select(CategoryHit.recording_id)
            .join(PhraseCategory, PhraseCategory.id == CategoryHit.category_id)
            .where(PhraseCategory.name.in_(criteria["categories"]))
        )
        parts.append(Recording.id.in_(hit))
    analysed: list[ColumnElement[bool]] = []
    if criteria.get("min_overtalk") is not None:
        analysed.append(RecordingInsight.overtalk_s >= criteria["min_overtalk"])
    if criteria.get("max_customer_sentiment") is not None:
        analysed.append(RecordingInsight.customer_sentiment <= criteria["max_customer_sentiment"])
    if criteria.get("customer_ends_negative"):
        # detail.sentiment.customer.quarters[last]: a quarter the customer said nothing in is null.
        last = RecordingInsight.detail[("sentiment", "customer", "quarters", QUARTERS - 1)].as_float()
        analysed.append(last <= NEGATIVE)
    if analysed:
        parts.append(Recording.id.in_(select(RecordingInsight.recording_id).where(*analysed)))
    return parts


def _seconds(value: Any, name: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= MAX_SECONDS:
        raise InvalidInput(f"criteria.{name} must be seconds from 0 to {MAX_SECONDS}")
    return float(value)


def _names(value: Any, name: str, limit: int) -> list[str] | None:
    if value is None:
        return None
    if (
        not isinstance(value, list)
        or len(value) > MAX_LIST
        or not all(isinstance(v, str) and 0 < len(v.strip()) <= limit for v in value)
    ):
        raise InvalidInput(
            f"criteria.{name} must be a list of at most {MAX_LIST} names of up to {limit} characters"
        )
    return sorted({v.strip() for v in value}) or None
