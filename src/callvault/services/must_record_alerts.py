"""Must-record calls not recorded whole raise an alert, once the call is over.

Regulated staff (``users.must_record``) must have every call recorded: no
recording rule can stop it (:func:`callvault.services.recording_rules.decide`),
but a recording can still come out ``incomplete`` (packet loss, a full disk),
``interrupted`` (the recorder stopped or crashed) or without audio at all.
After each call the recorder asks :meth:`MustRecordAlerts.check`, which raises
``must_record_incomplete`` or ``must_record_not_recorded`` through the one
alerts service (once per recording, audited, ``alert.raised`` webhook).
"""

from __future__ import annotations

from sqlalchemy import select

from callvault.db.catalog import Catalog
from callvault.db.models import Participant, Recording, User
from callvault.services.access import Principal
from callvault.services.alerts import MUST_RECORD_INCOMPLETE, MUST_RECORD_NOT_RECORDED, AlertService, NewAlert

INCOMPLETE = frozenset({"incomplete", "interrupted"})
NOT_RECORDED = frozenset({"not_recorded", "not_kept"})


class MustRecordAlerts:
    def __init__(self, catalog: Catalog, alerts: AlertService) -> None:
        self._catalog = catalog
        self._alerts = alerts

    def check(self, recording_id: str) -> str | None:
        """Raise the alert a finished call deserves; returns its kind (None: nothing to say)."""
        with self._catalog.read() as session:
            recording = session.get(Recording, recording_id)
            if recording is None or recording.status not in INCOMPLETE | NOT_RECORDED:
                return None
            query = (
                select(User.username)
                .join(Participant, Participant.user_id == User.id)
                .where(Participant.call_id == recording.call_id, User.must_record.is_(True))
                .order_by(User.username)
            )
            agents = list(dict.fromkeys(session.scalars(query)))
            status = recording.status
        if not agents:
            return None
        kind = MUST_RECORD_INCOMPLETE if status in INCOMPLETE else MUST_RECORD_NOT_RECORDED
        detail = f"must-record call of {', '.join(agents)} is {status.replace('_', ' ')}"
        alert = NewAlert(kind, detail, username=agents[0], recording_id=recording_id)
        self._alerts.raise_alert(alert, Principal.system())
        return kind
