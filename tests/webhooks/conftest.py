"""A server whose webhooks may reach a receiver on loopback, retrying fast; an admin's token."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from callvault.services.context import ServiceContext
from callvault.settings import Settings
from tests.api.conftest import serving
from tests.conftest import make_settings
from tests.support.people import ADMIN
from tests.support.webhook_receiver import Receiver, webhook_receiver

# Tests wait for the second attempt: a fraction of a second, not the default 5 s.
FAST_RETRY = {"webhook_backoff_seconds": "0.2", "webhook_backoff_max_seconds": "1"}


@pytest.fixture
def settings(data_dir: Path, database_url: str) -> Settings:
    # Loopback is refused by default (SSRF guard): these tests allow it explicitly.
    return make_settings(
        data_dir,
        database_url,
        sip_port="0",
        http_port="0",
        webhook_allow_private_targets="true",
        webhook_max_attempts="3",
        **FAST_RETRY,
    )


@pytest.fixture
def client(ctx: ServiceContext) -> Iterator[httpx.Client]:
    with serving(ctx) as port, httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as http:
        yield http


@pytest.fixture
def admin_token(ctx: ServiceContext) -> str:
    ctx.users.create_user(ADMIN, "root", "admin")
    return ctx.users.create_token(ADMIN, "root", "test")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with webhook_receiver() as running:
        yield running
