"""With the default settings, webhooks may not point into the server's own networks."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from callvault.db.webhook_models import WebhookSubscription
from callvault.services.context import ServiceContext
from callvault.settings import Settings
from tests.api.conftest import auth
from tests.conftest import make_settings
from tests.support.webhook_receiver import Receiver


@pytest.fixture
def settings(data_dir: Path, database_url: str) -> Settings:
    return make_settings(data_dir, database_url, sip_port="0", http_port="0")  # the defaults: guarded


def test_private_loopback_and_metadata_targets_are_refused(
    client: httpx.Client, ctx: ServiceContext, admin_token: str, receiver: Receiver
) -> None:
    for url in (
        receiver.url,  # a live server on loopback: refused though it would answer
        "http://localhost:8080/",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.7/hook",
        "http://[::1]/",
        "http://[::ffff:192.168.1.1]/",
    ):
        response = client.post(
            "/api/v1/webhooks", headers=auth(admin_token), json={"url": url, "events": ["recording.sealed"]}
        )
        assert response.status_code == 400, (url, response.text)
        assert "CALLVAULT_WEBHOOK_ALLOW_PRIVATE_TARGETS" in response.json()["detail"]
    assert receiver.requests == []
    with ctx.catalog.read() as session:
        assert session.scalars(select(WebhookSubscription)).all() == []
