"""Settings changes, audited at start: which settings differ from the previous start.

A compliance officer must be able to tell when someone turned a control off
(e.g. widened ``sip_allowed_sources`` or loosened a usage limit). Each start of
``serve`` compares every setting with the previous start and writes one
``settings_change`` entry naming the settings that changed. Values are never
written (database and storage URLs may hold credentials): only a digest of
each value is kept, in ``server_state``, to compare against next time.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import fields

from callvault.db.catalog import Catalog
from callvault.db.models import ServerState
from callvault.services.access import Principal
from callvault.services.audit import AccessLog
from callvault.settings import Settings

_STATE_KEY = "audit.settings_digests"


def settings_digests(settings: Settings) -> dict[str, str]:
    return {
        f.name: hashlib.sha256(repr(getattr(settings, f.name)).encode()).hexdigest()[:32]
        for f in fields(settings)
        if f.name != "sources"
    }


def audit_settings_at_start(catalog: Catalog, access_log: AccessLog, settings: Settings) -> list[str]:
    """Record the settings that changed since the previous start (all of them the first time)."""
    current = settings_digests(settings)
    with catalog.write() as session:
        row = session.get(ServerState, _STATE_KEY)
        previous: dict[str, str] = json.loads(row.value) if row is not None else {}
        changed = sorted(name for name, digest in current.items() if previous.get(name) != digest)
        changed += sorted(name for name in previous if name not in current)
        if not changed:
            return []
        if row is None:
            session.add(ServerState(key=_STATE_KEY, value=json.dumps(current)))
            detail = f"first start: {len(current)} settings"
        else:
            row.value = json.dumps(current)
            detail = "changed: " + ", ".join(changed)
        access_log.record_in(session, Principal.system(), "settings_change", detail=detail[:2000])
    return changed
