"""Who may do what: the one table of actions × roles, and recording scope.

The table is the policy; routes and CLI commands never decide access
themselves, they call :func:`require` and :func:`recording_scope`. A recording
outside the caller's scope is reported as :class:`NotFound`, never as
forbidden, so its existence is not revealed.

| action               | admin | compliance_officer | supervisor | qa_evaluator | agent | auditor |
|----------------------|:-----:|:------------------:|:----------:|:------------:|:-----:|:-------:|
| recording.search     |   ✓   |         ✓          |   team     |    team      |  own  |   all¹  |
| recording.view       |   ✓   |         ✓          |   team     |    team      |  own  |   all¹  |
| recording.play       |   ✓   |         ✓          |   team     |    team      |  own  |    –    |
| recording.download   |   ✓   |         ✓          |   team     |     –        |   –   |    –    |
| recording.upload     |   ✓   |         ✓          |   team     |     –        |   –   |    –    |
| recording.destroy    |   ✓   |         ✓          |    –       |     –        |   –   |    –    |
| audit.read           |   ✓   |         ✓          |    –       |     –        |   –   |    ✓    |
| integrity.verify     |   ✓   |         ✓          |    –       |     –        |   –   |    ✓    |
| user.manage          |   ✓   |         –          |    –       |     –        |   –   |    –    |
| keys.rotate          |   ✓   |         –          |    –       |     –        |   –   |    –    |
| retention.manage     |   ✓   |         ✓          |    –       |     –        |   –   |    –    |
| hold.manage          |   ✓   |         ✓          |    –       |     –        |   –   |    –    |
| erasure.manage       |   ✓   |         ✓          |    –       |     –        |   –   |    –    |
| webhook.manage       |   ✓   |         –          |    –       |     –        |   –   |    –    |
| announcement.manage  |   ✓   |         –          |    –       |     –        |   –   |    –    |
| announcement.view    |   ✓   |         ✓          |    –       |     –        |   –   |    ✓    |
| disclosure.report    |   ✓   |         ✓          |    –       |     –        |   –   |    –    |
| call.control         |   ✓   |         –          |   team     |     –        |  own  |    –    |
| consent.manage       |   ✓   |         –          |    –       |     –        |   –   |    –    |
| call_records.submit  |   ✓   |         ✓          |    –       |     –        |   –   |    –    |
| assurance.report     |   ✓   |         ✓          |   team     |     –        |   –   |    ✓    |
| qa.form.manage       |   ✓   |         –          |    ✓       |     ✓        |   –   |    –    |
| qa.evaluate          |   ✓   |         –          |   team     |    team      |   –   |    –    |
| qa.view              |   ✓   |         ✓          |   team     |    team      |  own  |    –    |
| qa.dispute           |   –   |         –          |    –       |     –        |  own  |    –    |
| qa.review            |   ✓   |         –          |   team     |    team      |   –   |    –    |
| qa.coach             |   ✓   |         –          |   team     |    team      |   –   |    –    |
| qa.library           |   ✓   |         ✓          |   team     |    team      | shared|    –    |
| qa.clip.export       |   ✓   |         ✓          |    –       |     –        |   –   |    –    |

¹ Auditors see catalog metadata (who, when, hashes) to check evidence, never audio.

The ``qa.*`` rows are quality management (:mod:`callvault.services.qa_evaluations`
and its neighbours): forms are shared by everyone who manages them; evaluations,
disputes, clips and coaching are scoped by the evaluated call's team and agent;
an agent's ``qa.library`` scope is the clips shared with them or their team.

``call.control`` covers the controls of a call in progress (PCI pause and resume,
keep, consent): the call's agent, their supervisor and admins; and the
``integration`` role, a service account whose tokens a CTI or payment system
uses for every call and which may do nothing else (no search, no audio).
``call_records.submit`` (the PBX/ACD's call records for recording assurance,
and reconciling them) is also open to the ``integration`` role.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import ColumnElement, false, true

from callvault.db.models import Recording
from callvault.errors import InvalidInput, NotFound, PermissionDenied


class Role(StrEnum):
    ADMIN = "admin"
    COMPLIANCE_OFFICER = "compliance_officer"
    SUPERVISOR = "supervisor"
    QA_EVALUATOR = "qa_evaluator"
    AGENT = "agent"
    AUDITOR = "auditor"
    INTEGRATION = "integration"

    @classmethod
    def parse(cls, value: str) -> Role:
        try:
            return cls(value.strip().lower().replace("-", "_").replace(" ", "_"))
        except ValueError:
            names = ", ".join(r.value for r in cls)
            raise InvalidInput(f"unknown role {value!r}; choose one of {names}") from None


class Action(StrEnum):
    RECORDING_SEARCH = "recording.search"
    RECORDING_VIEW = "recording.view"
    RECORDING_PLAY = "recording.play"
    RECORDING_DOWNLOAD = "recording.download"
    RECORDING_UPLOAD = "recording.upload"
    RECORDING_DESTROY = "recording.destroy"
    AUDIT_READ = "audit.read"
    INTEGRITY_VERIFY = "integrity.verify"
    USER_MANAGE = "user.manage"
    KEYS_ROTATE = "keys.rotate"
    RETENTION_MANAGE = "retention.manage"
    HOLD_MANAGE = "hold.manage"
    ERASURE_MANAGE = "erasure.manage"
    WEBHOOK_MANAGE = "webhook.manage"
    ANNOUNCEMENT_MANAGE = "announcement.manage"
    ANNOUNCEMENT_VIEW = "announcement.view"
    DISCLOSURE_REPORT = "disclosure.report"
    CALL_CONTROL = "call.control"
    CONSENT_MANAGE = "consent.manage"
    CALL_RECORDS_SUBMIT = "call_records.submit"
    ASSURANCE_REPORT = "assurance.report"
    RULES_VIEW = "recording_rules.view"
    RULES_MANAGE = "recording_rules.manage"
    # Quality management (qa_* services).
    QA_FORM_MANAGE = "qa.form.manage"
    QA_EVALUATE = "qa.evaluate"
    QA_VIEW = "qa.view"
    QA_DISPUTE = "qa.dispute"
    QA_REVIEW = "qa.review"
    QA_COACH = "qa.coach"
    QA_LIBRARY = "qa.library"
    QA_CLIP_EXPORT = "qa.clip.export"
    # Speech analytics: what was said is as sensitive as the audio it came from.
    TRANSCRIPT_READ = "transcript.read"
    # Hear and read personal data (card numbers, SSNs ...) found in a call; others get it redacted.
    TRANSCRIPT_ORIGINAL = "transcript.original"
    # Background jobs (transcription, analytics ...): see them, cancel and retry them.
    JOB_VIEW = "job.view"
    JOB_MANAGE = "job.manage"


class Scope(StrEnum):
    ALL = "all"
    TEAM = "team"
    OWN = "own"


A, R = Action, Role
POLICY: dict[Action, dict[Role, Scope]] = {
    A.RECORDING_SEARCH: {
        R.ADMIN: Scope.ALL,
        R.COMPLIANCE_OFFICER: Scope.ALL,
        R.SUPERVISOR: Scope.TEAM,
        R.QA_EVALUATOR: Scope.TEAM,
        R.AGENT: Scope.OWN,
        R.AUDITOR: Scope.ALL,
    },
    A.RECORDING_VIEW: {
        R.ADMIN: Scope.ALL,
        R.COMPLIANCE_OFFICER: Scope.ALL,
        R.SUPERVISOR: Scope.TEAM,
        R.QA_EVALUATOR: Scope.TEAM,
        R.AGENT: Scope.OWN,
        R.AUDITOR: Scope.ALL,
    },
    A.RECORDING_PLAY: {
        R.ADMIN: Scope.ALL,
        R.COMPLIANCE_OFFICER: Scope.ALL,
        R.SUPERVISOR: Scope.TEAM,
        R.QA_EVALUATOR: Scope.TEAM,
        R.AGENT: Scope.OWN,
    },
    # Who may hear a call may read what was said in it, within the same scope.
    A.TRANSCRIPT_READ: {
        R.ADMIN: Scope.ALL,
        R.COMPLIANCE_OFFICER: Scope.ALL,
        R.SUPERVISOR: Scope.TEAM,
        R.QA_EVALUATOR: Scope.TEAM,
        R.AGENT: Scope.OWN,
    },
    # Agents and QA evaluators see and hear calls with personal data redacted.
    A.TRANSCRIPT_ORIGINAL: {R.ADMIN: Scope.ALL, R.COMPLIANCE_OFFICER: Scope.ALL, R.SUPERVISOR: Scope.TEAM},
    A.RECORDING_DOWNLOAD: {R.ADMIN: Scope.ALL, R.COMPLIANCE_OFFICER: Scope.ALL, R.SUPERVISOR: Scope.TEAM},
    A.RECORDING_UPLOAD: {R.ADMIN: Scope.ALL, R.COMPLIANCE_OFFICER: Scope.ALL, R.SUPERVISOR: Scope.TEAM},
    A.RECORDING_DESTROY: {R.ADMIN: Scope.ALL, R.COMPLIANCE_OFFICER: Scope.ALL},
    A.AUDIT_READ: {R.ADMIN: Scope.ALL, R.COMPLIANCE_OFFICER: Scope.ALL, R.AUDITOR: Scope.ALL},
    A.INTEGRITY_VERIFY: {R.ADMIN: Scope.ALL, R.COMPLIANCE_OFFICER: Scope.ALL, R.AUDITOR: Scope.ALL},
    A.USER_MANAGE: {R.ADMIN: Scope.ALL},
    A.KEYS_ROTATE: {R.ADMIN: Scope.ALL},
    A.RETENTION_MANAGE: {R.ADMIN: Scope.ALL, R.COMPLIANCE_OFFICER: Scope.ALL},
    A.HOLD_MANAGE: {R.ADMIN: Scope.ALL, R.COMPLIANCE_OFFICER: Scope.ALL},
    A.ERASURE_MANAGE: {R.ADMIN: Scope.ALL, R.COMPLIANCE_OFFICER: Scope.ALL},
    A.WEBHOOK_MANAGE: {R.ADMIN: Scope.ALL},
    A.ANNOUNCEMENT_MANAGE: {R.ADMIN: Scope.ALL},
    A.ANNOUNCEMENT_VIEW: {R.ADMIN: Scope.ALL, R.COMPLIANCE_OFFICER: Scope.ALL, R.AUDITOR: Scope.ALL},
    A.DISCLOSURE_REPORT: {R.ADMIN: Scope.ALL, R.COMPLIANCE_OFFICER: Scope.ALL},
    A.RULES_VIEW: {R.ADMIN: Scope.ALL, R.COMPLIANCE_OFFICER: Scope.ALL, R.AUDITOR: Scope.ALL},
    A.RULES_MANAGE: {R.ADMIN: Scope.ALL, R.COMPLIANCE_OFFICER: Scope.ALL},
    A.CALL_CONTROL: {
        R.ADMIN: Scope.ALL,
        R.SUPERVISOR: Scope.TEAM,
        R.AGENT: Scope.OWN,
        R.INTEGRATION: Scope.ALL,
    },
    A.CONSENT_MANAGE: {R.ADMIN: Scope.ALL},
    # Recording assurance: the PBX's call records in, the report out.
    A.CALL_RECORDS_SUBMIT: {R.ADMIN: Scope.ALL, R.COMPLIANCE_OFFICER: Scope.ALL, R.INTEGRATION: Scope.ALL},
    A.ASSURANCE_REPORT: {
        R.ADMIN: Scope.ALL,
        R.COMPLIANCE_OFFICER: Scope.ALL,
        R.SUPERVISOR: Scope.TEAM,
        R.AUDITOR: Scope.ALL,
    },
    # Quality management.
    A.QA_FORM_MANAGE: {R.ADMIN: Scope.ALL, R.SUPERVISOR: Scope.ALL, R.QA_EVALUATOR: Scope.ALL},
    A.QA_EVALUATE: {R.ADMIN: Scope.ALL, R.SUPERVISOR: Scope.TEAM, R.QA_EVALUATOR: Scope.TEAM},
    A.QA_VIEW: {
        R.ADMIN: Scope.ALL,
        R.COMPLIANCE_OFFICER: Scope.ALL,
        R.SUPERVISOR: Scope.TEAM,
        R.QA_EVALUATOR: Scope.TEAM,
        R.AGENT: Scope.OWN,
    },
    A.QA_DISPUTE: {R.AGENT: Scope.OWN},
    A.QA_REVIEW: {R.ADMIN: Scope.ALL, R.SUPERVISOR: Scope.TEAM, R.QA_EVALUATOR: Scope.TEAM},
    A.QA_COACH: {R.ADMIN: Scope.ALL, R.SUPERVISOR: Scope.TEAM, R.QA_EVALUATOR: Scope.TEAM},
    A.QA_LIBRARY: {
        R.ADMIN: Scope.ALL,
        R.COMPLIANCE_OFFICER: Scope.ALL,
        R.SUPERVISOR: Scope.TEAM,
        R.QA_EVALUATOR: Scope.TEAM,
        R.AGENT: Scope.OWN,
    },
    A.QA_CLIP_EXPORT: {R.ADMIN: Scope.ALL, R.COMPLIANCE_OFFICER: Scope.ALL},
    # Background jobs.
    A.JOB_VIEW: {R.ADMIN: Scope.ALL, R.COMPLIANCE_OFFICER: Scope.ALL},
    A.JOB_MANAGE: {R.ADMIN: Scope.ALL, R.COMPLIANCE_OFFICER: Scope.ALL},
}
del A, R


@dataclass(frozen=True)
class Principal:
    """An authenticated caller."""

    user_id: int | None
    username: str
    role: Role
    team_id: int | None = None
    remote_addr: str | None = None
    # Set while the account still has its one-time password (first-start admin).
    must_change_password: bool = False

    @classmethod
    def system(cls) -> Principal:
        """The server itself and local CLI administration (runs as admin)."""
        return cls(user_id=None, username="system", role=Role.ADMIN)


def allowed(principal: Principal, action: Action) -> Scope | None:
    return POLICY[action].get(principal.role)


def require(principal: Principal, action: Action) -> Scope:
    scope = allowed(principal, action)
    if scope is None:
        raise PermissionDenied(f"role {principal.role.value} may not {action.value}")
    return scope


def recording_scope(principal: Principal, action: Action) -> ColumnElement[bool]:
    """SQL condition restricting ``recordings`` to what ``principal`` may ``action``."""
    scope = require(principal, action)
    if scope is Scope.ALL:
        return true()
    if scope is Scope.TEAM:
        return Recording.team_id == principal.team_id if principal.team_id is not None else false()
    return Recording.agent_user_id == principal.user_id if principal.user_id is not None else false()


def check_recording(principal: Principal, action: Action, recording: Recording | None) -> Recording:
    """Return the recording if ``principal`` may ``action`` it, else NotFound (or PermissionDenied
    when the role may never do ``action``, which reveals nothing about the recording)."""
    scope = require(principal, action)
    if recording is not None and (
        scope is Scope.ALL
        or (scope is Scope.TEAM and principal.team_id is not None and recording.team_id == principal.team_id)
        or (
            scope is Scope.OWN
            and principal.user_id is not None
            and recording.agent_user_id == principal.user_id
        )
    ):
        return recording
    raise NotFound("recording not found")
