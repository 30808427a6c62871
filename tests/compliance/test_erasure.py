"""Erasure requests: one person's calls found by any spelling, erased, certified, verified offline."""

from __future__ import annotations

import json

import pytest

from callvault.db.compliance_models import ErasureRequest
from callvault.errors import Conflict, IntegrityError, InvalidInput, NotFound
from callvault.services.context import ServiceContext
from callvault.services.deletion_certificate import verify_certificate
from tests.support.people import ADMIN, create_staff
from tests.support.vault_calls import seal_call


def test_three_spellings_find_one_customer_and_certificate_verifies_and_fails_when_edited(
    ctx: ServiceContext,
) -> None:
    carol = create_staff(ctx).principals["carol"]
    mine = [
        seal_call(ctx, customer="+1 415 555 0100"),
        seal_call(ctx, customer="(415) 555-0100"),
        seal_call(ctx, customer="sip:+14155550100@sbc.example"),
    ]
    conference = seal_call(ctx, customer="+14155550177", extra_parties=["tel:+1-415-555-0100"])
    other = seal_call(ctx, customer="+14155550111")
    ctx.retention.add_policy(
        ADMIN,
        {"name": "mifid2", "keep_days": 2555, "match": {"labels": ["mifid2"]}, "legal_obligation": True},
    )
    regulated = seal_call(ctx, customer="415-555-0100")
    ctx.labels.update(ADMIN, regulated, {"labels": ["mifid2"]})

    request = ctx.erasure.create(carol, {"subject": {"phone": "4155550100"}})
    assert set(request["recording_ids"]) == {*mine, conference, regulated}
    assert "4155550100" not in json.dumps(request)  # the preview shows the subject hashed only
    with pytest.raises(Conflict, match="not been executed"):
        ctx.erasure.certificate(carol, request["id"])

    result = ctx.erasure.execute(carol, request["id"])
    assert {e["recording_id"] for e in result["erased"]} == {*mine, conference}
    [kept] = result["kept"]
    assert (
        kept["recording_id"] == regulated
        and "legal obligation" in kept["reason"]
        and "mifid2" in kept["reason"]
    )
    assert ctx.search.get(ADMIN, other)["status"] == "complete"
    with pytest.raises(Conflict, match="already executed"):
        ctx.erasure.execute(carol, request["id"])
    with ctx.catalog.read() as session:
        row = session.get(ErasureRequest, request["id"])
        assert row is not None and row.subject_value is None

    document = ctx.erasure.certificate(carol, request["id"]).encode()
    body = verify_certificate(document, ctx.signer.public_key_pem())
    assert body["subject"]["hash"] == request["subject"]["hash"]
    assert {d["recording_id"] for d in body["destroyed"]} == {*mine, conference}
    assert all(len(d["audio_sha256"]) == 64 for d in body["destroyed"])

    edited = json.loads(document)
    edited["certificate"]["kept"] = []
    with pytest.raises(IntegrityError, match="edited"):
        verify_certificate(json.dumps(edited).encode())
    with pytest.raises(InvalidInput):
        verify_certificate(b"{not json")


def test_multi_party_recordings_are_kept_when_the_setting_says_so(ctx: ServiceContext) -> None:
    from dataclasses import replace

    from callvault.services.erasure import ErasureService

    carol = create_staff(ctx).principals["carol"]
    alone = seal_call(ctx, customer="+14155550100")
    shared = seal_call(ctx, customer="+14155550177", extra_parties=["+14155550100"])
    strict = ErasureService(
        ctx.catalog, ctx.deletion, ctx.access_log, ctx.erasure._hasher, ctx.signer, ctx.events, "US", False
    )
    del replace
    request = strict.create(carol, {"subject": {"phone": "+14155550100"}})
    result = strict.execute(carol, request["id"])
    assert [e["recording_id"] for e in result["erased"]] == [alone]
    assert [k["recording_id"] for k in result["kept"]] == [shared]


def test_erasure_bad_input(ctx: ServiceContext) -> None:
    carol = create_staff(ctx).principals["carol"]
    seal_call(ctx, customer="+14155550100", external_ids={"customer_id": "CRM-42"})
    for subject in [
        None,
        {},
        {"phone": "abc"},
        {"fax": "1"},
        {"phone": "1", "email": "a@b"},
        {"email": "nope"},
    ]:
        with pytest.raises(InvalidInput):
            ctx.erasure.create(carol, {"subject": subject})
    with pytest.raises(NotFound):
        ctx.erasure.create(carol, {"subject": {"phone": "+1 212 555 0199"}})
    with pytest.raises(NotFound):
        ctx.erasure.execute(carol, "no-such-request")
    found = ctx.erasure.create(carol, {"subject": {"customer_id": "CRM-42"}})
    assert len(found["recording_ids"]) == 1
