"""Key files of a vault that holds recordings, and signing key rotation."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from callvault.db.models import Recording
from callvault.errors import ConfigError
from callvault.services.context import ServiceContext, open_context
from callvault.services.importer import ImportRequest
from callvault.settings import Settings
from tests.support.audio import stereo_wav, voice
from tests.support.people import ADMIN

RATE = 8000


def _import(ctx: ServiceContext, seed: int) -> str:
    wav = stereo_wav(voice(1.0, RATE, 120, seed), voice(1.0, RATE, 200, seed + 1), RATE)
    return ctx.importer.import_bytes(ADMIN, wav, ImportRequest(customer="+14155550100"))


def _signing_key_id(ctx: ServiceContext, recording_id: str) -> str:
    with ctx.catalog.read() as session:
        recording = session.get(Recording, recording_id)
        assert recording is not None and recording.manifest is not None
        manifest = json.loads(recording.manifest)
    assert manifest["signing_key_id"] == recording.signing_key_id
    return str(manifest["signing_key_id"])


@pytest.mark.parametrize("name", ["keyring.json", "signing-key.pem"])
def test_missing_key_file_refuses_to_open_a_vault_with_recordings(
    ctx: ServiceContext, settings: Settings, data_dir: Path, name: str
) -> None:
    _import(ctx, 1)
    ctx.close()
    original = (data_dir / name).read_bytes()
    (data_dir / name).unlink()
    with pytest.raises(ConfigError, match=f"{name} is missing but the vault holds recordings"):
        open_context(settings)
    assert not (data_dir / name).exists()  # nothing regenerated behind the operator's back
    fd = os.open(data_dir / name, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, original)
    os.close(fd)
    restored = open_context(settings)
    try:
        assert restored.integrity.verify_all(ADMIN).ok
    finally:
        restored.close()


def test_fresh_data_dir_creates_its_keys(ctx: ServiceContext, data_dir: Path) -> None:
    assert (data_dir / "keyring.json").exists() and (data_dir / "signing-key.pem").exists()
    assert ctx.integrity.verify_all(ADMIN).ok


def test_signing_key_rotation_keeps_old_manifests_verifiable(ctx: ServiceContext, data_dir: Path) -> None:
    before = _import(ctx, 3)
    old_id = ctx.signer.key_id
    other_process = open_context(ctx.settings)  # e.g. the running server while the CLI rotates
    try:
        rotated = ctx.key_rotation.rotate_signing(ADMIN)
        assert (rotated.old_key_id, ctx.signer.key_id) == (old_id, rotated.new_key_id) != (old_id, old_id)
        after = _import(other_process, 5)
    finally:
        other_process.close()
    assert _signing_key_id(ctx, before) == old_id
    assert _signing_key_id(ctx, after) == rotated.new_key_id  # the other process picked up the new key
    report = ctx.integrity.verify_all(ADMIN)
    assert report.ok, ([p.line() for p in report.log_problems], [r.problems for r in report.results])
    retired = data_dir / "signing-key.public-keys.json"
    assert stat.S_IMODE(retired.stat().st_mode) == 0o600
    assert b"PRIVATE" not in retired.read_bytes()
    trail = ctx.access_log.list(ADMIN)
    assert any(e.action == "signing_key_rotate" and old_id in (e.detail or "") for e in trail)
    # Without the retired public key, what the old key signed can no longer be checked.
    retired.unlink()
    fresh = open_context(ctx.settings)
    try:
        results = {r.recording_id: r for r in fresh.integrity.verify(ADMIN)}
        assert results[after].ok
        assert results[before].problems == [
            f"manifest signed by key {old_id}, which this vault never had (forged?)"
        ]
    finally:
        fresh.close()
