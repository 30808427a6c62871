"""Call references: a recording id, the SIP Call-ID or a vendor id names the same call, within scope."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from callvault.errors import InvalidInput, NotFound, PermissionDenied
from callvault.services.access import Action
from callvault.services.call_record import CallRecord, ParticipantRecord
from callvault.services.context import ServiceContext
from tests.support.people import ADMIN, create_staff

SIP_CALL_ID = "5f1c2a@sbc.example"
GUID = "0A1B2C3D-11223344-55667788-99AABBCC"
UCID = "00001002891612345678"


def _call(agent_aor: str, started: datetime, guid: str = GUID, call_id: str = SIP_CALL_ID) -> CallRecord:
    return CallRecord(
        started_at=started,
        source="siprec",
        direction="inbound",
        sip_call_ids=[call_id],
        external_ids={"cisco_guid": guid, "ucid": UCID},
        participants=[
            ParticipantRecord(aor="sip:+14155550199@carrier.example", role="customer"),
            ParticipantRecord(aor=agent_aor, role="other"),
        ],
    )


def test_every_kind_of_reference_names_the_call(ctx: ServiceContext) -> None:
    staff = create_staff(ctx)
    recording_id = ctx.recordings.begin(_call("sip:1001@pbx.example", datetime.now(UTC)))
    alice = staff.principals["alice"]
    found = {}
    for ref in (recording_id, recording_id.upper(), SIP_CALL_ID, GUID, UCID, f"  {GUID} "):
        resolved = ctx.call_refs.resolve(alice, ref)
        assert resolved.recording_ids == [recording_id], ref
        assert resolved.primary.in_progress and resolved.primary.source == "siprec"
        found[ref] = resolved.matched_by
    assert found[recording_id] == "recording_id"
    assert found[SIP_CALL_ID] == "sip_call_id"
    assert found[GUID] == "cisco_guid"
    assert found[UCID] == "ucid"


def test_scope_is_the_access_policy_and_out_of_scope_reads_like_unknown(ctx: ServiceContext) -> None:
    staff = create_staff(ctx)
    ctx.users.create_user(ADMIN, "payments", "integration")
    payments = ctx.users.authenticate_token(ctx.users.create_token(ADMIN, "payments", "cti"))
    recording_id = ctx.recordings.begin(_call("sip:1001@pbx.example", datetime.now(UTC)))  # alice, red
    reaching = {"alice", "sam"}  # her own call; her team's supervisor
    for name, principal in staff.principals.items():
        if name in {"carol", "quinn", "audrey"}:  # roles that never control calls
            with pytest.raises(PermissionDenied, match="may not call.control"):
                ctx.call_refs.resolve(principal, GUID)
        elif name in reaching:
            assert ctx.call_refs.resolve(principal, GUID).recording_ids == [recording_id], name
        else:  # dana (red, but not her call), bob (blue)
            for ref in (GUID, recording_id):
                with pytest.raises(NotFound, match="^call not found$"):
                    ctx.call_refs.resolve(principal, ref)
    assert ctx.call_refs.resolve(payments, UCID).recording_ids == [recording_id]
    assert ctx.call_refs.resolve(ADMIN, SIP_CALL_ID).recording_ids == [recording_id]
    for unknown in ("no-such-call@sbc.example", "00000000-0000-0000-0000-000000000000"):
        with pytest.raises(NotFound, match="^call not found$"):
            ctx.call_refs.resolve(ADMIN, unknown)
    # An integration account controls calls and nothing else.
    with pytest.raises(PermissionDenied):
        ctx.search.get(payments, recording_id)


def test_a_call_recorded_twice_gives_every_copy_the_running_one_first(ctx: ServiceContext) -> None:
    now = datetime.now(UTC)
    older = ctx.recordings.begin(_call("sip:1001@pbx.example", now - timedelta(minutes=5), call_id="a@sbc"))
    newer = ctx.recordings.begin(_call("sip:1001@pbx.example", now, call_id="b@sbc"))
    assert ctx.call_refs.resolve(ADMIN, GUID).recording_ids == [newer, older]
    ctx.recordings.mark_interrupted_without_audio(newer)
    resolved = ctx.call_refs.resolve(ADMIN, GUID)
    assert resolved.recording_ids == [older, newer]  # the one still recording comes first
    assert [r.in_progress for r in resolved.recordings] == [True, False]
    assert ctx.call_refs.resolve(ADMIN, "b@sbc").recording_ids == [newer]


@pytest.mark.parametrize("ref", ["", "   ", "x" * 256, "bad\x00ref", "line\nbreak"])
def test_references_that_cannot_name_a_call_are_refused(ctx: ServiceContext, ref: str) -> None:
    with pytest.raises(InvalidInput, match="a call reference is"):
        ctx.call_refs.resolve(ADMIN, ref)


def test_a_role_that_may_not_act_is_refused_before_the_lookup(ctx: ServiceContext) -> None:
    staff = create_staff(ctx)
    with pytest.raises(PermissionDenied):
        ctx.call_refs.resolve(staff.principals["audrey"], "anything")
    # Another action's scope can be asked for (a viewer's lookup by call id).
    recording_id = ctx.recordings.begin(_call("sip:1001@pbx.example", datetime.now(UTC)))
    resolved = ctx.call_refs.resolve(staff.principals["audrey"], GUID, Action.RECORDING_VIEW)
    assert resolved.recording_ids == [recording_id]
