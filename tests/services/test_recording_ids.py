"""Short recording ids: a unique prefix names one recording the caller may view; an unknown,
ambiguous or malformed one is refused precisely and audited as a failed view, like an unknown id."""

from __future__ import annotations

import itertools
import uuid

import pytest
from sqlalchemy import select

from callvault.db.models import AccessEvent
from callvault.errors import InvalidInput, NotFound
from callvault.services import recordings as recordings_module
from callvault.services.context import ServiceContext
from tests.support.people import ADMIN, create_staff
from tests.support.vault_calls import seal_call

SHARED = "abcd0000"


def _failed_views(ctx: ServiceContext) -> list[tuple[str | None, str | None, str | None, str]]:
    with ctx.catalog.read() as session:
        rows = session.scalars(
            select(AccessEvent).where(AccessEvent.action == "view").order_by(AccessEvent.id)
        ).all()
        return [(r.username, r.recording_id, r.detail, r.outcome) for r in rows if r.outcome != "ok"]


@pytest.fixture
def two_sharing_a_prefix(ctx: ServiceContext, monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    """alice's and bob's recordings, whose ids share their first 8 characters."""
    create_staff(ctx)
    counter = itertools.count(1)
    monkeypatch.setattr(
        recordings_module.uuid,
        "uuid4",
        lambda: uuid.UUID(f"{SHARED}-{next(counter):04x}-4000-8000-000000000000"),
    )
    alices = seal_call(ctx, agent_aor="sip:1001@pbx.example")
    bobs = seal_call(ctx, agent_aor="sip:1002@pbx.example")
    monkeypatch.undo()
    assert alices[:8] == bobs[:8] == SHARED and alices != bobs
    return alices, bobs


def test_unique_prefix_names_the_recording_and_the_view_is_audited_with_the_full_id(
    ctx: ServiceContext,
) -> None:
    recording_id = seal_call(ctx)
    for typed in (recording_id[:8], recording_id[:4].upper(), f"  {recording_id[:12]} ", recording_id):
        assert ctx.search.resolve_id(ADMIN, typed) == recording_id
    detail = ctx.search.get(ADMIN, ctx.search.resolve_id(ADMIN, recording_id[:8]))
    assert detail["id"] == recording_id
    with ctx.catalog.read() as session:
        views = session.scalars(select(AccessEvent).where(AccessEvent.action == "view")).all()
    assert [(v.recording_id, v.outcome) for v in views] == [(recording_id, "ok")]


def test_ambiguous_unknown_and_malformed_prefixes_are_refused_and_audited(
    ctx: ServiceContext, two_sharing_a_prefix: tuple[str, str]
) -> None:
    alices, _ = two_sharing_a_prefix
    with pytest.raises(InvalidInput, match="matches more than one recording"):
        ctx.search.resolve_id(ADMIN, SHARED)
    assert ctx.search.resolve_id(ADMIN, alices[:13]) == alices  # more of the id settles it
    unknown = "ffff" if not SHARED.startswith("ffff") else "0000"
    with pytest.raises(NotFound, match="no recording"):
        ctx.search.resolve_id(ADMIN, unknown)
    with pytest.raises(NotFound, match="no recording"):
        ctx.search.resolve_id(ADMIN, "abcd%")  # LIKE's wildcards are not id characters
    with pytest.raises(NotFound, match="no recording"):
        ctx.search.resolve_id(ADMIN, "a" * 400)
    with pytest.raises(InvalidInput, match="at least 4 characters"):
        ctx.search.resolve_id(ADMIN, "abc")
    assert _failed_views(ctx) == [
        ("test-admin", None, f"id prefix {SHARED!r}", "ambiguous"),
        ("test-admin", None, f"id prefix {unknown!r}", "not_found"),
        ("test-admin", None, "id prefix 'abcd%'", "not_found"),
        ("test-admin", None, f"id prefix {'a' * 40!r}", "not_found"),
        ("test-admin", None, "id prefix 'abc'", "invalid"),
    ]


def test_prefix_matches_only_what_the_caller_may_view(
    ctx: ServiceContext, two_sharing_a_prefix: tuple[str, str]
) -> None:
    alices, bobs = two_sharing_a_prefix
    bob = ctx.users.authenticate_token(ctx.users.create_token(ADMIN, "bob", "prefix"))
    # alice's recording is invisible to bob: the shared prefix is his, not ambiguous, and
    # nothing hints that another recording shares it.
    assert ctx.search.resolve_id(bob, SHARED) == bobs
    with pytest.raises(NotFound):
        ctx.search.resolve_id(bob, alices[:13])
    assert _failed_views(ctx)[-1] == ("bob", None, f"id prefix {alices[:13]!r}", "not_found")
