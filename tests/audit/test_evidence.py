"""Evidence bundles: built with the download right, verified offline, one changed byte named."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import httpx
import pytest

from callvault.crypto.signing import ManifestSigner
from callvault.errors import InvalidInput
from callvault.services.context import ServiceContext
from callvault.services.evidence import EvidenceService
from callvault.services.evidence_verify import verify_bundle
from callvault.services.importer import ImportRequest
from tests.api.conftest import auth
from tests.support.audio import stereo_wav, voice
from tests.support.people import ADMIN, Staff
from tests.support.processes import run_cli

RATE = 8000


def _recording(ctx: ServiceContext, agent: str | None = None) -> str:
    wav = stereo_wav(voice(1.0, RATE, 120, 1), voice(1.0, RATE, 200, 2), RATE)
    return ctx.importer.import_bytes(ADMIN, wav, ImportRequest(customer="+14155550100", agent=agent))


def _bundle(ctx: ServiceContext, recording_id: str) -> bytes:
    service = EvidenceService(
        ctx.catalog, ctx.signer, ctx.access_log, ctx.audit_log, ctx.playback, ctx.search
    )
    return service.build(ADMIN, recording_id)


def _members(bundle: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(bundle)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def _rezip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def test_bundle_holds_everything_and_verifies_offline(ctx: ServiceContext) -> None:
    recording_id = _recording(ctx)
    ctx.search.get(ADMIN, recording_id)  # some history before the export
    bundle = _bundle(ctx, recording_id)
    members = _members(bundle)
    expected = {
        "audio.opus",
        "audio.wav",
        "metadata.json",
        "manifest.json",
        "manifest.sig",
        "audit-trail.json",
        "vcon.json",
        "vcon.jws.json",
        "public-key.pem",
        "README.txt",
        "bundle.json",
        "bundle.sig",
    }
    assert expected <= set(members)
    assert members["audio.opus"][:4] == b"OggS" and members["audio.wav"][:4] == b"RIFF"
    assert b'"parties"' in members["vcon.json"] and b'"dialog"' in members["vcon.json"]
    trail = members["audit-trail.json"].decode()
    assert '"export"' in trail and '"upload"' in trail
    report = verify_bundle(bundle, ctx.signer.public_key_pem())
    assert report.ok, report.failures
    assert report.recording_id == recording_id
    # The export itself is in the audit log.
    from sqlalchemy import select

    from callvault.db.models import AccessEvent

    with ctx.catalog.read() as session:
        actions = set(
            session.scalars(select(AccessEvent.action).where(AccessEvent.recording_id == recording_id))
        )
    assert {"export", "download"} <= actions


def test_one_changed_byte_in_any_member_is_named(ctx: ServiceContext) -> None:
    bundle = _bundle(ctx, _recording(ctx))
    members = _members(bundle)
    for name in members:
        changed = dict(members)
        data = bytearray(changed[name])
        data[len(data) // 2] ^= 0x01
        changed[name] = bytes(data)
        report = verify_bundle(_rezip(changed), ctx.signer.public_key_pem())
        assert not report.ok, name
        named = {member for member, _ in report.failures}
        expected = {name} if name not in ("bundle.sig",) else {"bundle.json"}
        if name == "public-key.pem":
            expected = {"public-key.pem"}
        assert named & expected, (name, report.failures)


def test_a_byte_flipped_in_the_zip_file_itself_fails(ctx: ServiceContext) -> None:
    bundle = bytearray(_bundle(ctx, _recording(ctx)))
    start = bytes(bundle).index(b"OggS")  # inside audio.opus, stored uncompressed
    bundle[start + 200] ^= 0xFF
    report = verify_bundle(bytes(bundle), ctx.signer.public_key_pem())
    assert "audio.opus" in {m for m, _ in report.failures}, report.failures


def test_added_member_wrong_key_and_not_a_bundle(ctx: ServiceContext, tmp_path: Path) -> None:
    bundle = _bundle(ctx, _recording(ctx))
    members = _members(bundle)
    report = verify_bundle(_rezip({**members, "note.txt": b"trust me"}), None)
    assert "note.txt" in {m for m, _ in report.failures}, report.failures
    other = ManifestSigner(tmp_path / "other.pem").public_key_pem()
    assert not verify_bundle(bundle, other).ok
    with pytest.raises(InvalidInput):
        verify_bundle(b"PK\x03\x04 not really", None)
    with pytest.raises(InvalidInput):
        verify_bundle(_rezip({"hello.txt": b"x"}), None)


def test_cli_export_and_verify_bundle(
    ctx: ServiceContext, data_dir: Path, database_url: str, tmp_path: Path
) -> None:
    recording_id = _recording(ctx)
    env = {"CALLVAULT_DATA_DIR": str(data_dir), "CALLVAULT_DATABASE_URL": database_url}
    out = tmp_path / "bundle.zip"
    exported = run_cli(["export", recording_id, "--out", str(out)], env)
    assert exported.returncode == 0, exported.stderr
    key = tmp_path / "server.pem"
    key.write_bytes(ctx.signer.public_key_pem())
    # Offline: no data directory in the environment at all.
    offline = {"CALLVAULT_DATA_DIR": str(tmp_path / "nowhere")}
    ok = run_cli(["verify-bundle", str(out), "--public-key", str(key)], offline)
    assert ok.returncode == 0 and "OK" in ok.stdout, ok.stdout + ok.stderr
    members = _members(out.read_bytes())
    members["metadata.json"] = members["metadata.json"].replace(b"+14155550100", b"+14155550199")
    out.write_bytes(_rezip(members))
    bad = run_cli(["verify-bundle", str(out)], offline)
    assert bad.returncode == 5 and "FAIL metadata.json" in bad.stdout, bad.stdout + bad.stderr
    out.write_bytes(b"not a zip")
    malformed = run_cli(["verify-bundle", str(out)], offline)
    assert malformed.returncode == 2, malformed.stdout + malformed.stderr
    assert not (tmp_path / "nowhere").exists()


def test_api_evidence_needs_the_download_right(
    ctx: ServiceContext, client: httpx.Client, staff: Staff
) -> None:
    recording_id = _recording(ctx, agent="alice")
    answer = client.get(f"/api/v1/recordings/{recording_id}/evidence", headers=auth(staff.tokens["carol"]))
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/zip"
    assert verify_bundle(answer.content, ctx.signer.public_key_pem()).ok
    for name, status in (("alice", 403), ("quinn", 403), ("audrey", 403)):
        refused = client.get(f"/api/v1/recordings/{recording_id}/evidence", headers=auth(staff.tokens[name]))
        assert refused.status_code == status, (name, refused.text)
