"""Users for access tests: two teams, agents linked to SIP identities.

Red has two agents (alice, dana) so that "own" and "team" scopes select different
recordings: a policy that confused them would show dana alice's calls.
"""

from __future__ import annotations

from dataclasses import dataclass

from argon2 import PasswordHasher

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


STAFF_SPECS: list[tuple[str, str, str | None, list[str]]] = [
    ("alice", "agent", "red", ["sip:1001@pbx.example", "+14155550101"]),
    ("bob", "agent", "blue", ["sip:1002@pbx.example"]),
    ("dana", "agent", "red", ["sip:1003@pbx.example"]),
    ("sam", "supervisor", "red", []),
    ("quinn", "qa_evaluator", "blue", []),
    ("carol", "compliance_officer", None, []),
    ("audrey", "auditor", None, []),
]


def create_staff(ctx: ServiceContext) -> Staff:
    tokens: dict[str, str] = {}
    principals: dict[str, Principal] = {}
    for name, role, team, identities in STAFF_SPECS:
        ctx.users.create_user(
            ADMIN, name, role, team=team, sip_identities=identities, password=password_of(name)
        )
        tokens[name] = ctx.users.create_token(ADMIN, name, "test")
        principals[name] = ctx.users.authenticate_token(tokens[name])
    return Staff(tokens, principals)


class FixtureHashCache(PasswordHasher):
    """The real argon2 hasher, but each staff password above is hashed once per test session.

    Hashing costs ~0.3 s of CPU; ``create_staff`` runs for most API tests and would hash
    seven passwords each time. The cached hashes are real argon2id hashes (logins still
    verify them for real); every other password, such as those the account tests set, is
    hashed afresh with its own salt.
    """

    def __init__(self, real: PasswordHasher) -> None:
        super().__init__(
            time_cost=real.time_cost,
            memory_cost=real.memory_cost,
            parallelism=real.parallelism,
            hash_len=real.hash_len,
            salt_len=real.salt_len,
            encoding=real.encoding,
            type=real.type,
        )
        self._cached = {password_of(name): "" for name, *_ in STAFF_SPECS}

    def hash(self, password: str | bytes, *, salt: bytes | None = None) -> str:
        if not isinstance(password, str) or password not in self._cached or salt is not None:
            return super().hash(password, salt=salt)
        if not self._cached[password]:
            self._cached[password] = super().hash(password)
        return self._cached[password]
