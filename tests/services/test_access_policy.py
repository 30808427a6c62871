"""The actions × roles table, cell by cell, against the documented matrix and real services."""

from __future__ import annotations

import pytest

from callvault.errors import NotFound, PermissionDenied
from callvault.services.access import POLICY, Action, Principal, Role, allowed
from callvault.services.context import ServiceContext
from callvault.services.importer import ImportRequest
from callvault.services.search import RecordingQuery
from tests.support.audio import stereo_wav, voice
from tests.support.people import create_staff

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
}

CELLS = [(action, role) for action in Action for role in Role]


@pytest.mark.parametrize(("action", "role"), CELLS, ids=[f"{a.value}-{r.value}" for a, r in CELLS])
def test_policy_cell(action: Action, role: Role) -> None:
    scope = allowed(Principal(1, "x", role, 1), action)
    assert (scope.value if scope else "-") == EXPECTED[action][role]


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
