"""The agent directory: which user a SIP identity on a call belongs to."""

from __future__ import annotations

from sqlalchemy import select

from callvault.db.catalog import Catalog
from callvault.db.models import SipIdentity, User
from callvault.services.phone import identity_keys


class AgentDirectory:
    def __init__(self, catalog: Catalog, region: str) -> None:
        self._catalog = catalog
        self._region = region

    def agent_for(self, identity: str | None) -> int | None:
        """User id of the agent owning this AOR / extension / number, else None."""
        if not identity:
            return None
        keys = identity_keys(identity, self._region)
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
        if user_id is None:
            return None
        with self._catalog.read() as session:
            return session.scalar(select(User.team_id).where(User.id == user_id))

    def identity_of(self, user_id: int) -> str | None:
        """One SIP identity of the user (to attach imported recordings to them)."""
        with self._catalog.read() as session:
            return session.scalar(
                select(SipIdentity.identity)
                .where(SipIdentity.user_id == user_id)
                .order_by(SipIdentity.id)
                .limit(1)
            )
