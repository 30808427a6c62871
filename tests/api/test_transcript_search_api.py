"""`GET /api/v1/recordings?text=…&speaker=…` over HTTP, from the server `callvault serve` runs."""

from __future__ import annotations

import httpx
import pytest

from callvault.services.context import ServiceContext
from tests.api.conftest import auth
from tests.support.people import Staff
from tests.support.transcripts import transcript, word_at
from tests.support.vault_calls import seal_call


@pytest.fixture
def refund_call(ctx: ServiceContext, staff: Staff) -> str:
    """alice's call: the customer asks for a refund at 30 s, the agent never says the word."""
    recording = seal_call(ctx, agent_aor="sip:1001@pbx.example", queue="billing")
    ctx.transcript_index.index(
        recording,
        transcript(
            agent=[(1.0, "Thanks for calling how can I help"), (36.0, "Let me look into that")],
            customer=[(30.0, "I would like a refund please")],
        ),
    )
    return recording


def search(client: httpx.Client, staff: Staff, who: str, **params: str) -> httpx.Response:
    return client.get("/api/v1/recordings", params=params, headers=auth(staff.tokens[who]))


def test_refund_said_by_the_customer_is_found_only_by_those_who_may_see_the_call(
    client: httpx.Client, staff: Staff, refund_call: str
) -> None:
    for who in ("alice", "sam", "carol"):  # the agent, her supervisor, compliance
        response = search(client, staff, who, text="refund", speaker="customer")
        assert response.status_code == 200, response.text
        body = response.json()
        assert [item["id"] for item in body["items"]] == [refund_call], who
        assert body["total"] == 1
        start, end = word_at(30.0, 4)
        assert body["items"][0]["matches"] == [
            {
                "speaker": "customer",
                "start": pytest.approx(start),
                "end": pytest.approx(end),
                "text": "refund",
                "snippet": "I would like a refund please",
            }
        ]
    for who in ("dana", "bob"):  # alice's teammate and another team's agent
        response = search(client, staff, who, text="refund", speaker="customer")
        assert response.status_code == 200 and response.json()["items"] == [], who
    assert search(client, staff, "carol", text="refund", speaker="agent").json()["total"] == 0
    assert search(client, staff, "carol", text="refund", queue="support").json()["total"] == 0
    assert (
        search(client, staff, "carol", text="refund", queue="billing", sort="duration").json()["total"] == 1
    )
    # The auditor sees the catalogue, not what was said (no transcript.read): refused outright.
    assert search(client, staff, "audrey", text="refund").status_code == 403
    assert search(client, staff, "audrey").json()["total"] == 1
    plain = search(client, staff, "carol").json()["items"]
    assert plain and "matches" not in plain[0]  # only a text search carries matches


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"text": '"'}, 400),
        ({"text": "a" * 10_000}, 400),
        ({"text": "refund\x00"}, 400),
        ({"text": "refund", "speaker": "boss"}, 400),
        ({"speaker": "customer"}, 400),
        ({"text": 'refund" OR NEAR(x y) AND -z ^q tokens:*'}, 200),
    ],
)
def test_hostile_text_is_refused_precisely_or_searched_as_words(
    client: httpx.Client, staff: Staff, refund_call: str, params: dict[str, str], status: int
) -> None:
    response = search(client, staff, "carol", **params)
    assert response.status_code == status, response.text
    if status == 200:
        assert response.json()["items"] == []
    else:
        assert "detail" in response.json() or "error" in response.json()
