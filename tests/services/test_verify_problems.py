"""`verify` names each kind of damage, checks only what it is asked to, and leaves a trail."""

from __future__ import annotations

from sqlalchemy import text

from callvault.db.models import Recording
from callvault.services.context import ServiceContext
from callvault.services.importer import ImportRequest
from callvault.services.integrity import VerifyResult
from tests.support.audio import stereo_wav, voice
from tests.support.people import ADMIN


def _import(ctx: ServiceContext, seed: int) -> str:
    wav = stereo_wav(voice(1, 8000, 120, seed), voice(1, 8000, 200, seed + 1), 8000)
    return ctx.importer.import_bytes(ADMIN, wav, ImportRequest())


def test_each_problem_is_named(ctx: ServiceContext) -> None:
    unsigned, vanished, unstored, clean = (_import(ctx, seed) for seed in (1, 3, 5, 7))
    with ctx.catalog.read() as session:
        vanished_key = session.get(Recording, vanished).object_key  # type: ignore[union-attr]
    assert vanished_key
    ctx.blobs.delete(vanished_key)
    with ctx.catalog.engine.begin() as conn:
        conn.execute(text("UPDATE recordings SET manifest_signature = NULL WHERE id = :id"), {"id": unsigned})
        conn.execute(text("UPDATE recordings SET object_key = NULL WHERE id = :id"), {"id": unstored})
    seen: list[VerifyResult] = []
    results = {r.recording_id: r for r in ctx.integrity.verify(ADMIN, progress=seen.append)}
    assert [r.recording_id for r in seen] == list(results)  # progress sees every result
    assert results[unsigned].problems == ["manifest or signature missing"]
    assert results[vanished].problems == [f"stored object unreadable: object {vanished_key!r} not found"]
    assert "no stored object" in results[unstored].problems
    assert results[clean].ok
    trail = ctx.access_log.list(ADMIN)
    assert (trail[0].action, trail[0].detail) == ("verify", "4 checked, 3 failed")


def test_only_the_requested_recordings_are_checked(ctx: ServiceContext) -> None:
    first, second = _import(ctx, 1), _import(ctx, 3)
    results = ctx.integrity.verify(ADMIN, [second])
    assert [r.recording_id for r in results] == [second]
    assert ctx.integrity.verify(ADMIN, []) == []
    assert set(ctx.integrity.recording_ids()) == {first, second}
