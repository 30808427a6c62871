"""The agent directory: which user a SIP identity on a call belongs to.

The one place an identity is resolved to an agent: channel assignment, the
SIPREC session and the catalogue all ask :meth:`AgentDirectory.agent_for`.
Channel assignment asks again on every metadata or stream change, and every
call asks for its agent's team, so answers are cached here, bounded
(:data:`CACHE_ENTRIES`, least recently used out) and short-lived
(:data:`CACHE_SECONDS`); :meth:`AgentDirectory.forget` drops them
when a user's identities change (the user service calls it), so a new agent
is recognised on their next call, not a minute later.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable

from sqlalchemy import select

from callvault.db.catalog import Catalog
from callvault.db.models import SipIdentity, User
from callvault.services.phone import identity_keys

CACHE_ENTRIES = 4096
CACHE_SECONDS = 60.0


class AgentDirectory:
    def __init__(
        self,
        catalog: Catalog,
        region: str,
        *,
        cache_entries: int = CACHE_ENTRIES,
        cache_seconds: float = CACHE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._catalog = catalog
        self._region = region
        self._limit = cache_entries
        self._ttl = cache_seconds
        self._clock = clock
        # identity as given -> (when looked up, its lookup keys, user id or None); called from threads.
        self._cache: OrderedDict[str, tuple[float, frozenset[str], int | None]] = OrderedDict()
        # user id -> (when looked up, team id or None), bounded and short-lived the same way.
        self._teams: OrderedDict[int, tuple[float, int | None]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        """Identities cached now (never more than ``cache_entries``)."""
        return len(self._cache)

    def agent_for(self, identity: str | None) -> int | None:
        """User id of the agent owning this AOR / extension / number, else None."""
        if not identity:
            return None
        now = self._clock()
        with self._lock:
            hit = self._cache.get(identity)
            if hit is not None and now - hit[0] < self._ttl:
                self._cache.move_to_end(identity)
                return hit[2]
        keys = identity_keys(identity, self._region)
        user_id = self._lookup(keys)
        with self._lock:
            self._cache[identity] = (now, frozenset(keys), user_id)
            self._cache.move_to_end(identity)
            while len(self._cache) > self._limit:
                self._cache.popitem(last=False)
        return user_id

    def forget(self, identities: Iterable[str]) -> None:
        """Drop the cached answers these identities change (any spelling that shares a lookup key)."""
        changed: set[str] = set()
        for identity in identities:
            changed.update(identity_keys(identity, self._region))
        with self._lock:
            for cached in [i for i, (_, keys, _) in self._cache.items() if keys & changed]:
                del self._cache[cached]

    def _lookup(self, keys: list[str]) -> int | None:
        with self._catalog.read() as session:
            rows = session.execute(
                select(SipIdentity.identity, SipIdentity.user_id).where(SipIdentity.identity.in_(keys))
            ).all()
        by_key = {identity_key: user_id for identity_key, user_id in rows}
        for key in keys:
            if key in by_key:
                return by_key[key]
        return None

    def resolve_user(self, name_or_identity: str) -> int | None:
        """A username, or any SIP identity of a user."""
        with self._catalog.read() as session:
            user_id = session.scalar(select(User.id).where(User.username == name_or_identity))
        return user_id if user_id is not None else self.agent_for(name_or_identity)

    def team_of(self, user_id: int | None) -> int | None:
        """The agent's team, asked on every call of theirs: cached like :meth:`agent_for`."""
        if user_id is None:
            return None
        now = self._clock()
        with self._lock:
            hit = self._teams.get(user_id)
            if hit is not None and now - hit[0] < self._ttl:
                self._teams.move_to_end(user_id)
                return hit[1]
        with self._catalog.read() as session:
            team_id = session.scalar(select(User.team_id).where(User.id == user_id))
        with self._lock:
            self._teams[user_id] = (now, team_id)
            self._teams.move_to_end(user_id)
            while len(self._teams) > self._limit:
                self._teams.popitem(last=False)
        return team_id

    def identity_of(self, user_id: int) -> str | None:
        """One SIP identity of the user (to attach imported recordings to them)."""
        with self._catalog.read() as session:
            return session.scalar(
                select(SipIdentity.identity)
                .where(SipIdentity.user_id == user_id)
                .order_by(SipIdentity.id)
                .limit(1)
            )
