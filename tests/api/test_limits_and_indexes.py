"""Upload size limit, and the search filters answered from indexes as the catalog grows."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from callvault.services.context import open_context
from tests.api.conftest import auth, serving
from tests.conftest import make_settings
from tests.support.audio import stereo_wav, voice
from tests.support.people import create_staff


def test_oversized_upload_is_refused_and_nothing_stored(data_dir: Path, database_url: str) -> None:
    ctx = open_context(
        make_settings(data_dir, database_url, max_upload_bytes="50000", sip_port="0", http_port="0")
    )
    try:
        staff = create_staff(ctx)
        with serving(ctx) as port, httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
            big = stereo_wav(voice(5, 8000, 120, 1), voice(5, 8000, 200, 2), 8000)
            assert len(big) > 50000
            response = client.post(
                "/api/v1/recordings", headers=auth(staff.tokens["carol"]), files={"file": ("big.wav", big)}
            )
            assert response.status_code == 413
            assert "CALLVAULT_MAX_UPLOAD_BYTES" in response.json()["detail"]
            assert list(ctx.blobs.list("")) == []
    finally:
        ctx.close()


@pytest.mark.parametrize(
    ("where", "index"),
    [
        ("agent_user_id = 1", "ix_recordings_agent_started"),
        ("team_id = 1", "ix_recordings_team_started"),
        ("customer_number = '+14155550100'", "ix_recordings_customer_started"),
        ("queue = 'sales'", "ix_recordings_queue_started"),
        ("status = 'complete'", "ix_recordings_status_started"),
    ],
)
def test_search_filters_use_their_index(data_dir: Path, where: str, index: str) -> None:
    ctx = open_context(make_settings(data_dir, ""))
    try:
        with ctx.catalog.engine.connect() as conn:
            plan = " ".join(
                str(row[-1])
                for row in conn.execute(
                    text(
                        f"EXPLAIN QUERY PLAN SELECT * FROM recordings WHERE {where} ORDER BY started_at DESC LIMIT 50"
                    )
                )
            )
        assert index in plan, plan
        assert "TEMP B-TREE" not in plan, plan  # sorted by the index, not after the fact
    finally:
        ctx.close()
