"""The seal log: `verify --all` names missing, inserted and rolled-back recordings."""

from __future__ import annotations

import shutil
import sqlite3
import threading
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import select, text

from callvault.crypto.signing import ManifestSigner, canonical_json
from callvault.db.catalog import _MIGRATIONS
from callvault.db.models import Call, Recording, SealCheckpoint, SealLogEntry
from callvault.services.context import ServiceContext, open_context
from callvault.services.importer import ImportRequest
from callvault.services.integrity import VaultReport
from callvault.services.manifest import build_manifest
from tests.support.audio import stereo_wav, voice
from tests.support.people import ADMIN

RATE = 8000


def _import(ctx: ServiceContext, seed: int, seconds: float = 1.0) -> str:
    wav = stereo_wav(voice(seconds, RATE, 120, seed), voice(seconds, RATE, 200, seed + 1), RATE)
    return ctx.importer.import_bytes(ADMIN, wav, ImportRequest(customer="+14155550100"))


def _object_key(ctx: ServiceContext, recording_id: str) -> str:
    with ctx.catalog.read() as session:
        recording = session.get(Recording, recording_id)
        assert recording is not None and recording.object_key is not None
        return recording.object_key


def _lines(report: VaultReport) -> list[str]:
    return [p.line() for p in report.log_problems]


def _delete_recording_rows(ctx: ServiceContext, recording_id: str) -> None:
    with ctx.catalog.engine.begin() as conn:
        call_id = conn.execute(
            text("SELECT call_id FROM recordings WHERE id = :id"), {"id": recording_id}
        ).scalar_one()
        for table in ("recording_tags", "recording_events", "streams"):
            conn.execute(text(f"DELETE FROM {table} WHERE recording_id = :id"), {"id": recording_id})
        conn.execute(text("DELETE FROM recordings WHERE id = :id"), {"id": recording_id})
        for table in ("call_identifiers", "participants"):
            conn.execute(text(f"DELETE FROM {table} WHERE call_id = :id"), {"id": call_id})
        conn.execute(text("DELETE FROM calls WHERE id = :id"), {"id": call_id})


def test_clean_vault_has_a_linear_signed_log(ctx: ServiceContext) -> None:
    ids = [_import(ctx, seed) for seed in (1, 3)]
    ctx.recordings.destroy_audio_key(ids[0])  # a re-signed manifest is appended too
    report = ctx.integrity.verify_all(ADMIN)
    assert report.ok, (_lines(report), [r.problems for r in report.results])
    with ctx.catalog.read() as session:
        entries = session.scalars(select(SealLogEntry).order_by(SealLogEntry.seq)).all()
        checkpoints = session.scalars(select(SealCheckpoint.seq).order_by(SealCheckpoint.seq)).all()
    assert [e.seq for e in entries] == [1, 2, 3] == list(checkpoints)
    assert [e.recording_id for e in entries] == [ids[0], ids[1], ids[0]]
    assert all(b.prev_hash == a.entry_hash for a, b in zip(entries, entries[1:], strict=False))
    mirrored = ctx.seal_log.read_mirror()
    assert mirrored is not None and (mirrored.seq, mirrored.head) == (3, entries[-1].entry_hash)


def test_deleted_recording_rows_and_object_are_named_missing(ctx: ServiceContext) -> None:
    keep, victim = _import(ctx, 1), _import(ctx, 3)
    object_key = _object_key(ctx, victim)
    _delete_recording_rows(ctx, victim)
    ctx.blobs.delete(object_key)
    report = ctx.integrity.verify_all(ADMIN)
    assert [r.recording_id for r in report.results] == [keep] and report.results[0].ok
    assert len(report.log_problems) == 1, _lines(report)
    problem = report.log_problems[0]
    assert (problem.kind, problem.subject) == ("missing", victim)


def test_object_deleted_alone_is_named(ctx: ServiceContext) -> None:
    victim = _import(ctx, 5)
    ctx.blobs.delete(_object_key(ctx, victim))
    report = ctx.integrity.verify_all(ADMIN)
    [problem] = report.results[0].problems
    assert problem.startswith("stored object unreadable") and problem.endswith("not found")


def test_forged_row_signed_by_another_key_is_named_inserted(ctx: ServiceContext, tmp_path: Path) -> None:
    genuine = _import(ctx, 7)
    foreign = ManifestSigner(tmp_path / "elsewhere" / "signing-key.pem")
    forged_id = "f0f0f0f0-0000-4000-8000-000000000001"
    with ctx.catalog.write() as session:
        original = session.get(Recording, genuine)
        assert original is not None
        call = Call(
            id="f0f0f0f0-0000-4000-8000-0000000000ca", started_at=original.started_at, source="import"
        )
        session.add(call)
        forged = Recording(
            id=forged_id,
            call_id=call.id,
            status="complete",
            started_at=original.started_at,
            format=original.format,
            mixed=False,
            duration_seconds=42.0,
            object_key=original.object_key,
            object_sha256=original.object_sha256,
            audio_sha256=original.audio_sha256,
            created_at=original.created_at,
            finalized_at=original.finalized_at,
            signing_key_id=foreign.key_id,
        )
        session.add(forged)
        session.flush()
        forged.manifest = canonical_json(build_manifest(session, forged)).decode()
        forged.manifest_signature = foreign.sign(forged.manifest.encode())
    report = ctx.integrity.verify_all(ADMIN)
    results = {r.recording_id: r for r in report.results}
    assert results[genuine].ok
    problems = " | ".join(results[forged_id].problems)
    assert (
        "inserted" in problems and f"signed by key {foreign.key_id}, which this vault never had" in problems
    )


def test_entry_appended_without_the_signing_key_is_unsigned(ctx: ServiceContext) -> None:
    from callvault.db.seal_chain import entry_hash

    _import(ctx, 9)
    with ctx.catalog.write() as session:
        head = session.scalars(select(SealLogEntry).order_by(SealLogEntry.seq.desc())).first()
        assert head is not None
        at = head.at
        digest = "ab" * 32
        session.add(
            SealLogEntry(
                seq=head.seq + 1,
                recording_id="made-up",
                manifest_sha256=digest,
                prev_hash=head.entry_hash,
                entry_hash=entry_hash(head.seq + 1, "made-up", digest, head.entry_hash, at),
                at=at,
            )
        )
    lines = _lines(ctx.integrity.verify_all(ADMIN))
    assert "unsigned 2: entry has no signed checkpoint (appended without the signing key?)" in lines
    assert any(line.startswith("missing made-up:") for line in lines)


@pytest.mark.parametrize("table", ["seal_log", "seal_checkpoints"])
def test_seal_log_tables_are_append_only(ctx: ServiceContext, table: str) -> None:
    _import(ctx, 11)
    for statement in (f"DELETE FROM {table}", f"UPDATE {table} SET seq = seq + 10"):
        with pytest.raises(Exception, match="append-only"):
            with ctx.catalog.engine.begin() as conn:
                conn.execute(text(statement))


def _roll_back_catalog(ctx: ServiceContext, backup: Path | None, tail: list[str]) -> ServiceContext:
    """Restore the catalog to an older state: the SQLite file from a copy, PostgreSQL by deleting rows."""
    if backup is not None:
        ctx.close()
        database = Path(ctx.settings.resolved_database_url.removeprefix("sqlite:///"))
        for suffix in ("-wal", "-shm"):
            Path(f"{database}{suffix}").unlink(missing_ok=True)
        shutil.copyfile(backup, database)
        return open_context(ctx.settings)
    with ctx.catalog.engine.begin() as conn:
        for table in ("seal_log", "seal_checkpoints"):
            conn.execute(text(f"ALTER TABLE {table} DISABLE TRIGGER {table}_append_only"))
        for recording_id in tail:
            conn.execute(text("DELETE FROM seal_log WHERE recording_id = :id"), {"id": recording_id})
        conn.execute(text("DELETE FROM seal_checkpoints WHERE seq > (SELECT max(seq) FROM seal_log)"))
        for table in ("seal_log", "seal_checkpoints"):
            conn.execute(text(f"ALTER TABLE {table} ENABLE TRIGGER {table}_append_only"))
    for recording_id in tail:
        _delete_recording_rows(ctx, recording_id)
    return ctx


def test_catalog_restored_from_older_backup_is_rolled_back(ctx: ServiceContext, tmp_path: Path) -> None:
    _import(ctx, 13)
    backup: Path | None = None
    if ctx.catalog.is_sqlite:
        backup = tmp_path / "catalog-backup.sqlite3"
        source = sqlite3.connect(ctx.settings.resolved_database_url.removeprefix("sqlite:///"))
        with sqlite3.connect(backup) as target:
            source.backup(target)
        source.close()
    later = _import(ctx, 15)
    assert ctx.integrity.verify_all(ADMIN).ok
    ctx = _roll_back_catalog(ctx, backup, [later])
    try:
        report = ctx.integrity.verify_all(ADMIN)
        assert all(r.ok for r in report.results)  # each remaining recording is fine on its own
        assert [(p.kind, p.subject) for p in report.log_problems] == [("rolled back", "")]
        assert "ends at seq 1 but the checkpoint outside the catalog" in report.log_problems[0].detail
        # Sealing on after the rollback must not overwrite the evidence outside the catalog.
        _import(ctx, 17)
        _import(ctx, 19)
        lines = _lines(ctx.integrity.verify_all(ADMIN))
        assert len(lines) == 1 and "entry 2 differs from the checkpoint outside the catalog" in lines[0]
    finally:
        ctx.close()


def test_deleted_or_damaged_outside_checkpoint_is_reported(ctx: ServiceContext) -> None:
    _import(ctx, 21)
    ctx.seal_log.flush()  # the mirror is written in the background after the commit
    mirror = ctx.seal_log.mirror_path
    good = mirror.read_bytes()
    mirror.write_bytes(good[: len(good) // 2])  # torn
    lines = _lines(ctx.integrity.verify_all(ADMIN))
    assert len(lines) == 1 and lines[0].startswith(
        "rolled back: cannot rule out a rollback: seal log checkpoint"
    )
    mirror.write_bytes(good.replace(b'"seq": 1', b'"seq": 7'))  # claims more than was signed
    lines = _lines(ctx.integrity.verify_all(ADMIN))
    assert len(lines) == 1 and "is not validly signed" in lines[0]
    mirror.unlink()
    lines = _lines(ctx.integrity.verify_all(ADMIN))
    assert len(lines) == 1 and lines[0].startswith("rolled back: no checkpoint outside the catalog")


def test_concurrent_seals_keep_the_chain_linear(ctx: ServiceContext) -> None:
    # Two service contexts stand for two processes (server and CLI): nothing in Python serialises them.
    other = open_context(ctx.settings)
    errors: list[BaseException] = []

    def seal(seed: int) -> None:
        try:
            for n in range(2):
                _import(ctx if seed % 2 else other, seed * 10 + n, seconds=0.5)
        except BaseException as exc:  # reported below with the failing thread's exception
            errors.append(exc)

    threads = [threading.Thread(target=seal, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    other.close()
    assert not errors, errors
    report = ctx.integrity.verify_all(ADMIN)
    assert report.ok, _lines(report)
    with ctx.catalog.read() as session:
        assert list(session.scalars(select(SealLogEntry.seq).order_by(SealLogEntry.seq))) == list(range(1, 9))


def test_recordings_sealed_before_the_log_are_back_filled_in_seal_order(ctx: ServiceContext) -> None:
    first, second = _import(ctx, 23), _import(ctx, 25)
    # The first recording gets a manifest as signed before manifests named their key.
    with ctx.catalog.write() as session:
        recording = session.get(Recording, first)
        assert recording is not None
        manifest = build_manifest(session, recording)
        del manifest["signing_key_id"]
        recording.manifest = canonical_json(manifest).decode()
        recording.manifest_signature = ctx.signer.sign(recording.manifest.encode())
    # Back to the schema before the seal log existed (what an upgraded installation starts from).
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    with ctx.catalog.engine.begin() as connection:
        config.attributes["connection"] = connection
        before_log = ScriptDirectory.from_config(config).get_revision("integrity_0002").down_revision
        assert isinstance(before_log, str)
        command.downgrade(config, before_log)
    ctx.seal_log.flush()
    ctx.seal_log.mirror_path.unlink()
    ctx.close()
    upgraded = open_context(ctx.settings)
    try:
        report = upgraded.integrity.verify_all(ADMIN)
        assert report.ok, (_lines(report), [r.problems for r in report.results])
        with upgraded.catalog.read() as session:
            logged = [
                e.recording_id for e in session.scalars(select(SealLogEntry).order_by(SealLogEntry.seq))
            ]
            checkpoints = list(session.scalars(select(SealCheckpoint.seq)))
        assert logged == [first, second] and checkpoints == [2]
        third = _import(upgraded, 27)
        assert upgraded.integrity.verify_all(ADMIN).ok
        assert upgraded.search.get(ADMIN, third)["id"] == third
    finally:
        upgraded.close()
