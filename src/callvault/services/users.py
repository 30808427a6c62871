"""Users, teams, SIP identities, passwords and API tokens.

Passwords are argon2id-hashed and must pass :mod:`callvault.services.passwords`.
API tokens are 256-bit random strings shown once; only their SHA-256 is
stored, so a stolen catalog grants nothing. Every token expires: its lifetime
is clamped to ``token_max_lifetime_hours``, and lowering that setting later
shortens tokens already issued. Logins are throttled per username and client
address (:mod:`callvault.services.login_throttle`) and every failure is written
to the access trail, without the password.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from callvault.db.catalog import Catalog
from callvault.db.models import ApiToken, ServerState, SipIdentity, Team, User
from callvault.errors import AuthenticationFailed, Conflict, InvalidInput, NotFound, TooManyAttempts
from callvault.services.access import Action, Principal, Role, require
from callvault.services.audit import AccessLog
from callvault.services.login_throttle import LoginThrottle, ThrottlePolicy
from callvault.services.passwords import MAX_PASSWORD_LENGTH, check_password
from callvault.services.phone import identity_keys
from callvault.services.user_edit import UserEdit, apply_edit
from callvault.settings import Settings

log = logging.getLogger(__name__)
TOKEN_PREFIX = "cv_"
_USERNAME = re.compile(r"^[A-Za-z0-9._@-]{1,120}$")
_hasher = PasswordHasher()


@functools.cache
def _dummy_hash() -> str:
    """A constant hash to verify against when the user does not exist, so timing does not
    reveal which usernames are real. Made on first use: hashing costs ~0.5 s of CPU, which
    every CLI command and worker process would otherwise pay at import."""
    return _hasher.hash("callvault-timing-equaliser")


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class AccountPolicy:
    password_min_length: int = 12
    token_max_lifetime: timedelta = timedelta(days=90)
    throttle: ThrottlePolicy = field(default_factory=ThrottlePolicy)


def account_policy(settings: Settings) -> AccountPolicy:
    return AccountPolicy(
        password_min_length=settings.password_min_length,
        token_max_lifetime=timedelta(hours=settings.token_max_lifetime_hours),
        throttle=ThrottlePolicy(
            max_failures=settings.login_max_failures,
            max_address_failures=settings.login_max_address_failures,
            window=timedelta(seconds=settings.login_failure_window),
            lockout=timedelta(seconds=settings.login_lockout_seconds),
        ),
    )


@dataclass(frozen=True)
class UserInfo:
    id: int
    username: str
    role: str
    team: str | None
    sip_identities: list[str]
    disabled: bool = False
    must_record: bool = False


@dataclass(frozen=True)
class IssuedToken:
    token: str
    expires_at: datetime


@dataclass(frozen=True)
class TokenInfo:
    """A token as admins see it: never the token itself."""

    id: int
    name: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None and self.expires_at > datetime.now(UTC)


class UserService:
    def __init__(
        self,
        catalog: Catalog,
        region: str,
        access_log: AccessLog | None = None,
        policy: AccountPolicy | None = None,
        *,
        on_identities_added: Callable[[list[str]], None] | None = None,
    ) -> None:
        self._catalog = catalog
        # Told of SIP identities once stored (the agent directory drops what it cached about them).
        self._on_identities_added = on_identities_added
        self._region = region
        self._log = access_log or AccessLog(catalog)
        self.policy = policy or AccountPolicy()
        self.throttle = LoginThrottle(catalog, self.policy.throttle)

    def check_password(self, password: str, username: str) -> None:
        check_password(password, username, self.policy.password_min_length)

    def create_user(
        self,
        actor: Principal,
        username: str,
        role: str,
        team: str | None = None,
        sip_identities: list[str] | None = None,
        password: str | None = None,
        display_name: str | None = None,
        must_record: bool = False,
    ) -> UserInfo:
        require(actor, Action.USER_MANAGE)
        if not _USERNAME.match(username):
            raise InvalidInput("username must be 1-120 characters of letters, digits, '.', '_', '@', '-'")
        parsed_role = Role.parse(role)
        if password is not None:
            self.check_password(password, username)
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
                must_record=must_record,
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
            detail = f"user={username} role={parsed_role.value} team={team or '-'} identities={len(stored)}"
            if must_record:
                detail += " must_record=true"
            self._log.record_in(session, actor, "user_create", detail=detail)
            info = UserInfo(user.id, username, parsed_role.value, team, stored, must_record=must_record)
        if stored and self._on_identities_added is not None:
            self._on_identities_added(stored)
        return info

    @staticmethod
    def _team(session: Session, name: str) -> Team:
        team = session.scalar(select(Team).where(Team.name == name))
        if team is None:
            team = Team(name=name)
            session.add(team)
            session.flush()
        return team

    def set_password(self, actor: Principal, username: str, password: str, must_change: bool = False) -> None:
        """An administrator sets ``username``'s password (``must_change``: a one-time password)."""
        require(actor, Action.USER_MANAGE)
        self.check_password(password, username)
        with self._catalog.write() as session:
            user = self._user(session, username)
            user.password_hash = _hasher.hash(password)
            user.must_change_password = must_change
        self._log.record(actor, "password_set", detail=f"user={username}")

    def change_own_password(self, principal: Principal, current: str, new: str) -> None:
        """The caller replaces their own password; the current one is checked (and throttled)."""
        if principal.user_id is None:
            raise InvalidInput("only user accounts have a password")
        self.authenticate_password(principal.username, current, principal.remote_addr)
        if new == current:
            raise InvalidInput("the new password must differ from the current one")
        self.check_password(new, principal.username)
        with self._catalog.write() as session:
            user = session.get(User, principal.user_id)
            if user is None:
                raise NotFound("user not found")
            user.password_hash = _hasher.hash(new)
            user.must_change_password = False
        self._log.record(principal, "password_change")

    def authenticate_password(
        self, username: str, password: str, remote_addr: str | None = None
    ) -> Principal:
        """Check a password; throttled per username and address, failures audited."""
        try:
            self.throttle.check(username, remote_addr)
        except TooManyAttempts:
            self._log.record_event(
                "login", "locked", username=username, remote_addr=remote_addr, detail="refused while locked"
            )
            raise
        with self._catalog.read() as session:
            user = session.scalar(select(User).where(User.username == username))
            stored = user.password_hash if user is not None and not user.disabled else None
            try:
                ok = len(password) <= MAX_PASSWORD_LENGTH and _hasher.verify(
                    stored or _dummy_hash(), password
                )
            except (VerificationError, InvalidHashError):
                ok = False
            principal = self._principal(user, remote_addr) if ok and user is not None and stored else None
        if principal is None:
            self._failed_login(username, user.id if user is not None else None, remote_addr)
            raise AuthenticationFailed("wrong username or password")
        self.throttle.succeeded(username)
        return principal

    def _failed_login(self, username: str, user_id: int | None, remote_addr: str | None) -> None:
        lockouts = self.throttle.failed(username, remote_addr)
        self._log.record_event("login", "failed", username=username, user_id=user_id, remote_addr=remote_addr)
        # %r: the username is whatever the client sent; repr keeps it on one line.
        log.info("failed login for %r from %s", username[:120], remote_addr)
        for lockout in lockouts:
            what = "username" if lockout.scope == "user" else "client address"
            self._log.record_event(
                "login_lockout",
                "locked",
                username=username,
                user_id=user_id,
                remote_addr=remote_addr,
                detail=f"{what} locked for {lockout.seconds} s after {lockout.failures} failed logins",
            )
            log.warning("%s %r locked for %d s after failed logins", what, lockout.key, lockout.seconds)

    @staticmethod
    def _principal(user: User, remote_addr: str | None) -> Principal:
        return Principal(
            user.id,
            user.username,
            Role(user.role),
            user.team_id,
            remote_addr,
            must_change_password=bool(user.must_change_password),
        )

    @staticmethod
    def _user(session: Session, username: str) -> User:
        user = session.scalar(select(User).where(User.username == username))
        if user is None:
            raise NotFound(f"user {username!r} not found")
        return user

    def create_token(
        self, actor: Principal, username: str, name: str = "api", ttl: timedelta | None = None
    ) -> str:
        """Issue a token for ``username`` (admins for anyone, users for themselves)."""
        return self.issue_token(actor, username, name, ttl).token

    def issue_token(
        self, actor: Principal, username: str, name: str = "api", ttl: timedelta | None = None
    ) -> IssuedToken:
        """Like :meth:`create_token`, also returning the expiry (``ttl`` clamped to the maximum)."""
        if actor.username != username:
            require(actor, Action.USER_MANAGE)
        lifetime = min(ttl, self.policy.token_max_lifetime) if ttl else self.policy.token_max_lifetime
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
                    token_hash=token_hash(token),
                    created_at=now,
                    expires_at=now + lifetime,
                )
            )
            detail = (
                f"user={username} name={name[:120]} expires={(now + lifetime).isoformat(timespec='seconds')}"
            )
            self._log.record_in(session, actor, "token_issue", detail=detail)
        return IssuedToken(token, now + lifetime)

    def revoke_token(self, actor: Principal, token: str) -> None:
        with self._catalog.write() as session:
            row = session.scalar(select(ApiToken).where(ApiToken.token_hash == token_hash(token)))
            if row is None:
                raise NotFound("token not found")
            if actor.user_id != row.user_id:
                require(actor, Action.USER_MANAGE)
            row.revoked_at = datetime.now(UTC)
            self._log.record_in(
                session, actor, "token_revoke", detail=f"user_id={row.user_id} token={row.id}"
            )

    def _expiry(self, row: ApiToken) -> datetime:
        # Tokens issued before the maximum existed (or before it was lowered)
        # expire at created_at + maximum.
        limit = _aware(row.created_at) + self.policy.token_max_lifetime
        return min(_aware(row.expires_at), limit) if row.expires_at is not None else limit

    def authenticate_token(self, token: str, remote_addr: str | None = None) -> Principal:
        if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
            raise AuthenticationFailed("invalid or expired token")
        with self._catalog.read() as session:
            row = session.scalar(select(ApiToken).where(ApiToken.token_hash == token_hash(token)))
            if (
                row is None
                or row.revoked_at is not None
                or self._expiry(row) <= datetime.now(UTC)
                or row.user.disabled
            ):
                raise AuthenticationFailed("invalid or expired token")
            return self._principal(row.user, remote_addr)

    def _check_self_or_admin(self, actor: Principal, username: str) -> None:
        if actor.username != username or actor.user_id is None:
            require(actor, Action.USER_MANAGE)

    def list_tokens(self, actor: Principal, username: str) -> list[TokenInfo]:
        """A user's tokens, newest first (the user themselves, or an admin)."""
        self._check_self_or_admin(actor, username)
        with self._catalog.read() as session:
            user = self._user(session, username)
            rows = session.scalars(
                select(ApiToken).where(ApiToken.user_id == user.id).order_by(ApiToken.id.desc())
            ).all()
            return [
                TokenInfo(
                    r.id,
                    r.name,
                    _aware(r.created_at),
                    self._expiry(r),
                    _aware(r.revoked_at) if r.revoked_at else None,
                )
                for r in rows
            ]

    def revoke_user_token(self, actor: Principal, username: str, token_id: int) -> None:
        """Revoke one of ``username``'s tokens by its id (from :meth:`list_tokens`)."""
        self._check_self_or_admin(actor, username)
        with self._catalog.write() as session:
            user = self._user(session, username)
            row = session.get(ApiToken, token_id)
            if row is None or row.user_id != user.id:
                raise NotFound(f"user {username!r} has no token {token_id}")
            if row.revoked_at is None:
                row.revoked_at = datetime.now(UTC)
        self._log.record(actor, "token_revoke", detail=f"user={username} token={token_id}")

    def set_disabled(self, actor: Principal, username: str, disabled: bool) -> None:
        """Disable (or enable again) an account: its password and every token stop working."""
        require(actor, Action.USER_MANAGE)
        if disabled and actor.username == username and actor.user_id is not None:
            raise Conflict("you cannot disable your own account")
        with self._catalog.write() as session:
            self._user(session, username).disabled = disabled
        self._log.record(actor, "user_disable" if disabled else "user_enable", detail=f"user={username}")

    def set_must_record(self, actor: Principal, username: str, must_record: bool) -> UserInfo:
        """Mark ``username`` as regulated staff (every call recorded, whatever the rules), or not."""
        require(actor, Action.USER_MANAGE)
        with self._catalog.write() as session:
            user = self._user(session, username)
            changed = bool(user.must_record) != must_record
            user.must_record = must_record
            if changed:
                detail = f"user={username} must_record={'true' if must_record else 'false'}"
                self._log.record_in(session, actor, "user_must_record", detail=detail)
            return _info(user)

    def update_user(self, actor: Principal, username: str, edit: UserEdit) -> UserInfo:
        """Change the role, team and SIP identities of ``username`` (see :mod:`.user_edit`); audited
        as ``user_update`` with what changed, nothing stored when any part is refused."""
        require(actor, Action.USER_MANAGE)
        with self._catalog.write() as session:
            user = self._user(session, username)
            outcome = apply_edit(session, actor, user, edit, self._region)
            session.flush()
            if outcome.changes:
                detail = f"user={username} " + " ".join(outcome.changes)
                self._log.record_in(session, actor, "user_update", detail=detail)
            info = _info(user)
        if outcome.moved_identities and self._on_identities_added is not None:
            self._on_identities_added(outcome.moved_identities)
        return info

    def list_users(self, actor: Principal) -> list[UserInfo]:
        require(actor, Action.USER_MANAGE)
        with self._catalog.read() as session:
            users = session.scalars(select(User).order_by(User.username)).all()
            return [_info(u) for u in users]

    def ensure_initial_admin(self) -> str | None:
        """On first start create ``admin`` with a random one-time password and return it (once, ever).

        The password only allows choosing a new one (``POST /api/v1/auth/password``):
        it is printed on the console, where it may be kept by scroll-back or a log.
        """
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
                        must_change_password=True,
                        created_at=datetime.now(UTC),
                    )
                )
            else:
                password = ""
            session.add(ServerState(key="initial_admin_created", value=datetime.now(UTC).isoformat()))
            return password or None


def _info(user: User) -> UserInfo:
    return UserInfo(
        user.id,
        user.username,
        user.role,
        user.team.name if user.team else None,
        [s.identity for s in user.sip_identities],
        bool(user.disabled),
        bool(user.must_record),
    )


def _aware(value: datetime) -> datetime:
    # SQLite hands back naive datetimes even for timezone-aware columns.
    return value if value.tzinfo else value.replace(tzinfo=UTC)
