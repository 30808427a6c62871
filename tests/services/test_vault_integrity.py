"""Encryption at rest, signed manifests, `verify` and key rotation on the real vault."""

from __future__ import annotations

import math
import os
import stat
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import text

from callvault.errors import InvalidInput, KeyUnavailable, PermissionDenied
from callvault.services.context import ServiceContext
from callvault.services.importer import ImportRequest
from tests.support.audio import stereo_wav, voice
from tests.support.people import ADMIN

RATE = 8000


def _import(ctx: ServiceContext, seconds: float = 3.0, seed: int = 1, **kwargs: object) -> str:
    wav = stereo_wav(voice(seconds, RATE, 120, seed), voice(seconds, RATE, 200, seed + 1), RATE)
    return ctx.importer.import_bytes(ADMIN, wav, ImportRequest(customer="+14155550100", **kwargs))  # type: ignore[arg-type]


def _entropy(data: bytes) -> float:
    counts = Counter(data)
    return -sum(c / len(data) * math.log2(c / len(data)) for c in counts.values())


def test_nothing_in_the_data_dir_is_plaintext_audio(ctx: ServiceContext, data_dir: Path) -> None:
    for seed in range(3):
        _import(ctx, seconds=8, seed=seed * 2)
    objects = [p for p in (data_dir / "vault").rglob("*") if p.is_file()]
    assert len(objects) == 3
    for path in data_dir.rglob("*"):
        if path.is_file():
            content = path.read_bytes()
            assert b"RIFF" not in content and b"OggS" not in content and b"OpusHead" not in content, path
    for path in objects:
        assert _entropy(path.read_bytes()) > 7.9, path
    keyring = data_dir / "keyring.json"
    assert stat.S_IMODE(keyring.stat().st_mode) == 0o600
    assert stat.S_IMODE((data_dir / "signing-key.pem").stat().st_mode) == 0o600


def test_verify_passes_then_names_each_tampered_recording(ctx: ServiceContext) -> None:
    ids = [_import(ctx, seed=s) for s in (1, 3, 5, 7, 9)]
    assert all(r.ok for r in ctx.integrity.verify(ADMIN))
    blob_victim, row_victim, participant_victim, stream_victim, clean = ids

    detail = ctx.search.get(ADMIN, blob_victim)
    object_key = f"recordings/{detail['started_at'][:4]}/{detail['started_at'][5:7]}/{detail['started_at'][8:10]}/{blob_victim}.cvr"
    blob = bytearray(ctx.blobs.get(object_key))
    blob[len(blob) // 2] ^= 0x01
    ctx.blobs.put(object_key, bytes(blob))

    with ctx.catalog.engine.begin() as conn:
        conn.execute(
            text("UPDATE recordings SET duration_seconds = duration_seconds + 1 WHERE id = :id"),
            {"id": row_victim},
        )
        conn.execute(
            text(
                "UPDATE participants SET aor = '+14155550199' WHERE role = 'customer' AND call_id = "
                "(SELECT call_id FROM recordings WHERE id = :id)"
            ),
            {"id": participant_victim},
        )
        conn.execute(
            text("UPDATE streams SET codec = 'PCMA' WHERE recording_id = :id"), {"id": stream_victim}
        )

    results = {r.recording_id: r for r in ctx.integrity.verify(ADMIN)}
    assert not results[blob_victim].ok and "hash mismatch" in " ".join(results[blob_victim].problems)
    for victim in (row_victim, participant_victim, stream_victim):
        assert results[victim].problems == ["catalog rows differ from the signed manifest"], victim
    assert results[clean].ok


def test_flipped_wrapped_key_or_signature_fails_verify(ctx: ServiceContext) -> None:
    first, second = _import(ctx, seed=11), _import(ctx, seed=13)
    with ctx.catalog.engine.begin() as conn:
        for column, victim in (("wrapped_key", first), ("manifest_signature", second)):
            value = bytearray(
                conn.execute(
                    text(f"SELECT {column} FROM recordings WHERE id = :id"), {"id": victim}
                ).scalar_one()
            )
            value[5] ^= 0x80
            conn.execute(
                text(f"UPDATE recordings SET {column} = :v WHERE id = :id"), {"v": bytes(value), "id": victim}
            )
    results = {r.recording_id: r for r in ctx.integrity.verify(ADMIN)}
    assert any("decryption failed" in p for p in results[first].problems)
    assert results[second].problems == ["manifest signature does not verify"]


def test_key_rotation_rewraps_without_touching_audio(ctx: ServiceContext, data_dir: Path) -> None:
    ids = [_import(ctx, seed=s) for s in (21, 23)]
    before = {p: p.read_bytes() for p in (data_dir / "vault").rglob("*.cvr")}
    old_kek = ctx.keys.current_kek_id()
    result = ctx.key_rotation.rotate(ADMIN)
    assert result.rewrapped == 2 and result.new_kek_id != old_kek
    assert old_kek in result.retired
    after = {p: p.read_bytes() for p in (data_dir / "vault").rglob("*.cvr")}
    assert before == after  # audio objects untouched
    assert all(r.ok for r in ctx.integrity.verify(ADMIN))
    audio = ctx.playback.open_audio(ADMIN, ids[0])
    assert audio.read(0, 4) == b"OggS"


def test_destroyed_data_key_makes_audio_unrecoverable(ctx: ServiceContext) -> None:
    from tests.support.people import create_staff

    staff = create_staff(ctx)
    recording_id = _import(ctx, seed=31)
    with pytest.raises(InvalidInput):
        ctx.playback.destroy_audio(staff.principals["carol"], recording_id, reason=" ")
    with pytest.raises(PermissionDenied):
        ctx.playback.destroy_audio(staff.principals["sam"], recording_id, reason="erasure request 42")
    assert ctx.playback.destroy_audio(staff.principals["carol"], recording_id, reason="erasure request 42")
    assert not ctx.playback.destroy_audio(staff.principals["carol"], recording_id, reason="again")
    with pytest.raises(KeyUnavailable):
        ctx.playback.open_audio(ADMIN, recording_id)
    assert list(ctx.blobs.list("")) == []
    # The row stays as signed evidence that the recording existed and when its audio was destroyed.
    assert ctx.integrity.verify(ADMIN)[0].ok
    trail = ctx.access_log.list(ADMIN, recording_id=recording_id)
    assert any(e.action == "destroy_audio" and e.detail == "erasure request 42" for e in trail)


def test_access_events_are_append_only(ctx: ServiceContext) -> None:
    recording_id = _import(ctx, seed=41)
    ctx.search.get(ADMIN, recording_id)
    with pytest.raises(Exception, match="append-only"):
        with ctx.catalog.engine.begin() as conn:
            conn.execute(text("DELETE FROM access_events"))
    with pytest.raises(Exception, match="append-only"):
        with ctx.catalog.engine.begin() as conn:
            conn.execute(text("UPDATE access_events SET username = 'someone-else'"))


def test_keyring_readable_by_others_is_refused(ctx: ServiceContext, data_dir: Path) -> None:
    from callvault.errors import ConfigError
    from callvault.services.context import open_context

    _import(ctx, seed=51)
    os.chmod(data_dir / "keyring.json", 0o644)
    with pytest.raises(ConfigError, match="chmod"):
        other = open_context(ctx.settings)
        other.keys.current_kek_id()


def test_sealed_recording_flipped_back_to_recording_fails_verify(ctx: ServiceContext) -> None:
    edited, emptied = _import(ctx, seed=61), _import(ctx, seed=63)
    with ctx.catalog.engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE recordings SET status = 'recording', duration_seconds = duration_seconds + 30, "
                "customer_number = '+14155550999' WHERE id = :id"
            ),
            {"id": edited},
        )
        # Hiding the evidence too: no manifest, no signature.
        conn.execute(
            text(
                "UPDATE recordings SET status = 'recording', manifest = NULL, manifest_signature = NULL "
                "WHERE id = :id"
            ),
            {"id": emptied},
        )
    results = {r.recording_id: r for r in ctx.integrity.verify(ADMIN)}
    assert results[edited].problems == ["catalog rows differ from the signed manifest"]
    assert "manifest or signature missing" in results[emptied].problems
    assert any("differs from its seal log entry" in p for p in results[emptied].problems)


def test_unsealed_row_needs_a_live_session(ctx: ServiceContext) -> None:
    from datetime import UTC, datetime, timedelta

    from callvault.services.call_record import CallRecord
    from callvault.storage.spool import spool_path

    started = datetime.now(UTC)
    live = ctx.recordings.begin(CallRecord(started_at=started, source="siprec"))
    stale = ctx.recordings.begin(CallRecord(started_at=started, source="siprec"))
    assert all(r.ok for r in ctx.integrity.verify(ADMIN))  # just created: a session may be starting
    hour_ago = datetime.now(UTC) - timedelta(hours=1)
    with ctx.catalog.engine.begin() as conn:
        conn.execute(text("UPDATE recordings SET created_at = :at"), {"at": hour_ago})
    for recording_id in (live, stale):
        journal = spool_path(ctx.settings.spool_dir, recording_id)
        journal.parent.mkdir(parents=True, exist_ok=True)
        journal.write_bytes(b"")
    old = hour_ago.timestamp()
    os.utime(spool_path(ctx.settings.spool_dir, stale), (old, old))
    results = {r.recording_id: r for r in ctx.integrity.verify(ADMIN)}
    assert results[live].ok
    assert len(results[stale].problems) == 1
    assert "status 'recording' but no live session holds it" in results[stale].problems[0]
    spool_path(ctx.settings.spool_dir, live).unlink()
    assert "no spool journal" in ctx.integrity.verify(ADMIN, [live])[0].problems[0]


def _set(ctx: ServiceContext, recording_id: str, assignments: str, **values: object) -> None:
    with ctx.catalog.engine.begin() as conn:
        conn.execute(
            text(f"UPDATE recordings SET {assignments} WHERE id = :id"), {"id": recording_id, **values}
        )


def test_each_problem_is_named_in_its_own_words(ctx: ServiceContext) -> None:
    """`verify` names what is wrong exactly, so an operator (and a script) can tell the cases apart."""
    blob, audio, key, incomplete, not_json, not_object = (
        _import(ctx, seed=s) for s in (21, 23, 25, 27, 29, 31)
    )
    detail = ctx.search.get(ADMIN, blob)
    started = detail["started_at"]
    object_key = f"recordings/{started[:4]}/{started[5:7]}/{started[8:10]}/{blob}.cvr"
    damaged = bytearray(ctx.blobs.get(object_key))
    damaged[-1] ^= 0x01  # the last chunk's tag: the object's hash changes, decryption fails
    ctx.blobs.put(object_key, bytes(damaged))
    _set(ctx, audio, "audio_sha256 = :h", h="0" * 64)
    _set(ctx, key, "wrapped_key = NULL")  # the KEK id stays: nothing says the key was destroyed
    _set(ctx, incomplete, "status = 'incomplete', object_key = NULL")
    _set(ctx, not_json, "manifest = :m", m="{not json")
    _set(ctx, not_object, "manifest = :m", m="[]")

    results = {r.recording_id: r.problems for r in ctx.integrity.verify(ADMIN)}
    assert results[blob][0] == "stored object hash mismatch"
    assert results[blob][1].startswith("decryption failed: ")
    assert "audio hash mismatch" in results[audio]
    assert "no wrapped data key, and the key is not recorded as destroyed" in results[key]
    assert "no stored object" in results[incomplete]  # an incomplete call has audio too
    # The seal log, kept apart from the rows, also sees the manifest replaced.
    assert results[not_json][0] == "signed manifest is not JSON"
    assert results[not_json][1].startswith("manifest differs from its seal log entry")
    # Valid JSON that is not an object is a problem like any other, not a crash of the run.
    assert results[not_object][:2] == [
        "catalog rows differ from the signed manifest",
        "manifest signature does not verify",
    ]
