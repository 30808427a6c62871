"""What recording a call needs under consent law: the requirement levels and the table of them.

Three requirements, from mild to strict:

* ``one_party``: one party's consent suffices, and the recording side gives it;
* ``all_party_notification``: every party must be told the call is recorded
  (the recording announcement; the US all-party states, GDPR transparency);
* ``explicit_consent``: every party must agree (GDPR countries, where the site
  decides its lawful basis is consent: ``CALLVAULT_CONSENT_GDPR_EXPLICIT``).

Each jurisdiction's requirement comes from a table: shipped as
``data/consent_requirements.csv``, edited by administrators (their rows, in
the catalogue, override the shipped ones; :mod:`.jurisdiction_table`). A
subdivision not in the table falls back to its country, a country to ``*``.
The strictest requirement among a call's parties is the call's.

This module is the one place that says which requirement needs the recording
announcement (:data:`NEEDS_DISCLOSURE`); the disclosure check asks it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from callvault.errors import InvalidInput
from callvault.services.jurisdiction import country_of, read_csv_rows, valid_code

ONE_PARTY: Final = "one_party"
ALL_PARTY_NOTIFICATION: Final = "all_party_notification"
EXPLICIT_CONSENT: Final = "explicit_consent"
# Mild to strict: the index is the strictness.
REQUIREMENTS: Final = (ONE_PARTY, ALL_PARTY_NOTIFICATION, EXPLICIT_CONSENT)
# Requirements under which every party must hear that the call is recorded.
NEEDS_DISCLOSURE: Final = frozenset({ALL_PARTY_NOTIFICATION, EXPLICIT_CONSENT})
ANY_JURISDICTION: Final = "*"
MAX_NAME = 120


def needs_disclosure(requirement: str | None) -> bool:
    """Whether a call under ``requirement`` must hear the announcement; unknown (None) must."""
    return requirement is None or requirement in NEEDS_DISCLOSURE


def strictest(requirements: Iterable[str]) -> str | None:
    """The strictest of ``requirements``; None for none."""
    known = [r for r in requirements if r in REQUIREMENTS]
    return max(known, key=REQUIREMENTS.index) if known else None


def parse_requirement(value: object) -> str:
    if not isinstance(value, str) or value not in REQUIREMENTS:
        raise InvalidInput(f"requirement must be one of {', '.join(REQUIREMENTS)}")
    return value


def parse_code(value: object) -> str:
    code = value.strip().upper() if isinstance(value, str) else ""
    if not valid_code(code):
        raise InvalidInput(
            "a jurisdiction is an ISO 3166-1 country (DE), an ISO 3166-2 subdivision (US-CA) or *"
        )
    return code


@dataclass(frozen=True)
class JurisdictionRule:
    """One row of the table: what a jurisdiction needs."""

    jurisdiction: str
    requirement: str
    gdpr: bool
    name: str

    def effective(self, gdpr_explicit: bool) -> str:
        """The requirement in force: GDPR rows become explicit consent where the site says so."""
        return EXPLICIT_CONSENT if self.gdpr and gdpr_explicit else self.requirement


def shipped_rules() -> dict[str, JurisdictionRule]:
    """The shipped default table (``data/consent_requirements.csv``)."""
    rules: dict[str, JurisdictionRule] = {}
    for row in read_csv_rows("consent_requirements.csv"):
        code, requirement, gdpr, name = (row + ["", "", "", ""])[:4]
        rule = JurisdictionRule(parse_code(code), parse_requirement(requirement), gdpr == "yes", name)
        rules[rule.jurisdiction] = rule
    if ANY_JURISDICTION not in rules:
        raise ValueError("the shipped consent table lacks its '*' row")
    return rules


@dataclass(frozen=True)
class RequirementTable:
    """The table in force: what each jurisdiction needs, and the call's strictest."""

    rules: Mapping[str, JurisdictionRule]
    gdpr_explicit: bool = False

    def rule_for(self, jurisdiction: str) -> JurisdictionRule:
        """The row that decides ``jurisdiction``: its own, its country's, or ``*``'s."""
        for code in (jurisdiction, country_of(jurisdiction), ANY_JURISDICTION):
            rule = self.rules.get(code)
            if rule is not None:
                return rule
        return JurisdictionRule(ANY_JURISDICTION, ALL_PARTY_NOTIFICATION, False, "")

    def requirement_for(self, jurisdiction: str) -> str:
        return self.rule_for(jurisdiction).effective(self.gdpr_explicit)

    def call_requirement(self, jurisdictions: Iterable[str | None]) -> str | None:
        """The strictest requirement among the parties placed; None when no party could be."""
        return strictest(self.requirement_for(j) for j in jurisdictions if j)
