"""Quality-management tests: the API as `callvault serve` answers it, with the test staff and
two more red-team evaluators (alice and dana are red agents, bob is blue, sam red's supervisor,
quinn a blue QA evaluator)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from callvault.services.context import ServiceContext
from tests.api.conftest import serving
from tests.support.people import ADMIN, Staff, create_staff

FORM: dict[str, Any] = {
    "name": "Inbound service",
    "sections": [
        {
            "title": "Compliance",
            "weight": 40,
            "questions": [
                {"text": "Recording disclosure read?", "kind": "yes_no", "weight": 60, "auto_fail": True},
                {"text": "Identity verified?", "kind": "yes_no", "weight": 40, "allow_na": True},
            ],
        },
        {
            "title": "Soft skills",
            "weight": 60,
            "questions": [
                {"text": "Empathy", "kind": "scale", "weight": 50, "scale_max": 5},
                {
                    "text": "Closing",
                    "kind": "choice",
                    "weight": 50,
                    "choices": [
                        {"label": "none", "points": 0},
                        {"label": "partial", "points": 1},
                        {"label": "full", "points": 4},
                    ],
                },
                {"text": "Coaching notes", "kind": "comment"},
            ],
        },
    ],
}


class Api:
    """``/api/v1`` as one user or another: ``api.as_("sam").post(...)``."""

    def __init__(self, http: httpx.Client, tokens: dict[str, str]) -> None:
        self.http = http
        self.tokens = tokens

    def as_(self, name: str) -> Callable[..., httpx.Response]:
        def call(method: str, path: str, **kwargs: Any) -> httpx.Response:
            headers = {**kwargs.pop("headers", {}), "Authorization": f"Bearer {self.tokens[name]}"}
            return self.http.request(method, f"/api/v1{path}", headers=headers, **kwargs)

        return call


def add_evaluators(ctx: ServiceContext, staff: Staff) -> None:
    for name in ("rita", "ray"):
        ctx.users.create_user(ADMIN, name, "qa_evaluator", team="red")
        staff.tokens[name] = ctx.users.create_token(ADMIN, name, "test")
        staff.principals[name] = ctx.users.authenticate_token(staff.tokens[name])


@pytest.fixture
def qa_api(ctx: ServiceContext) -> Iterator[Api]:
    staff = create_staff(ctx)
    add_evaluators(ctx, staff)
    with serving(ctx) as port, httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as http:
        yield Api(http, staff.tokens)
