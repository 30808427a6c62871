"""The whole vault path on S3-compatible storage: import, play by range, verify, tamper."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from callvault.services.context import open_context
from callvault.services.importer import ImportRequest
from tests.conftest import make_settings
from tests.support.audio import stereo_wav, voice
from tests.support.people import ADMIN
from tests.support.s3server import S3Endpoint


def test_recordings_on_s3(
    s3_endpoint: S3Endpoint, data_dir: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in s3_endpoint.env().items():
        monkeypatch.setenv(key, value)
    bucket = f"vault-{uuid.uuid4().hex[:8]}"
    settings = make_settings(data_dir, database_url, storage_url=s3_endpoint.storage_url(bucket, "prod"))
    ctx = open_context(settings)
    try:
        wav = stereo_wav(voice(4, 8000, 120, 1), voice(4, 8000, 200, 2), 8000)
        recording_id = ctx.importer.import_bytes(ADMIN, wav, ImportRequest(customer="+14155550100"))
        keys = list(ctx.blobs.list(""))
        assert len(keys) == 1 and keys[0].endswith(f"{recording_id}.cvr")
        raw = s3_endpoint.client().get_object(Bucket=bucket, Key=f"prod/{keys[0]}")["Body"].read()
        assert b"OggS" not in raw
        audio = ctx.playback.open_audio(ADMIN, recording_id)
        whole = audio.read()
        assert whole[:4] == b"OggS"
        assert audio.read(100, 70000) == whole[100:70000]
        assert ctx.integrity.verify(ADMIN)[0].ok
        s3_endpoint.client().put_object(
            Bucket=bucket, Key=f"prod/{keys[0]}", Body=raw[:-1] + bytes([raw[-1] ^ 1])
        )
        result = ctx.integrity.verify(ADMIN)[0]
        assert not result.ok and result.recording_id == recording_id
    finally:
        ctx.close()
