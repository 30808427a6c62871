"""Users, teams, SIP identities, passwords and API tokens.

Passwords are argon2id-hashed. API tokens are 256-bit random strings shown
once; only their SHA-256 is stored, so a stolen catalog grants nothing.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from callvault.db.catalog import Catalog
from callvault.db.models import ApiToken, ServerState, SipIdentity, Team, User
from callvault.errors import AuthenticationFailed, Conflict, InvalidInput, NotFound
from callvault.services.access import Action, Principal, Role, require
from callvault.services.phone import identity_keys

TOKEN_PREFIX = "cv_"
_USERNAME = re.compile(r"^[A-Za-z0-9._@-]{1,120}$")
_hasher = PasswordHasher()
# A constant hash to verify against when the user does not exist, so timing
# does not reveal which usernames are real.
_DUMMY_HASH = _hasher.hash("callvault-timing-equaliser")


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class UserInfo:
    id: int
    username: str
    role: str
    team: str | None
    sip_identities: list[str]


class UserService:
    def __init__(self, catalog: Catalog, region: str) -> None:
        self._catalog = catalog
        self._region = region

    def create_user(
        self,
        actor: Principal,
        username: str,
        role: str,
        team: str | None = None,
        sip_identities: list[str] | None = None,
        password: str | None = None,
        display_name: str | None = None,
    ) -> UserInfo:
        require(actor, Action.USER_MANAGE)
        if not _USERNAME.match(username):
            raise InvalidInput("username must be 1-120 characters of letters, digits, '.', '_', '@', '-'")
        parsed_role = Role.parse(role)
        if password is not None and len(password) < 8:
            raise InvalidInput("password must be at least 8 characters")
        with self._catalog.write() as session:
            if session.scalar(select(User.id).where(User.username == username)) is not None:
                raise Conflict(f"user {username!r} already exists")
            team_row = self._team(session, team) if team else None
            user = User(
                username=username,
                display_name=display_name,
                role=parsed_role.value,
                team=team_row,
                password_hash=_hasher.hash(password) if password else None,
                created_at=datetime.now(UTC),
            )
            session.add(user)
            stored: list[str] = []
            for identity in sip_identities or []:
                key = identity_keys(identity, self._region)[0]
                if not key:
                    raise InvalidInput(f"SIP identity {identity!r} is empty")
                if session.scalar(select(SipIdentity.id).where(SipIdentity.identity == key)) is not None:
                    raise Conflict(f"SIP identity {identity!r} already belongs to another user")
                user.sip_identities.append(SipIdentity(identity=key))
                stored.append(key)
            session.flush()
            return UserInfo(user.id, username, parsed_role.value, team, stored)

    @staticmethod
    def _team(session: Session, name: str) -> Team:
        team = session.scalar(select(Team).where(Team.name == name))
        if team is None:
            team = Team(name=name)
            session.add(team)
            session.flush()
        return team

    def set_password(self, actor: Principal, username: str, password: str) -> None:
        require(actor, Action.USER_MANAGE)
        if len(password) < 8:
            raise InvalidInput("password must be at least 8 characters")
        with self._catalog.write() as session:
            user = session.scalar(select(User).where(User.username == username))
            if user is None:
                raise NotFound(f"user {username!r} not found")
            user.password_hash = _hasher.hash(password)

    def authenticate_password(
        self, username: str, password: str, remote_addr: str | None = None
    ) -> Principal:
        with self._catalog.read() as session:
            user = session.scalar(select(User).where(User.username == username))
            stored = user.password_hash if user is not None and not user.disabled else None
            try:
                _hasher.verify(stored or _DUMMY_HASH, password)
            except (VerificationError, InvalidHashError):
                raise AuthenticationFailed("wrong username or password") from None
            if user is None or stored is None:
                raise AuthenticationFailed("wrong username or password")
            return self._principal(user, remote_addr)

    @staticmethod
    def _principal(user: User, remote_addr: str | None) -> Principal:
        return Principal(user.id, user.username, Role(user.role), user.team_id, remote_addr)

    def create_token(
        self, actor: Principal, username: str, name: str = "api", ttl: timedelta | None = None
    ) -> str:
        """Issue a token for ``username`` (admins for anyone, users for themselves)."""
        if actor.username != username:
            require(actor, Action.USER_MANAGE)
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        now = datetime.now(UTC)
        with self._catalog.write() as session:
            user = session.scalar(select(User).where(User.username == username))
            if user is None or user.disabled:
                raise NotFound(f"user {username!r} not found")
            session.add(
                ApiToken(
                    user_id=user.id,
                    name=name[:120],
                    token_hash=_hash_token(token),
                    created_at=now,
                    expires_at=now + ttl if ttl else None,
                )
            )
        return token

    def revoke_token(self, actor: Principal, token: str) -> None:
        with self._catalog.write() as session:
            row = session.scalar(select(ApiToken).where(ApiToken.token_hash == _hash_token(token)))
            if row is None:
                raise NotFound("token not found")
            if actor.user_id != row.user_id:
                require(actor, Action.USER_MANAGE)
            row.revoked_at = datetime.now(UTC)

    def authenticate_token(self, token: str, remote_addr: str | None = None) -> Principal:
        if not token.startswith(TOKEN_PREFIX):
            raise AuthenticationFailed("invalid or expired token")
        with self._catalog.read() as session:
            row = session.scalar(select(ApiToken).where(ApiToken.token_hash == _hash_token(token)))
            now = datetime.now(UTC)
            if (
                row is None
                or row.revoked_at is not None
                or (row.expires_at is not None and _aware(row.expires_at) < now)
                or row.user.disabled
            ):
                raise AuthenticationFailed("invalid or expired token")
            return self._principal(row.user, remote_addr)

    def list_users(self, actor: Principal) -> list[UserInfo]:
        require(actor, Action.USER_MANAGE)
        with self._catalog.read() as session:
            users = session.scalars(select(User).order_by(User.username)).all()
            return [
                UserInfo(
                    u.id,
                    u.username,
                    u.role,
                    u.team.name if u.team else None,
                    [s.identity for s in u.sip_identities],
                )
                for u in users
            ]

    def ensure_initial_admin(self) -> str | None:
        """On first start create ``admin`` with a random password and return it (once, ever)."""
        with self._catalog.write() as session:
            if session.get(ServerState, "initial_admin_created") is not None:
                return None
            password = secrets.token_urlsafe(18)
            if session.scalar(select(User.id).where(User.username == "admin")) is None:
                session.add(
                    User(
                        username="admin",
                        role=Role.ADMIN.value,
                        password_hash=_hasher.hash(password),
                        created_at=datetime.now(UTC),
                    )
                )
            else:
                password = ""
            session.add(ServerState(key="initial_admin_created", value=datetime.now(UTC).isoformat()))
            return password or None


def _aware(value: datetime) -> datetime:
    # SQLite hands back naive datetimes even for timezone-aware columns.
    return value if value.tzinfo else value.replace(tzinfo=UTC)
