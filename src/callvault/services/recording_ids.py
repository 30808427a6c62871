"""Recording ids as people type them: the whole id or a unique prefix of it.

A recording id is a 36-character UUID; a terminal table shows its first
:data:`SHORT_ID` characters, and ``recordings show`` takes those back. The
prefix is matched only among the recordings the caller may view (an ambiguity
never hints at a recording hidden from them), and a prefix that names none or
several is written to the access trail as a failed view, like an unknown id.
"""

from __future__ import annotations

from sqlalchemy import select

from callvault.db.catalog import Catalog
from callvault.db.models import Recording
from callvault.errors import InvalidInput, NotFound
from callvault.services.access import Action, Principal, recording_scope
from callvault.services.audit import AccessLog

SHORT_ID = 8
MIN_PREFIX = 4
FULL_ID = 36
_ID_CHARACTERS = frozenset("0123456789abcdef-")  # also keeps LIKE's % and _ out of the pattern


def short_id(recording_id: str) -> str:
    return recording_id[:SHORT_ID]


def resolve_id(catalog: Catalog, access_log: AccessLog, principal: Principal, text: str) -> str:
    """The full id for ``text``; a whole id is returned as it is (the caller's read checks and audits it)."""
    value = text.strip().lower()
    if len(value) == FULL_ID:
        return value
    try:
        return _match(catalog, principal, value, text)
    except NotFound:
        _audit(access_log, principal, value, "not_found")
        raise
    except InvalidInput:
        _audit(access_log, principal, value, "ambiguous" if len(value) >= MIN_PREFIX else "invalid")
        raise


def _match(catalog: Catalog, principal: Principal, value: str, text: str) -> str:
    if len(value) < MIN_PREFIX:
        raise InvalidInput(f"give at least {MIN_PREFIX} characters of the recording id")
    if len(value) > FULL_ID or not set(value) <= _ID_CHARACTERS:
        raise NotFound(f"no recording {text!r}")
    scope = recording_scope(principal, Action.RECORDING_VIEW)
    with catalog.read() as session:
        matches = session.scalars(
            select(Recording.id).where(scope, Recording.id.like(f"{value}%")).order_by(Recording.id).limit(2)
        ).all()
    if not matches:
        raise NotFound(f"no recording {text!r}")
    if len(matches) > 1:
        raise InvalidInput(f"{text!r} matches more than one recording: give more of the id")
    return str(matches[0])


def _audit(access_log: AccessLog, principal: Principal, value: str, outcome: str) -> None:
    """A failed view; what was typed goes to the detail (bounded), the id column holds only ids."""
    access_log.record(principal, "view", None, detail=f"id prefix {value[: FULL_ID + 4]!r}", outcome=outcome)
