"""Retention attributes of one recording: regulation labels and consent state, set via API or CLI.

Labels are free words (``mifid2``, ``dodd-frank``) that retention policies match;
the consent state is the call's, in the vocabulary of call-time consent
(``unknown``, ``notified``, ``consented``, ``objected``; see
:mod:`callvault.services.consent`), for a recording whose consent was settled
outside the call (an imported recording, a later withdrawal). Neither is part of the signed manifest: they govern
how long a recording is kept, not what it is. Each change is audited.
"""

from __future__ import annotations

import re
from typing import Any

from callvault.db.catalog import Catalog
from callvault.db.consent_models import CONSENT_STATES
from callvault.db.models import Recording
from callvault.errors import Conflict, InvalidInput, NotFound
from callvault.services.access import Action, Principal, require
from callvault.services.audit import AccessLog

_LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")
_MAX_LABELS = 32


def parse_labels(raw: object) -> list[str]:
    if not isinstance(raw, list) or not all(isinstance(v, str) for v in raw):
        raise InvalidInput("labels must be a list of strings")
    if len(raw) > _MAX_LABELS:
        raise InvalidInput(f"at most {_MAX_LABELS} labels")
    for label in raw:
        if not _LABEL.match(label):
            raise InvalidInput(
                f"label {label[:20]!r}: letters, digits and . _ : - only, at most 64 characters"
            )
    return sorted(set(raw))


class RecordingLabels:
    def __init__(self, catalog: Catalog, access_log: AccessLog) -> None:
        self._catalog = catalog
        self._log = access_log

    def update(self, principal: Principal, recording_id: str, body: dict[str, Any]) -> dict[str, Any]:
        require(principal, Action.RETENTION_MANAGE)
        unknown = sorted(set(body) - {"labels", "consent_state"})
        if unknown or not body:
            raise InvalidInput(
                "give labels and/or consent_state" + (f"; unknown: {', '.join(unknown)}" if unknown else "")
            )
        labels = parse_labels(body["labels"]) if "labels" in body else None
        consent = body.get("consent_state")
        if "consent_state" in body and consent is not None and consent not in CONSENT_STATES:
            raise InvalidInput(f"consent_state must be one of {', '.join(CONSENT_STATES)} or null")
        with self._catalog.write() as session:
            recording = session.get(Recording, recording_id, with_for_update=True)
            if recording is None:
                raise NotFound("recording not found")
            if recording.deleted_at is not None:
                raise Conflict("recording is deleted")
            if labels is not None:
                recording.labels = labels
            if "consent_state" in body:
                recording.consent_state = consent
            view = {
                "id": recording_id,
                "labels": recording.labels or [],
                "consent_state": recording.consent_state,
            }
        self._log.record(
            principal, "retention_labels", recording_id, detail=f"{view['labels']} {view['consent_state']}"
        )
        return view
