"""Phrase categories: defined through the API, spotted in every analysed call.

QA leads (roles that manage QA forms) create, change and delete them; anyone
who may search recordings may list them (to filter by one). A category is a
name, its phrases, the side that must say them (agent, customer, any) and,
for a script requirement, ``within_s``: the agent must say one of its phrases
within that many seconds of the call's start. Calls analysed after a change
use the new definition; every change is audited.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError as DbIntegrityError

from callvault.db.catalog import Catalog
from callvault.db.insight_models import PhraseCategory
from callvault.errors import Conflict, InvalidInput, NotFound
from callvault.services.access import Action, Principal, require
from callvault.services.audit import AccessLog
from callvault.speech.phrases import PARTIES, Category, validate_phrase

MAX_PHRASES = 200
MAX_WITHIN_S = 24 * 3600.0
_FIELDS = frozenset({"name", "phrases", "speaker", "within_s"})


class PhraseCategories:
    def __init__(self, catalog: Catalog, access_log: AccessLog) -> None:
        self._catalog = catalog
        self._log = access_log

    def list_all(self, principal: Principal) -> list[dict[str, Any]]:
        require(principal, Action.RECORDING_SEARCH)
        with self._catalog.read() as session:
            rows = session.scalars(select(PhraseCategory).order_by(PhraseCategory.name)).all()
            return [_view(row) for row in rows]

    def get(self, principal: Principal, category_id: int) -> dict[str, Any]:
        require(principal, Action.RECORDING_SEARCH)
        with self._catalog.read() as session:
            return _view(_found(session.get(PhraseCategory, category_id), category_id))

    def create(self, principal: Principal, body: object) -> dict[str, Any]:
        require(principal, Action.QA_FORM_MANAGE)
        fields = _parse(body, partial=False)
        now = datetime.now(UTC)
        try:
            with self._catalog.write() as session:
                row = PhraseCategory(**fields, created_by=principal.username, created_at=now, updated_at=now)
                session.add(row)
                session.flush()
                view = _view(row)
        except DbIntegrityError:
            raise Conflict(f"a category named {fields['name']!r} already exists") from None
        self._log.record(principal, "category_create", detail=f"category {view['id']} {view['name']}")
        return view

    def update(self, principal: Principal, category_id: int, body: object) -> dict[str, Any]:
        require(principal, Action.QA_FORM_MANAGE)
        fields = _parse(body, partial=True)
        try:
            with self._catalog.write() as session:
                row = _found(session.get(PhraseCategory, category_id), category_id)
                for name, value in fields.items():
                    setattr(row, name, value)
                row.updated_at = datetime.now(UTC)
                session.flush()
                view = _view(row)
        except DbIntegrityError:
            raise Conflict(f"a category named {fields.get('name')!r} already exists") from None
        self._log.record(principal, "category_update", detail=f"category {category_id} {view['name']}")
        return view

    def delete(self, principal: Principal, category_id: int) -> None:
        require(principal, Action.QA_FORM_MANAGE)
        with self._catalog.write() as session:
            row = _found(session.get(PhraseCategory, category_id), category_id)
            name = row.name
            session.delete(row)  # its hits go with it (ON DELETE CASCADE)
        self._log.record(principal, "category_delete", detail=f"category {category_id} {name}")

    def definitions(self) -> list[Category]:
        """Every category as the spotter takes it (internal: the analysis service)."""
        with self._catalog.read() as session:
            rows = session.scalars(select(PhraseCategory).order_by(PhraseCategory.id)).all()
            return [
                Category(row.id, row.name, tuple(row.phrases), row.speaker, row.within_s)  # type: ignore[arg-type]
                for row in rows
            ]


def _found(row: PhraseCategory | None, category_id: int) -> PhraseCategory:
    if row is None:
        raise NotFound(f"no category {category_id}")
    return row


def _view(row: PhraseCategory) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "speaker": row.speaker,
        "phrases": list(row.phrases),
        "within_s": row.within_s,
        "required": row.within_s is not None,
        "created_by": row.created_by,
        "updated_at": row.updated_at.isoformat(),
    }


def _parse(body: object, *, partial: bool) -> dict[str, Any]:
    if not isinstance(body, Mapping):
        raise InvalidInput("expected a JSON object")
    unknown = sorted(set(body) - _FIELDS)
    if unknown:
        raise InvalidInput(
            f"unknown fields: {', '.join(map(str, unknown))}; known: {', '.join(sorted(_FIELDS))}"
        )
    fields: dict[str, Any] = {}
    if "name" in body or not partial:
        name = body.get("name")
        if not isinstance(name, str) or not 0 < len(name.strip()) <= 80:
            raise InvalidInput("name: a string of 1-80 characters")
        fields["name"] = name.strip()
    if "phrases" in body or not partial:
        fields["phrases"] = _phrases(body.get("phrases"))
    if "speaker" in body or not partial:
        speaker = body.get("speaker", "any")
        if speaker not in PARTIES:
            raise InvalidInput(f"speaker: one of {', '.join(PARTIES)}")
        fields["speaker"] = speaker
    if "within_s" in body:
        fields["within_s"] = _within(body["within_s"])
    return fields


def _phrases(value: object) -> list[str]:
    if not isinstance(value, list) or not value:
        raise InvalidInput("phrases: a non-empty list of strings")
    if len(value) > MAX_PHRASES:
        raise InvalidInput(f"phrases: at most {MAX_PHRASES}")
    phrases = []
    for phrase in value:
        if not isinstance(phrase, str) or len(phrase) > 400:
            raise InvalidInput("phrases: each a string of at most 400 characters")
        try:
            phrases.append(validate_phrase(phrase))
        except ValueError as exc:
            raise InvalidInput(f"phrases: {exc}") from None
    return phrases


def _within(value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidInput("within_s: a number of seconds, or null")
    if not 0 < value <= MAX_WITHIN_S:
        raise InvalidInput(f"within_s: between 0 and {MAX_WITHIN_S:g} seconds")
    return float(value)
