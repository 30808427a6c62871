"""The consent extension of SIPREC recording metadata: a party's consent, as the SRC knows it.

An SRC that asks callers for consent (an IVR prompt, a click in the agent's
desktop) sends the answer in the recording metadata (RFC 7865) of the INVITE
or of any later re-INVITE/UPDATE, as a child of the party's ``participant``
element in callvault's namespace::

    <participant participant_id="cA==">
      <nameID aor="sip:+14155550100@carrier.example"/>
      <cv:consent xmlns:cv="urn:callvault:params:xml:ns:consent" state="objected"/>
    </participant>

``state`` (attribute or text) is one of ``unknown``, ``notified``,
``consented``, ``objected``. The metadata parser keeps unknown children of a
participant as serialised XML (:attr:`ParticipantMeta.extensions`); they are
read again here through :mod:`defusedxml` (no DTD, no entities). An element
of this namespace that is malformed or names another state is ignored with
the reason, never guessed at: consent is not inferred.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass

import defusedxml.ElementTree as DefusedET
from defusedxml import DefusedXmlException

NAMESPACE = "urn:callvault:params:xml:ns:consent"
ELEMENT = f"{{{NAMESPACE}}}consent"
STATES = ("unknown", "notified", "consented", "objected")
_MAX_BLOB = 4096


@dataclass(frozen=True)
class ConsentMark:
    """What one participant's extension says: its state, or why it was not understood."""

    state: str | None
    error: str | None = None


def consent_in(extensions: list[str]) -> ConsentMark | None:
    """The consent a participant's extension blobs carry (the last one wins); None when none does."""
    found: ConsentMark | None = None
    for blob in extensions:
        if NAMESPACE not in blob:
            continue  # another vendor's extension: not parsed at all
        mark = _parse(blob)
        if mark is not None:
            found = mark
    return found


def _parse(blob: str) -> ConsentMark | None:
    if len(blob) > _MAX_BLOB:
        return ConsentMark(None, f"consent extension over {_MAX_BLOB} characters")
    try:
        elem = DefusedET.fromstring(blob, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except (DefusedXmlException, ET.ParseError, ValueError) as exc:
        return ConsentMark(None, f"consent extension is not well-formed XML: {type(exc).__name__}")
    if not isinstance(elem, ET.Element) or elem.tag != ELEMENT:
        return None
    value = (elem.get("state") or elem.text or "").strip().lower()
    if value not in STATES:
        return ConsentMark(None, f"consent state must be one of {', '.join(STATES)}")
    return ConsentMark(value)
