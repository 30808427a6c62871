"""Changing an account: its role, its team and (for agents) the SIP identities that tie calls to it.

:meth:`callvault.services.users.UserService.update_user` runs this inside one
write transaction, so a refused change (an identity that belongs to someone
else, an unknown role) leaves the account as it was. What changes applies at
the user's next request: every request builds its principal from the account
row (role, team), and the agent directory forgets the identities that moved.

Rules beyond the table's constraints:

* an administrator cannot take the admin role from their own account (the last
  admin could otherwise lock everyone out of the admin pages);
* identities are stored by their lookup key (``sip:1001@pbx`` and ``1001`` are
  the same agent), a duplicate in the list is one identity, and one owned by
  another account is refused (409) rather than moved silently.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from callvault.db.models import SipIdentity, Team, User
from callvault.errors import Conflict, InvalidInput
from callvault.services.access import Principal, Role
from callvault.services.phone import identity_keys

MAX_IDENTITIES = 50


@dataclass
class UserEdit:
    """What to change; None leaves it as it is (``team=""`` removes the team)."""

    role: str | None = None
    team: str | None = None
    sip_identities: list[str] | None = None


@dataclass
class EditOutcome:
    changes: list[str] = field(default_factory=list)  # for the audit entry: "role=agent->supervisor"
    moved_identities: list[str] = field(default_factory=list)  # added or removed: the directory forgets them


def team_named(session: Session, name: str) -> Team:
    team = session.scalar(select(Team).where(Team.name == name))
    if team is None:
        team = Team(name=name)
        session.add(team)
        session.flush()
    return team


def apply_edit(session: Session, actor: Principal, user: User, edit: UserEdit, region: str) -> EditOutcome:
    outcome = EditOutcome()
    if edit.role is not None:
        role = Role.parse(edit.role).value
        if role != user.role and actor.user_id == user.id and user.role == Role.ADMIN.value:
            raise Conflict("you cannot take the admin role from your own account")
        if role != user.role:
            outcome.changes.append(f"role={user.role}->{role}")
            user.role = role
    if edit.team is not None:
        name = edit.team.strip()
        if len(name) > 120:
            raise InvalidInput("team: at most 120 characters")
        before = user.team.name if user.team else ""
        if name != before:
            user.team = team_named(session, name) if name else None
            outcome.changes.append(f"team={before or '-'}->{name or '-'}")
    if edit.sip_identities is not None:
        _replace_identities(session, user, edit.sip_identities, region, outcome)
    return outcome


def _replace_identities(
    session: Session, user: User, identities: list[str], region: str, outcome: EditOutcome
) -> None:
    if len(identities) > MAX_IDENTITIES:
        raise InvalidInput(f"sip_identities: at most {MAX_IDENTITIES}")
    wanted: list[str] = []
    for identity in identities:
        if not isinstance(identity, str) or len(identity) > 255:
            raise InvalidInput("sip_identities: a list of AORs, extensions or numbers")
        key = identity_keys(identity, region)[0] if identity.strip() else ""
        if not key:
            raise InvalidInput(f"SIP identity {identity[:60]!r} is empty")
        if key not in wanted:
            wanted.append(key)
    current = {row.identity: row for row in user.sip_identities}
    for key in wanted:
        if key in current:
            continue
        owner = session.scalar(select(SipIdentity.user_id).where(SipIdentity.identity == key))
        if owner is not None:
            raise Conflict(f"SIP identity {key!r} already belongs to another user")
        user.sip_identities.append(SipIdentity(identity=key))
        outcome.moved_identities.append(key)
    for key, row in current.items():
        if key not in wanted:
            user.sip_identities.remove(row)
            session.delete(row)
            outcome.moved_identities.append(key)
    if outcome.moved_identities:
        outcome.changes.append(f"identities={len(current)}->{len(wanted)}")
