"""Browser sessions: a sign-in is an API token kept in an HttpOnly cookie, with an idle timeout.

A session is an ordinary token of the account (so revoking the account's
tokens, disabling the account or the token lifetime limit end it too), named
``web session`` so that an API token pasted into a cookie is refused. Each
request that carries it moves its ``last_used_at`` forward (at most once a
minute: a write per request would cost more than the page); a session unused
for the idle timeout is revoked and the user signs in again.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from callvault.db.catalog import Catalog
from callvault.db.models import ApiToken
from callvault.errors import AuthenticationFailed
from callvault.services.access import Principal
from callvault.services.audit import AccessLog
from callvault.services.users import UserService, token_hash

SESSION_NAME = "web session"
_TOUCH_EVERY = timedelta(seconds=60)


def csrf_token(session_token: str) -> str:
    """The form token of a session: derived from its secret, which scripts cannot read."""
    return hmac.new(session_token.encode(), b"callvault-csrf", hashlib.sha256).hexdigest()


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


class WebSessions:
    def __init__(
        self,
        catalog: Catalog,
        users: UserService,
        access_log: AccessLog,
        idle_timeout: timedelta,
        lifetime: timedelta,
    ) -> None:
        self._catalog = catalog
        self._users = users
        self._log = access_log
        self.idle_timeout = idle_timeout
        self.lifetime = lifetime

    def sign_in(self, username: str, password: str, remote_addr: str | None) -> tuple[str, Principal]:
        """Check the password (throttled, failures audited) and open a session."""
        principal = self._users.authenticate_password(username, password, remote_addr)
        issued = self._users.issue_token(principal, principal.username, SESSION_NAME, self.lifetime)
        self._log.record(principal, "login", detail="web session")
        return issued.token, principal

    def resume(self, token: str, remote_addr: str | None) -> Principal:
        """The principal of a live session; an idle one is revoked (audited) and refused."""
        principal = self._users.authenticate_token(token, remote_addr)
        now = datetime.now(UTC)
        with self._catalog.read() as session:
            row = session.scalar(select(ApiToken).where(ApiToken.token_hash == token_hash(token)))
            if row is None or row.name != SESSION_NAME:
                raise AuthenticationFailed("not a web session")
            last = _aware(row.last_used_at or row.created_at)
        if now - last > self.idle_timeout:
            self._end(token, principal, "session_expired", "idle timeout")
            raise AuthenticationFailed("your session ended after inactivity; sign in again")
        if now - last > _TOUCH_EVERY:
            with self._catalog.write() as session:
                row = session.scalar(select(ApiToken).where(ApiToken.token_hash == token_hash(token)))
                if row is not None:
                    row.last_used_at = now
        return principal

    def sign_out(self, token: str, principal: Principal) -> None:
        self._end(token, principal, "logout", "web session")

    def _end(self, token: str, principal: Principal, action: str, detail: str) -> None:
        with self._catalog.write() as session:
            row = session.scalar(select(ApiToken).where(ApiToken.token_hash == token_hash(token)))
            if row is not None and row.revoked_at is None:
                row.revoked_at = datetime.now(UTC)
                self._log.record_in(session, principal, action, detail=detail)
