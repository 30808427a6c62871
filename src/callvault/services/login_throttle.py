"""Login throttling: per username and per client address, with exponential lock-out.

State lives in the catalog (table ``login_throttle``) rather than in memory so
that several API worker processes, the CLI and a restart all see the same
counts: an attacker gains nothing by spreading guesses over workers or by
waiting for a restart.

Each key keeps the times of its last N failures (a sliding window of bounded
size). N failures inside the window lock the key for ``lockout`` seconds; each
further lock-out of the same key doubles that, up to a day. A successful login
clears the username's record but not the address's, so an attacker with one
valid account cannot reset the address counter while spraying other names.
Unknown usernames are throttled exactly like real ones: a lock-out says
nothing about whether the user exists.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import and_, delete, or_, select
from sqlalchemy.exc import IntegrityError

from callvault.db.catalog import Catalog
from callvault.db.models import LoginThrottle as ThrottleRow
from callvault.errors import TooManyAttempts

MAX_LOCKOUT = timedelta(days=1)
# A key's lock-out level is forgotten after this long without failures.
_FORGET_AFTER = timedelta(days=1)
USER, ADDRESS = "user", "addr"


@dataclass(frozen=True)
class ThrottlePolicy:
    max_failures: int = 5
    max_address_failures: int = 20
    window: timedelta = timedelta(minutes=15)
    lockout: timedelta = timedelta(minutes=15)


@dataclass(frozen=True)
class Lockout:
    """A lock-out that has just started."""

    scope: str
    key: str
    seconds: int
    failures: int


def _aware(value: datetime) -> datetime:
    # SQLite hands back naive datetimes even for timezone-aware columns.
    return value if value.tzinfo else value.replace(tzinfo=UTC)


class LoginThrottle:
    def __init__(
        self,
        catalog: Catalog,
        policy: ThrottlePolicy,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._catalog = catalog
        self.policy = policy
        self._clock = clock

    def _keys(self, username: str, address: str | None) -> list[tuple[str, str, int]]:
        keys = [(USER, username[:120], self.policy.max_failures)]
        if address:
            keys.append((ADDRESS, address[:120], self.policy.max_address_failures))
        return keys

    def check(self, username: str, address: str | None) -> None:
        """Raise :class:`TooManyAttempts` while the username or the address is locked out."""
        now = self._clock()
        wanted = [
            and_(ThrottleRow.scope == s, ThrottleRow.key == k) for s, k, _ in self._keys(username, address)
        ]
        with self._catalog.read() as session:
            rows = session.scalars(select(ThrottleRow).where(or_(*wanted))).all()
            until = [_aware(r.locked_until) for r in rows if r.locked_until is not None]
        locked = [u for u in until if u > now]
        if locked:
            wait = math.ceil((max(locked) - now).total_seconds())
            # The same words for a username and an address lock-out, real user or not.
            raise TooManyAttempts(f"too many failed logins; try again in {wait} s", retry_after=wait)

    def failed(self, username: str, address: str | None) -> list[Lockout]:
        """Count a failed login; return the lock-outs it started."""
        for attempt in range(3):
            try:
                return self._failed(username, address)
            except IntegrityError:
                # Two workers inserted the first failure of the same key at once: the
                # loser retries and now finds the row.
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _failed(self, username: str, address: str | None) -> list[Lockout]:
        now = self._clock()
        stamp = now.timestamp()
        started: list[Lockout] = []
        with self._catalog.write() as session:
            for scope, key, limit in self._keys(username, address):
                row = session.get(ThrottleRow, (scope, key), with_for_update=True)
                if row is None:
                    row = ThrottleRow(scope=scope, key=key, failures=[], lockouts=0, updated_at=now)
                    session.add(row)
                if now - _aware(row.updated_at) > _FORGET_AFTER:
                    row.lockouts = 0
                window_start = stamp - self.policy.window.total_seconds()
                recent = [t for t in row.failures or [] if t > window_start] + [stamp]
                row.failures = recent[-limit:]
                row.updated_at = now
                still_locked = row.locked_until is not None and _aware(row.locked_until) > now
                if len(recent) >= limit and not still_locked:
                    length = min(self.policy.lockout * (2 ** min(row.lockouts, 20)), MAX_LOCKOUT)
                    row.locked_until = now + length
                    row.lockouts += 1
                    row.failures = []
                    started.append(Lockout(scope, key, int(length.total_seconds()), len(recent)))
                session.flush()
            stale = now - max(self.policy.window, _FORGET_AFTER)
            session.execute(
                delete(ThrottleRow).where(
                    ThrottleRow.updated_at < stale,
                    or_(ThrottleRow.locked_until.is_(None), ThrottleRow.locked_until < now),
                )
            )
        return started

    def succeeded(self, username: str) -> None:
        """A correct password clears the username's failures and lock-out level."""
        with self._catalog.write() as session:
            session.execute(
                delete(ThrottleRow).where(ThrottleRow.scope == USER, ThrottleRow.key == username[:120])
            )
