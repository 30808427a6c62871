"""The actions × roles table, cell by cell, against the documented matrix and real services."""

from __future__ import annotations

import re

import pytest

from callvault.errors import InvalidInput, NotFound, PermissionDenied
from callvault.services.access import POLICY, Action, Principal, Role, allowed, require
from callvault.services.context import ServiceContext
from callvault.services.importer import ImportRequest
from callvault.services.search import RecordingQuery
from tests.support.audio import stereo_wav, voice
from tests.support.people import ADMIN, create_staff

# The matrix as documented in callvault.services.access and the README, written out again
# independently: a change to the policy must change this table too.
EXPECTED: dict[Action, dict[Role, str]] = {
    Action.RECORDING_SEARCH: {
        Role.ADMIN: "all",
        Role.COMPLIANCE_OFFICER: "all",
        Role.SUPERVISOR: "team",
        Role.QA_EVALUATOR: "team",
        Role.AGENT: "own",
        Role.AUDITOR: "all",
    },
    Action.RECORDING_VIEW: {
        Role.ADMIN: "all",
        Role.COMPLIANCE_OFFICER: "all",
        Role.SUPERVISOR: "team",
        Role.QA_EVALUATOR: "team",
        Role.AGENT: "own",
        Role.AUDITOR: "all",
    },
    Action.RECORDING_PLAY: {
        Role.ADMIN: "all",
        Role.COMPLIANCE_OFFICER: "all",
        Role.SUPERVISOR: "team",
        Role.QA_EVALUATOR: "team",
        Role.AGENT: "own",
        Role.AUDITOR: "-",
    },
    Action.TRANSCRIPT_READ: {
        Role.ADMIN: "all",
        Role.COMPLIANCE_OFFICER: "all",
        Role.SUPERVISOR: "team",
        Role.QA_EVALUATOR: "team",
        Role.AGENT: "own",
        Role.AUDITOR: "-",
    },
    Action.TRANSCRIPT_ORIGINAL: {
        Role.ADMIN: "all",
        Role.COMPLIANCE_OFFICER: "all",
        Role.SUPERVISOR: "team",
        Role.QA_EVALUATOR: "-",
        Role.AGENT: "-",
        Role.AUDITOR: "-",
    },
    Action.RECORDING_DOWNLOAD: {
        Role.ADMIN: "all",
        Role.COMPLIANCE_OFFICER: "all",
        Role.SUPERVISOR: "team",
        Role.QA_EVALUATOR: "-",
        Role.AGENT: "-",
        Role.AUDITOR: "-",
    },
    Action.RECORDING_UPLOAD: {
        Role.ADMIN: "all",
        Role.COMPLIANCE_OFFICER: "all",
        Role.SUPERVISOR: "team",
        Role.QA_EVALUATOR: "-",
        Role.AGENT: "-",
        Role.AUDITOR: "-",
    },
    Action.RECORDING_DESTROY: {
        Role.ADMIN: "all",
        Role.COMPLIANCE_OFFICER: "all",
        Role.SUPERVISOR: "-",
        Role.QA_EVALUATOR: "-",
        Role.AGENT: "-",
        Role.AUDITOR: "-",
    },
    Action.AUDIT_READ: {
        Role.ADMIN: "all",
        Role.COMPLIANCE_OFFICER: "all",
        Role.SUPERVISOR: "-",
        Role.QA_EVALUATOR: "-",
        Role.AGENT: "-",
        Role.AUDITOR: "all",
    },
    Action.INTEGRITY_VERIFY: {
        Role.ADMIN: "all",
        Role.COMPLIANCE_OFFICER: "all",
        Role.SUPERVISOR: "-",
        Role.QA_EVALUATOR: "-",
        Role.AGENT: "-",
        Role.AUDITOR: "all",
    },
    Action.USER_MANAGE: {
        Role.ADMIN: "all",
        Role.COMPLIANCE_OFFICER: "-",
        Role.SUPERVISOR: "-",
        Role.QA_EVALUATOR: "-",
        Role.AGENT: "-",
        Role.AUDITOR: "-",
    },
    Action.KEYS_ROTATE: {
        Role.ADMIN: "all",
        Role.COMPLIANCE_OFFICER: "-",
        Role.SUPERVISOR: "-",
        Role.QA_EVALUATOR: "-",
        Role.AGENT: "-",
        Role.AUDITOR: "-",
    },
    Action.RETENTION_MANAGE: {
        Role.ADMIN: "all",
        Role.COMPLIANCE_OFFICER: "all",
        Role.SUPERVISOR: "-",
        Role.QA_EVALUATOR: "-",
        Role.AGENT: "-",
        Role.AUDITOR: "-",
    },
    Action.HOLD_MANAGE: {
        Role.ADMIN: "all",
        Role.COMPLIANCE_OFFICER: "all",
        Role.SUPERVISOR: "-",
        Role.QA_EVALUATOR: "-",
        Role.AGENT: "-",
        Role.AUDITOR: "-",
    },
    Action.ERASURE_MANAGE: {
        Role.ADMIN: "all",
        Role.COMPLIANCE_OFFICER: "all",
        Role.SUPERVISOR: "-",
        Role.QA_EVALUATOR: "-",
        Role.AGENT: "-",
        Role.AUDITOR: "-",
    },
    Action.WEBHOOK_MANAGE: {
        Role.ADMIN: "all",
        Role.COMPLIANCE_OFFICER: "-",
        Role.SUPERVISOR: "-",
        Role.QA_EVALUATOR: "-",
        Role.AGENT: "-",
        Role.AUDITOR: "-",
    },
    Action.ANNOUNCEMENT_MANAGE: {
        Role.ADMIN: "all",
        Role.COMPLIANCE_OFFICER: "-",
        Role.SUPERVISOR: "-",
        Role.QA_EVALUATOR: "-",
        Role.AGENT: "-",
        Role.AUDITOR: "-",
    },
    Action.ANNOUNCEMENT_VIEW: {
        Role.ADMIN: "all",
        Role.COMPLIANCE_OFFICER: "all",
        Role.SUPERVISOR: "-",
        Role.QA_EVALUATOR: "-",
        Role.AGENT: "-",
        Role.AUDITOR: "all",
    },
    Action.DISCLOSURE_REPORT: {
        Role.ADMIN: "all",
        Role.COMPLIANCE_OFFICER: "all",
        Role.SUPERVISOR: "-",
        Role.QA_EVALUATOR: "-",
        Role.AGENT: "-",
        Role.AUDITOR: "-",
    },
    Action.CALL_CONTROL: {
        Role.ADMIN: "all",
        Role.COMPLIANCE_OFFICER: "-",
        Role.SUPERVISOR: "team",
        Role.QA_EVALUATOR: "-",
        Role.AGENT: "own",
        Role.AUDITOR: "-",
        Role.INTEGRATION: "all",
    },
    Action.CALL_RECORDS_SUBMIT: {
        Role.ADMIN: "all",
        Role.COMPLIANCE_OFFICER: "all",
        Role.SUPERVISOR: "-",
        Role.QA_EVALUATOR: "-",
        Role.AGENT: "-",
        Role.AUDITOR: "-",
        Role.INTEGRATION: "all",
    },
    Action.ASSURANCE_REPORT: {
        Role.ADMIN: "all",
        Role.COMPLIANCE_OFFICER: "all",
        Role.SUPERVISOR: "team",
        Role.QA_EVALUATOR: "-",
        Role.AGENT: "-",
        Role.AUDITOR: "all",
    },
    Action.CONSENT_MANAGE: {
        Role.ADMIN: "all",
        Role.COMPLIANCE_OFFICER: "-",
        Role.SUPERVISOR: "-",
        Role.QA_EVALUATOR: "-",
        Role.AGENT: "-",
        Role.AUDITOR: "-",
    },
    Action.RULES_VIEW: {
        Role.ADMIN: "all",
        Role.COMPLIANCE_OFFICER: "all",
        Role.SUPERVISOR: "-",
        Role.QA_EVALUATOR: "-",
        Role.AGENT: "-",
        Role.AUDITOR: "all",
    },
    Action.RULES_MANAGE: {
        Role.ADMIN: "all",
        Role.COMPLIANCE_OFFICER: "all",
        Role.SUPERVISOR: "-",
        Role.QA_EVALUATOR: "-",
        Role.AGENT: "-",
        Role.AUDITOR: "-",
    },
    Action.QA_FORM_MANAGE: {
        Role.ADMIN: "all",
        Role.COMPLIANCE_OFFICER: "-",
        Role.SUPERVISOR: "all",
        Role.QA_EVALUATOR: "all",
        Role.AGENT: "-",
        Role.AUDITOR: "-",
    },
    Action.QA_EVALUATE: {
        Role.ADMIN: "all",
        Role.COMPLIANCE_OFFICER: "-",
        Role.SUPERVISOR: "team",
        Role.QA_EVALUATOR: "team",
        Role.AGENT: "-",
        Role.AUDITOR: "-",
    },
    Action.QA_VIEW: {
        Role.ADMIN: "all",
        Role.COMPLIANCE_OFFICER: "all",
        Role.SUPERVISOR: "team",
        Role.QA_EVALUATOR: "team",
        Role.AGENT: "own",
        Role.AUDITOR: "-",
    },
    Action.QA_DISPUTE: {
        Role.ADMIN: "-",
        Role.COMPLIANCE_OFFICER: "-",
        Role.SUPERVISOR: "-",
        Role.QA_EVALUATOR: "-",
        Role.AGENT: "own",
        Role.AUDITOR: "-",
    },
    Action.QA_REVIEW: {
        Role.ADMIN: "all",
        Role.COMPLIANCE_OFFICER: "-",
        Role.SUPERVISOR: "team",
        Role.QA_EVALUATOR: "team",
        Role.AGENT: "-",
        Role.AUDITOR: "-",
    },
    Action.QA_COACH: {
        Role.ADMIN: "all",
        Role.COMPLIANCE_OFFICER: "-",
        Role.SUPERVISOR: "team",
        Role.QA_EVALUATOR: "team",
        Role.AGENT: "-",
        Role.AUDITOR: "-",
    },
    Action.QA_LIBRARY: {
        Role.ADMIN: "all",
        Role.COMPLIANCE_OFFICER: "all",
        Role.SUPERVISOR: "team",
        Role.QA_EVALUATOR: "team",
        Role.AGENT: "own",
        Role.AUDITOR: "-",
    },
    Action.QA_CLIP_EXPORT: {
        Role.ADMIN: "all",
        Role.COMPLIANCE_OFFICER: "all",
        Role.SUPERVISOR: "-",
        Role.QA_EVALUATOR: "-",
        Role.AGENT: "-",
        Role.AUDITOR: "-",
    },
    Action.JOB_VIEW: {
        Role.ADMIN: "all",
        Role.COMPLIANCE_OFFICER: "all",
        Role.SUPERVISOR: "-",
        Role.QA_EVALUATOR: "-",
        Role.AGENT: "-",
        Role.AUDITOR: "-",
    },
    Action.JOB_MANAGE: {
        Role.ADMIN: "all",
        Role.COMPLIANCE_OFFICER: "all",
        Role.SUPERVISOR: "-",
        Role.QA_EVALUATOR: "-",
        Role.AGENT: "-",
        Role.AUDITOR: "-",
    },
}
# An integration account (a CTI or payment system's service account) controls live calls, sends
# call records and nothing else: every cell it is not written into above is "-".

CELLS = [(action, role) for action in Action for role in Role]


@pytest.mark.parametrize(("action", "role"), CELLS, ids=[f"{a.value}-{r.value}" for a, r in CELLS])
def test_policy_cell(action: Action, role: Role) -> None:
    scope = allowed(Principal(1, "x", role, 1), action)
    expected = EXPECTED[action].get(role, "-") if role is Role.INTEGRATION else EXPECTED[action][role]
    assert (scope.value if scope else "-") == expected


def test_policy_covers_every_action() -> None:
    assert set(POLICY) == set(Action) == set(EXPECTED)


# Who, by the matrix, may reach alice's (red team) recording for each recording action.
REACHES_ALICES = {
    "alice": {"view", "play"},
    "bob": set(),
    "dana": set(),  # same team as alice, but "own" scope is the agent's own calls only
    "sam": {"view", "play", "download"},
    "quinn": set(),
    "carol": {"view", "play", "download"},
    "audrey": {"view"},
}
DENIED_OUTRIGHT = {  # role may never do it: PermissionDenied, which reveals nothing about the recording
    "alice": {"download"},
    "bob": {"download"},
    "dana": {"download"},
    "quinn": {"download"},
    "audrey": {"play", "download"},
}


def test_recording_actions_enforced_in_the_service_layer(ctx: ServiceContext) -> None:
    staff = create_staff(ctx)
    wav = stereo_wav(voice(1, 8000, 120, 1), voice(1, 8000, 200, 2), 8000)
    recording_id = ctx.importer.import_bytes(staff.principals["carol"], wav, ImportRequest(agent="alice"))
    for name, principal in staff.principals.items():
        for verb in ("view", "play", "download"):

            def attempt(principal: Principal = principal, verb: str = verb) -> object:
                if verb == "view":
                    return ctx.search.get(principal, recording_id)
                return ctx.playback.open_audio(principal, recording_id, download=verb == "download")

            if verb in REACHES_ALICES[name]:
                attempt()
            elif verb in DENIED_OUTRIGHT.get(name, set()):
                with pytest.raises(PermissionDenied):
                    attempt()
            else:
                with pytest.raises(NotFound):
                    attempt()
        found = {item["id"] for item in ctx.search.search(principal, RecordingQuery()).items}
        assert (recording_id in found) == ("view" in REACHES_ALICES[name]), name
    with pytest.raises(PermissionDenied):
        ctx.importer.import_bytes(staff.principals["alice"], wav, ImportRequest())
    with pytest.raises(PermissionDenied):
        ctx.access_log.list(staff.principals["sam"])
    with pytest.raises(PermissionDenied):
        ctx.key_rotation.rotate(staff.principals["carol"])
    with pytest.raises(PermissionDenied):
        ctx.users.create_user(staff.principals["sam"], "mallory", "admin")


@pytest.mark.parametrize(
    ("text", "role"),
    [
        ("admin", Role.ADMIN),
        (" Compliance-Officer ", Role.COMPLIANCE_OFFICER),
        ("qa evaluator", Role.QA_EVALUATOR),
        ("QA_EVALUATOR", Role.QA_EVALUATOR),
    ],
)
def test_role_names_are_parsed_leniently(text: str, role: Role) -> None:
    assert Role.parse(text) is role


def test_unknown_role_lists_the_choices() -> None:
    choices = "admin, compliance_officer, supervisor, qa_evaluator, agent, auditor, integration"
    with pytest.raises(InvalidInput, match=re.escape(f"unknown role 'overlord'; choose one of {choices}")):
        Role.parse("overlord")


def test_refusals_say_why_and_reveal_nothing(ctx: ServiceContext) -> None:
    staff = create_staff(ctx)
    wav = stereo_wav(voice(1, 8000, 120, 1), voice(1, 8000, 200, 2), 8000)
    bobs = ctx.importer.import_bytes(staff.principals["carol"], wav, ImportRequest(agent="bob"))
    with pytest.raises(PermissionDenied, match="^role agent may not recording.download$"):
        require(staff.principals["alice"], Action.RECORDING_DOWNLOAD)
    # Out of scope and non-existent read the same: no id, no owner, no hint.
    for recording_id in (bobs, "00000000-0000-0000-0000-000000000000"):
        with pytest.raises(NotFound, match="^recording not found$"):
            ctx.search.get(staff.principals["alice"], recording_id)


def test_no_team_or_no_user_id_means_no_recordings(ctx: ServiceContext) -> None:
    # A supervisor without a team must not match recordings whose team is also unset
    # (SQL NULL = NULL would be a scope leak), nor an agent principal without a user id
    # the recordings whose agent is unknown.
    wav = stereo_wav(voice(1, 8000, 120, 1), voice(1, 8000, 200, 2), 8000)
    ctx.users.create_user(ADMIN, "carol", "compliance_officer")
    importer = ctx.users.authenticate_token(ctx.users.create_token(ADMIN, "carol", "t"))
    unassigned = ctx.importer.import_bytes(importer, wav, ImportRequest())  # no agent, no team
    ctx.users.create_user(ADMIN, "lonely", "supervisor")
    lonely = ctx.users.authenticate_token(ctx.users.create_token(ADMIN, "lonely", "t"))
    assert lonely.team_id is None
    nobody = Principal(user_id=None, username="ghost", role=Role.AGENT)
    for principal in (lonely, nobody):
        assert ctx.search.search(principal, RecordingQuery()).items == [], principal.username
        with pytest.raises(NotFound):
            ctx.search.get(principal, unassigned)
    assert [i["id"] for i in ctx.search.search(importer, RecordingQuery()).items] == [unassigned]


def test_the_system_principal_is_an_unscoped_admin() -> None:
    system = Principal.system()
    assert (system.user_id, system.username, system.role, system.team_id) == (
        None,
        "system",
        Role.ADMIN,
        None,
    )
