"""Consent during a call: the API, the SRC's metadata and a keypad digit set it; objections silence.

Three ways a party's consent reaches a live call, one path for all of them:

* ``POST /api/v1/calls/{ref}/consent`` ``{"state", "party"}`` (the agent's
  desktop, an IVR, a CTI integration): resolved and scoped like a PCI pause
  (:class:`.call_control.CallControl`), 404 for an unknown or out-of-scope
  call, 409 once it has ended;
* the consent extension of the SRC's recording metadata
  (:mod:`callvault.sip.consent_extension`), at the INVITE or any update;
* the keypad digit ``CALLVAULT_CONSENT_DTMF_DIGIT`` as an RFC 4733 event,
  which sets the pressing side to ``CALLVAULT_CONSENT_DTMF_STATE``.

Each change is stored and audited first (:mod:`callvault.services.consent`),
then put on the call's timeline (a ``consent`` event), then applied to the
audio. An objection is applied through the one silencing mechanism of the
recorder (:mod:`.media.silencing`, cause ``consent``), as the policy
``CALLVAULT_CONSENT_OBJECTION`` says: ``customer`` silences the objecting
side's channel (both, or the whole call, when parties of both sides or of
no side object), ``all`` the whole call, ``continue`` nothing. From that
moment the silenced audio never reaches the disk and silence of the same
length stands in; the silence lasts until the call ends or every objecting
party's state changes again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

from prometheus_client import Counter

from callvault.errors import CallvaultError, Conflict, InvalidInput
from callvault.runtime.call_control import CallControl
from callvault.runtime.media.engine import MediaEngine
from callvault.runtime.media.silencing import Channels
from callvault.services.access import Principal
from callvault.services.consent import ACTION, SIDES, ConsentChange, parse_party, parse_state, shown
from callvault.services.context import ServiceContext
from callvault.services.siprec_session import SiprecSession
from callvault.sip.consent_extension import consent_in

log = logging.getLogger(__name__)

CAUSE = "consent"
EVENT = "consent"
CHANGES = Counter(
    "callvault_consent_changes",
    "Consent states set on live calls, by state and source (api, metadata, dtmf).",
    ["state", "source"],
)


class ConsentControl:
    def __init__(self, ctx: ServiceContext, engine: MediaEngine | None, calls: CallControl) -> None:
        self._ctx = ctx
        self._engine = engine
        self._calls = calls
        self._policy = ctx.settings.consent_objection
        # What each live call's metadata last said, per party: a snapshot repeating it changes nothing.
        self._from_metadata: dict[str, dict[str, str]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        if engine is not None and ctx.settings.consent_dtmf_digit:
            engine.add_consent_digit_listener(self.on_digit)

    # -- the API --------------------------------------------------------------------------------

    async def request(self, principal: Principal, ref: str, body: object) -> dict[str, Any]:
        """``POST /calls/{ref}/consent``: set a party's state on the live call ``ref`` names."""
        if not isinstance(body, dict) or "state" not in body or set(body) - {"state", "party"}:
            raise InvalidInput('give {"state": unknown|notified|consented|objected, "party": ...}')
        state, party = parse_state(body["state"]), parse_party(body.get("party"))
        resolved, live = await self._calls.resolve(principal, ref)
        if not live:
            error = self._calls.not_live(resolved, "set the consent of")
            detail = f"party={shown(party)} state={state} source=api: {error.message}"
            await asyncio.to_thread(
                self._ctx.access_log.record,
                principal,
                ACTION,
                resolved.primary.recording_id,
                detail,
                "conflict",
            )
            raise error
        changes = [await self._set(principal, r.recording_id, party, state, "api") for r in live]
        answer = changes[0].to_dict()
        answer["recording_ids"] = [c.recording_id for c in changes]
        answer["silenced"] = self._silenced(changes[0].recording_id)
        return answer

    # -- the SRC's metadata and the keypad ----------------------------------------------------

    def on_metadata(self, recording_id: str, session: SiprecSession) -> None:
        """New metadata of a live call (on the event loop): apply the consent it carries, if new."""
        metadata = session.metadata
        if metadata is None:
            return
        seen = self._from_metadata.setdefault(recording_id, {})
        for participant in metadata.participants:
            mark = consent_in(participant.extensions)
            if mark is None:
                continue
            if mark.state is None:
                log.warning("recording %s: consent extension ignored: %s", recording_id, mark.error)
                continue
            role = session.plan.role_of(participant.participant_id) if session.plan is not None else None
            party = role if role in SIDES else (participant.aor or "")
            if not party or seen.get(party) == mark.state:
                continue
            seen[party] = mark.state
            self._spawn(self._set_quietly(recording_id, party, mark.state, "metadata"))

    def on_digit(self, recording_id: str, side: str) -> None:
        """The consent digit was pressed on ``side``'s stream of a live call (on the event loop)."""
        state = self._ctx.settings.consent_dtmf_state
        self._spawn(self._set_quietly(recording_id, side if side in SIDES else "customer", state, "dtmf"))

    async def _set_quietly(self, recording_id: str, party: str, state: str, source: str) -> None:
        try:
            await self._set(Principal.system(), recording_id, party, state, source)
        except CallvaultError as exc:
            log.warning("recording %s: consent from %s not applied: %s", recording_id, source, exc.message)

    # -- one path for every source ------------------------------------------------------------

    async def _set(
        self, principal: Principal, recording_id: str, party: str, state: str, source: str
    ) -> ConsentChange:
        change = await asyncio.to_thread(self._ctx.consent.set, principal, recording_id, party, state, source)
        if self._engine is None or not self._engine.is_live(recording_id):
            raise Conflict("cannot set the consent of the call: it has ended")
        CHANGES.labels(state=state, source=source).inc()
        data = {"party": shown(change.party), "state": state, "source": source, "by": principal.username}
        try:
            self._engine.mark(recording_id, EVENT, data)
            self._apply(change, principal.username, source)
        except Conflict:
            raise Conflict("cannot set the consent of the call: it has ended") from None
        return change

    def _apply(self, change: ConsentChange, by: str, source: str) -> None:
        """Silence what the objections in force ask for, under the policy; end it when none is left."""
        assert self._engine is not None
        recording_id = change.recording_id
        causes = self._calls.causes(recording_id)
        channels = self._channels(change.objecting_sides)
        if channels is None:
            if CAUSE in causes:
                self._engine.unsilence(recording_id, CAUSE, by=by, reason="consent_changed")
            return
        detail = {"party": shown(change.party), "source": source}
        self._engine.silence(recording_id, CAUSE, channels=channels, by=by, detail=detail)

    def _channels(self, objecting: frozenset[str]) -> Channels | None:
        if not objecting or self._policy == "continue":
            return None
        if self._policy == "all" or len(objecting) > 1 or "other" in objecting:
            return "all"
        return "agent" if "agent" in objecting else "customer"

    def _silenced(self, recording_id: str) -> str | None:
        """The channels the consent silence covers now, None when none."""
        status = self._engine.silence_status(recording_id) if self._engine is not None else None
        for silence in status.silences if status is not None else ():
            if silence["cause"] == CAUSE:
                return str(silence["channels"])
        return None

    # -- housekeeping ---------------------------------------------------------------------------

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        for recording_id in [r for r in self._from_metadata if not self._calls.is_live(r)]:
            del self._from_metadata[recording_id]

    async def drain(self) -> None:
        """Wait for consent changes in flight (server stop, tests)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
