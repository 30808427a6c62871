from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from callvault.api.app import create_app
from callvault.services.context import ServiceContext
from tests.support.people import Staff, create_staff


@pytest.fixture
def client(ctx: ServiceContext) -> Iterator[TestClient]:
    with TestClient(create_app(ctx)) as test_client:
        yield test_client


@pytest.fixture
def staff(ctx: ServiceContext) -> Staff:
    return create_staff(ctx)


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
