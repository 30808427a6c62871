"""Hostile requests to /api/v1/qa: each a precise 4xx, none a 500, nothing stored."""

from __future__ import annotations

from sqlalchemy import func, select

from callvault.db.qa_models import QaClip, QaEvaluation, QaForm, QaSamplingRule
from callvault.services.context import ServiceContext
from tests.qa.conftest import FORM, Api
from tests.qa.test_evaluations_api import ALICE
from tests.support.vault_calls import seal_call

HUGE = 2**40


def test_hostile_requests_get_precise_errors(ctx: ServiceContext, qa_api: Api) -> None:
    sam = qa_api.as_("sam")
    recording = seal_call(ctx, agent_aor=ALICE)
    form = sam("POST", "/qa/forms", json=FORM).json()
    with ctx.catalog.read() as session:
        forms_before = session.scalar(select(func.count()).select_from(QaForm))
    cases: list[tuple[str, str, dict[str, object], int]] = [
        (
            "POST",
            "/qa/forms",
            {"content": b"{not json", "headers": {"content-type": "application/json"}},
            400,
        ),
        ("POST", "/qa/forms", {"json": []}, 400),
        ("POST", "/qa/forms", {"json": "form"}, 400),
        (
            "POST",
            "/qa/forms",
            {
                "content": b'{"name": "x", "sections": [{"title": "a", "weight": NaN}]}',
                "headers": {"content-type": "application/json"},
            },
            400,
        ),
        ("POST", "/qa/forms", {"json": {**FORM, "name": "x" * 201}}, 400),
        ("GET", f"/qa/forms/{HUGE}", {}, 400),
        ("GET", "/qa/forms/0", {}, 400),
        ("GET", "/qa/forms/77777", {}, 404),
        ("PUT", f"/qa/forms/{form['id']}", {"json": {"name": "x"}}, 400),
        ("POST", "/qa/evaluations", {"json": {"recording_id": recording, "form_id": HUGE}}, 400),
        ("POST", "/qa/evaluations", {"json": {"recording_id": recording, "form_id": "1"}}, 400),
        ("POST", "/qa/evaluations", {"json": {"recording_id": "x" * 500, "form_id": form["id"]}}, 400),
        (
            "POST",
            "/qa/evaluations",
            {"json": {"recording_id": "00000000-0000-0000-0000-000000000000", "form_id": form["id"]}},
            404,
        ),
        (
            "POST",
            "/qa/evaluations",
            {"json": {"recording_id": recording, "form_id": form["id"], "calibration_id": HUGE}},
            400,
        ),
        (
            "POST",
            "/qa/evaluations",
            {"json": {"recording_id": recording, "form_id": form["id"], "score": 100}},
            400,
        ),
        ("GET", f"/qa/evaluations/{HUGE}", {}, 400),
        ("PUT", "/qa/evaluations/55555", {"json": {"answers": []}}, 404),
        (
            "POST",
            "/qa/evaluations/55555/dispute",
            {"json": {"reason": "x"}},
            403,
        ),  # supervisors never dispute
        ("GET", "/qa/evaluations", {"params": {"state": "lost"}}, 400),
        ("GET", "/qa/evaluations", {"params": {"limit": 10**9}}, 400),
        (
            "POST",
            "/qa/sampling-rules",
            {
                "json": {
                    "name": "r",
                    "form_id": form["id"],
                    "per_week": 1,
                    "criteria": {"min_duration": 50, "max_duration": 10},
                }
            },
            400,
        ),
        (
            "POST",
            "/qa/sampling-rules",
            {
                "json": {
                    "name": "r",
                    "form_id": form["id"],
                    "per_week": 1,
                    "criteria": {"statuses": ["deleted"]},
                }
            },
            400,
        ),
        (
            "POST",
            "/qa/sampling-rules",
            {"json": {"name": "r", "form_id": form["id"], "per_week": 1, "kind": "sometimes"}},
            400,
        ),
        ("POST", "/qa/queue/sample", {"params": {"week": "2026-W00"}}, 400),
        (
            "POST",
            "/qa/clips",
            {
                "content": f'{{"recording_id": "{recording}", "start": 0, "end": Infinity, "title": "x"}}'.encode(),
                "headers": {"content-type": "application/json"},
            },
            400,
        ),
        ("GET", f"/qa/clips/{HUGE}/audio", {}, 400),
        ("GET", "/qa/clips/4444/audio", {}, 404),
        ("POST", "/qa/playlists", {"json": {"name": "p", "clip_ids": [HUGE]}}, 400),
        ("POST", "/qa/coaching", {"json": {"agent": "alice", "title": "t", "clip_ids": [HUGE]}}, 400),
        ("GET", "/qa/scorecards", {"params": {"group": "desk"}}, 400),
        ("GET", "/qa/scorecards", {"params": {"from": "0001-01-01T00:00:00Z"}}, 400),
        ("GET", "/qa/scorecards", {"params": {"form_id": HUGE}}, 400),
    ]
    for method, path, kwargs, status in cases:
        response = sam(method, path, **kwargs)
        assert response.status_code == status, (method, path, kwargs, response.status_code, response.text)
        assert response.json()["error"] and response.json()["detail"], response.text
    with ctx.catalog.read() as session:
        assert session.scalar(select(func.count()).select_from(QaForm)) == forms_before
        for table in (QaEvaluation, QaClip, QaSamplingRule):
            assert session.scalar(select(func.count()).select_from(table)) == 0, table
