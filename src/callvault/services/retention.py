"""Retention: policies, what would go (preview), and the sweep that deletes what is due.

Policies are validated as a whole: an unknown condition, a bad value or a second
policy with exactly the same conditions (which of the two would apply?) is
refused with nothing stored. The sweep first finishes deletions a killed run
left pending, then deletes, batch by batch, every recording whose longest
matching policy has passed and which no hold covers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError as DbIntegrityError

from callvault.db.catalog import Catalog
from callvault.db.compliance_models import RetentionPolicy
from callvault.errors import Conflict, InvalidInput, NotFound
from callvault.services.access import Action, Principal, require
from callvault.services.audit import AccessLog
from callvault.services.deletion import DeletionService
from callvault.services.deletion_guard import held_by
from callvault.services.manifest import iso
from callvault.services.retention_rules import (
    RecordingFacts,
    due_at,
    load_facts,
    load_rules,
    parse_keep_days,
    parse_match,
)

MAX_PREVIEW_DAYS = 3650


@dataclass(frozen=True)
class Due:
    facts: RecordingFacts
    at: datetime
    policy: str


class RetentionService:
    def __init__(
        self,
        catalog: Catalog,
        deletion: DeletionService,
        access_log: AccessLog,
        default_days: int | None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self._catalog = catalog
        self._deletion = deletion
        self._log = access_log
        self._default_days = default_days
        self._clock = clock or (lambda: datetime.now(UTC))

    # -- policies ----------------------------------------------------------

    def add_policy(self, principal: Principal, body: dict[str, Any]) -> dict[str, Any]:
        require(principal, Action.RETENTION_MANAGE)
        unknown = sorted(set(body) - {"name", "keep_days", "match", "legal_obligation"})
        if unknown:
            raise InvalidInput(f"unknown field(s): {', '.join(unknown)}")
        name = body.get("name")
        if not isinstance(name, str) or not name.strip() or len(name) > 120:
            raise InvalidInput("name must be a non-empty string of at most 120 characters")
        keep_days = parse_keep_days(body.get("keep_days"))
        match = parse_match(body.get("match"))
        legal = body.get("legal_obligation", False)
        if not isinstance(legal, bool):
            raise InvalidInput("legal_obligation must be true or false")
        with self._catalog.write() as session:
            for other in session.scalars(select(RetentionPolicy)):
                if other.name == name.strip():
                    raise Conflict(f"a retention policy named {other.name!r} already exists")
                if other.match == match:
                    raise Conflict(
                        f"policy {other.name!r} already has exactly these conditions "
                        f"(keep_days {other.keep_days}); change it or remove it instead"
                    )
            row = RetentionPolicy(
                name=name.strip(),
                keep_days=keep_days,
                match=match,
                legal_obligation=legal,
                created_at=self._clock(),
                created_by=principal.username,
            )
            session.add(row)
            try:
                session.flush()
            except DbIntegrityError:
                raise Conflict(f"a retention policy named {name.strip()!r} already exists") from None
            view = _policy_view(row)
        self._log.record(principal, "retention_policy_add", detail=f"{row.name}: keep {keep_days} days")
        return view

    def list_policies(self, principal: Principal) -> list[dict[str, Any]]:
        require(principal, Action.RETENTION_MANAGE)
        with self._catalog.read() as session:
            return [
                _policy_view(p) for p in session.scalars(select(RetentionPolicy).order_by(RetentionPolicy.id))
            ]

    def remove_policy(self, principal: Principal, policy: str) -> None:
        """Remove by id or name."""
        require(principal, Action.RETENTION_MANAGE)
        with self._catalog.write() as session:
            query = select(RetentionPolicy).where(RetentionPolicy.name == policy)
            if policy.isdigit():
                query = select(RetentionPolicy).where(RetentionPolicy.id == int(policy))
            row = session.scalars(query).first()
            if row is None:
                raise NotFound(f"no retention policy {policy!r}")
            name = row.name
            session.delete(row)
        self._log.record(principal, "retention_policy_remove", detail=name)

    # -- preview and sweep -------------------------------------------------

    def due(self, horizon: datetime) -> list[Due]:
        """Recordings due by ``horizon``, oldest first (holds not yet considered)."""
        with self._catalog.read() as session:
            rules = load_rules(session)
            facts = load_facts(session)
        found = []
        for item in facts:
            at, policy = due_at(rules, item, self._default_days)
            if at is not None and policy is not None and at <= horizon:
                found.append(Due(item, at, policy))
        return sorted(found, key=lambda d: (d.at, d.facts.id))

    def preview(self, principal: Principal, days: int = 30) -> dict[str, Any]:
        require(principal, Action.RETENTION_MANAGE)
        if not 0 <= days <= MAX_PREVIEW_DAYS:
            raise InvalidInput(f"days must be between 0 and {MAX_PREVIEW_DAYS}")
        now = self._clock()
        upcoming = self.due(now + timedelta(days=days))
        with self._catalog.read() as session:
            held = held_by(session, [d.facts.id for d in upcoming])
        result = {
            "now": _summary([d for d in upcoming if d.at <= now and d.facts.id not in held]),
            "next_days": _summary([d for d in upcoming if d.at > now and d.facts.id not in held]),
            "days": days,
            "held": len(held),
            "default_keep_days": self._default_days,
        }
        self._log.record(principal, "retention_preview", detail=f"days={days}")
        return result

    def run(self, principal: Principal, dry_run: bool = False) -> dict[str, Any]:
        """Delete everything due now (or, with ``dry_run``, say what would go)."""
        require(principal, Action.RETENTION_MANAGE)
        if dry_run:
            preview = self.preview(principal, 0)
            return {"dry_run": True, **preview["now"], "held": preview["held"]}
        resumed = self._deletion.finish_pending()
        due = self.due(self._clock())
        basis = {d.facts.id: d.policy for d in due}
        outcome = self._deletion.delete(principal, [d.facts.id for d in due], "retention", basis)
        deleted = set(outcome.deleted)
        summary = _summary([d for d in due if d.facts.id in deleted])
        if principal == Principal.system() and not (summary["count"] or outcome.held or resumed):
            return {"dry_run": False, **summary, "held": 0, "resumed": 0}  # an idle scheduled sweep
        self._log.record(
            principal,
            "retention_run",
            detail=f"{summary['count']} deleted, {len(outcome.held)} held, {resumed} resumed",
        )
        return {"dry_run": False, **summary, "held": len(outcome.held), "resumed": resumed}


def _summary(items: list[Due]) -> dict[str, Any]:
    per_policy: dict[str, dict[str, int]] = {}
    for d in items:
        entry = per_policy.setdefault(d.policy, {"count": 0, "bytes": 0})
        entry["count"] += 1
        entry["bytes"] += d.facts.size
    oldest = min((d.facts.started_at for d in items), default=None)
    return {
        "count": len(items),
        "bytes": sum(d.facts.size for d in items),
        "oldest": iso(oldest),
        "per_policy": per_policy,
    }


def _policy_view(row: RetentionPolicy) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "keep_days": row.keep_days,
        "match": row.match,
        "legal_obligation": row.legal_obligation,
        "created_at": iso(row.created_at),
        "created_by": row.created_by,
    }
