"""Passive capture tests reuse the API tests' server (the serve composition root, in a thread)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from callvault.services.context import open_context
from tests.api.conftest import client, serving, staff
from tests.conftest import make_settings
from tests.support.people import Staff, create_staff

__all__ = ["client", "sniffing", "staff"]


@pytest.fixture
def sniffing(data_dir: Path, database_url: str) -> Iterator[tuple[httpx.Client, Staff]]:
    # Only this test's addresses: the server's own HTTP and database traffic is filtered in the kernel.
    settings = make_settings(
        data_dir,
        database_url,
        sip_port="0",
        http_port="0",
        capture_interfaces="lo",
        capture_filter=f"inbound and net 127.{os.getpid() % 200 + 20}.77.0/24",
        rtp_timeout="30",
    )
    ctx = open_context(settings)
    try:
        staff = create_staff(ctx)
        with serving(ctx) as port, httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            yield client, staff
    finally:
        ctx.close()
