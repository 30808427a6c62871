"""Whether a call needs the recording announcement: decided by its consent requirement.

A call whose strictest party needs all-party notification or explicit
consent must hear the announcement; a one-party-consent call need not. A
call whose requirement is unknown is treated as needing one: the cautious
answer, the one a compliance officer can defend. Which requirements need it
is said once, in :mod:`callvault.services.consent_requirements`.

The requirement itself is decided when the call is catalogued, from its
parties' jurisdictions, and stored on the recording (``consent_requirement``).
"""

from __future__ import annotations

from callvault.db.models import Recording
from callvault.services.consent_requirements import NEEDS_DISCLOSURE, needs_disclosure

__all__ = ["NEEDS_DISCLOSURE", "consent_requirement", "needs_disclosure"]


def consent_requirement(recording: Recording) -> str | None:
    """The recording's consent requirement, None while unknown."""
    return recording.consent_requirement
