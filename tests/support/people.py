"""Users for access tests: two teams, agents linked to SIP identities."""

from __future__ import annotations

from dataclasses import dataclass

from callvault.services.access import Principal, Role
from callvault.services.context import ServiceContext

ADMIN = Principal(user_id=None, username="test-admin", role=Role.ADMIN)


def password_of(name: str) -> str:
    """The test password of ``name`` (long and uncommon enough for the password policy)."""
    return f"{name}-vault-passphrase"


@dataclass
class Staff:
    tokens: dict[str, str]
    principals: dict[str, Principal]


def create_staff(ctx: ServiceContext) -> Staff:
    specs = [
        ("alice", "agent", "red", ["sip:1001@pbx.example", "+14155550101"]),
        ("bob", "agent", "blue", ["sip:1002@pbx.example"]),
        ("sam", "supervisor", "red", []),
        ("quinn", "qa_evaluator", "blue", []),
        ("carol", "compliance_officer", None, []),
        ("audrey", "auditor", None, []),
    ]
    tokens: dict[str, str] = {}
    principals: dict[str, Principal] = {}
    for name, role, team, identities in specs:
        ctx.users.create_user(
            ADMIN, name, role, team=team, sip_identities=identities, password=password_of(name)
        )
        tokens[name] = ctx.users.create_token(ADMIN, name, "test")
        principals[name] = ctx.users.authenticate_token(tokens[name])
    return Staff(tokens, principals)
