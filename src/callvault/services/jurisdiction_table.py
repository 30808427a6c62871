"""The requirements table in force, and its editing by administrators (audited).

The table in force is the shipped default (:func:`.consent_requirements.shipped_rules`)
with the administrators' rows (``consent_jurisdictions``) over it. Every call
start reads it, so it is kept in memory and read again after an edit here, or
after :data:`RELOAD_SECONDS` (another server sharing the catalogue may have
edited it).

``CALLVAULT_CONSENT_GDPR_EXPLICIT`` raises the rows marked GDPR to explicit
consent; ``CALLVAULT_CONSENT_SITE_JURISDICTION`` is where the recording site
(its agents) is, counted as one more party of every call: a California
contact centre calling New York needs what California needs.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from callvault.db.catalog import Catalog
from callvault.db.consent_models import ConsentJurisdiction
from callvault.errors import InvalidInput, NotFound
from callvault.services.access import Action, Principal, require
from callvault.services.audit import AccessLog
from callvault.services.consent_requirements import (
    MAX_NAME,
    JurisdictionRule,
    RequirementTable,
    parse_code,
    parse_requirement,
    shipped_rules,
)
from callvault.services.jurisdiction import jurisdiction_of

RELOAD_SECONDS = 30.0
SET_ACTION = "consent_jurisdiction_set"
RESET_ACTION = "consent_jurisdiction_reset"


def _rule_view(rule: JurisdictionRule, table: RequirementTable, source: str) -> dict[str, Any]:
    return {
        "jurisdiction": rule.jurisdiction,
        "requirement": rule.requirement,
        "gdpr": rule.gdpr,
        "name": rule.name,
        "effective_requirement": rule.effective(table.gdpr_explicit),
        "source": source,
    }


class JurisdictionTable:
    def __init__(
        self,
        catalog: Catalog,
        access_log: AccessLog,
        *,
        gdpr_explicit: bool = False,
        site_jurisdiction: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._catalog = catalog
        self._log = access_log
        self._gdpr_explicit = gdpr_explicit
        self._site = parse_code(site_jurisdiction) if site_jurisdiction else None
        self._clock = clock
        self._shipped = shipped_rules()
        self._lock = threading.Lock()
        self._cached: tuple[float, RequirementTable, frozenset[str]] | None = None

    # -- the table in force --------------------------------------------------------------------

    def table(self) -> RequirementTable:
        return self._load()[0]

    def _load(self) -> tuple[RequirementTable, frozenset[str]]:
        with self._lock:
            cached = self._cached
            if cached is not None and self._clock() - cached[0] < RELOAD_SECONDS:
                return cached[1], cached[2]
        with self._catalog.read() as session:
            edited = {
                row.jurisdiction: JurisdictionRule(row.jurisdiction, row.requirement, row.gdpr, row.name)
                for row in session.scalars(select(ConsentJurisdiction))
            }
        table = RequirementTable({**self._shipped, **edited}, self._gdpr_explicit)
        with self._lock:
            self._cached = (self._clock(), table, frozenset(edited))
        return table, frozenset(edited)

    def _forget(self) -> None:
        with self._lock:
            self._cached = None

    def requirement_of(self, jurisdictions: Iterable[str | None]) -> str | None:
        """A call's requirement from its parties' jurisdictions (and the site's); None: none placed."""
        placed = [j for j in jurisdictions if j]
        if self._site is not None and placed:
            placed.append(self._site)
        return self.table().call_requirement(placed)

    def place(self, number: str | None) -> str | None:
        return jurisdiction_of(number)

    # -- reading and editing (administrators) --------------------------------------------------

    def list(self, principal: Principal) -> dict[str, Any]:
        require(principal, Action.CONSENT_MANAGE)
        table, edited = self._load()
        rows = [
            _rule_view(rule, table, "edited" if code in edited else "shipped")
            for code, rule in sorted(table.rules.items())
        ]
        return {
            "gdpr_explicit": self._gdpr_explicit,
            "site_jurisdiction": self._site,
            "jurisdictions": rows,
        }

    def lookup(self, principal: Principal, number: str) -> dict[str, Any]:
        """Where a number is placed and what it needs (the number is neither kept nor logged)."""
        require(principal, Action.CONSENT_MANAGE)
        if not isinstance(number, str) or not number.startswith("+") or len(number) > 32:
            raise InvalidInput("number must be in E.164 form (+14155550100)")
        jurisdiction = jurisdiction_of(number)
        if jurisdiction is None:
            raise InvalidInput("the number cannot be placed in any jurisdiction")
        rule = self.table().rule_for(jurisdiction)
        return {
            "jurisdiction": jurisdiction,
            "decided_by": rule.jurisdiction,
            "requirement": self.table().requirement_for(jurisdiction),
        }

    def put(self, principal: Principal, code: str, body: dict[str, Any]) -> dict[str, Any]:
        """Set one jurisdiction's row (adding or overriding the shipped one)."""
        require(principal, Action.CONSENT_MANAGE)
        jurisdiction = parse_code(code)
        unknown = sorted(set(body) - {"requirement", "gdpr", "name"})
        if unknown:
            raise InvalidInput(f"unknown field(s) {', '.join(unknown)}; give requirement, gdpr, name")
        current = self.table().rules.get(jurisdiction)
        requirement = parse_requirement(body.get("requirement", current.requirement if current else None))
        gdpr = body.get("gdpr", current.gdpr if current else False)
        if not isinstance(gdpr, bool):
            raise InvalidInput("gdpr must be true or false")
        name = body.get("name", current.name if current else "")
        if not isinstance(name, str) or len(name) > MAX_NAME or not name.isprintable():
            raise InvalidInput(f"name must be printable text of at most {MAX_NAME} characters")
        with self._catalog.write() as session:
            row = session.get(ConsentJurisdiction, jurisdiction, with_for_update=True)
            if row is None:
                row = ConsentJurisdiction(jurisdiction=jurisdiction)
                session.add(row)
            row.requirement, row.gdpr, row.name = requirement, gdpr, name.strip()
            row.updated_at, row.updated_by = datetime.now(UTC), principal.username
            detail = f"{jurisdiction} requirement={requirement} gdpr={gdpr}"
            self._log.record_in(session, principal, SET_ACTION, None, detail)
        self._forget()
        table, edited = self._load()
        return _rule_view(table.rules[jurisdiction], table, "edited")

    def reset(self, principal: Principal, code: str) -> dict[str, Any]:
        """Drop an administrator's row: the shipped one (if any) is in force again."""
        require(principal, Action.CONSENT_MANAGE)
        jurisdiction = parse_code(code)
        with self._catalog.write() as session:
            row = session.get(ConsentJurisdiction, jurisdiction, with_for_update=True)
            if row is None:
                raise NotFound(f"jurisdiction {jurisdiction} has no edited row")
            session.delete(row)
            self._log.record_in(session, principal, RESET_ACTION, None, jurisdiction)
        self._forget()
        table = self.table()
        shipped = self._shipped.get(jurisdiction)
        return {
            "jurisdiction": jurisdiction,
            "reset": True,
            "shipped": _rule_view(shipped, table, "shipped") if shipped is not None else None,
        }
