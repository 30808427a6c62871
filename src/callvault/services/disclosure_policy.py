"""Whether a call needs the recording announcement: decided by its consent requirement.

A call whose strictest party needs all-party notification or explicit
consent must hear the announcement; a one-party-consent call need not. A
call whose requirement is unknown is treated as needing one: the cautious
answer, the one a compliance officer can defend.

The requirement itself is decided by consent and jurisdiction handling and
stored on the recording (``consent_requirement``); until a catalog carries
that column every requirement reads as unknown.
"""

from __future__ import annotations

from typing import Final

from callvault.db.models import Recording

# Requirements under which every party must hear that the call is recorded.
NEEDS_DISCLOSURE: Final = ("all_party_notification", "explicit_consent")


def consent_requirement(recording: Recording) -> str | None:
    """The recording's consent requirement, None while unknown."""
    value = getattr(recording, "consent_requirement", None)
    return value if isinstance(value, str) else None


def needs_disclosure(requirement: str | None) -> bool:
    return requirement is None or requirement in NEEDS_DISCLOSURE
