"""Controls of a call in progress, as the API offers them: PCI pause and resume, the call's state.

A request names the call by any reference (:mod:`callvault.services.call_refs`:
recording id, SIP Call-ID, vendor call id); the resolver checks the caller's
scope and this module adds what only the running recorder knows: whether the
call is live, i.e. its media is being captured by this server's
:class:`~callvault.runtime.media.engine.MediaEngine`. The order of a change:

1. resolve (404 for an unknown or out-of-scope reference, the same answer);
2. refuse what cannot apply (409: the call has ended or was never recorded,
   resume without a pause), audited as a refused attempt;
3. write the audit entry (who, when, which recording; never a digit), so
   nothing is applied that the audit log does not show;
4. apply it in the engine, on the event loop (a call that ended in between
   gets 409 and a second, refused entry).

Changes the recorder makes by itself (a pause on keypad digits, its end, the
automatic resume, the end of the call) reach :meth:`CallControl.on_silence`
and are audited as ``system``. Other call-time controls (keep, consent) use
:meth:`CallControl.live_recordings` to get the same resolution and liveness.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

from callvault.errors import CallvaultError, Conflict
from callvault.runtime.media.engine import MediaEngine
from callvault.runtime.media.session import MediaSession
from callvault.runtime.media.silencing import API_CAUSE, SilenceChange, SilenceStatus
from callvault.services.access import Action, Principal
from callvault.services.call_refs import CallRecordingRef, ResolvedCall
from callvault.services.context import ServiceContext

log = logging.getLogger(__name__)

PAUSE_ACTION = "call_pause"
RESUME_ACTION = "call_resume"
KEEP_ACTION = "call_keep"
NOT_RECORDED = frozenset({"not_recorded", "not_kept"})


def _iso(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class CallControl:
    """Call-time controls over this server's live calls; ``engine`` None: a server that records none."""

    def __init__(self, ctx: ServiceContext, engine: MediaEngine | None) -> None:
        self._ctx = ctx
        self._engine = engine
        self._audits: set[asyncio.Future[None]] = set()
        if engine is not None:
            engine.add_silence_listener(self.on_silence)

    def live_sessions(self) -> dict[str, MediaSession]:
        """The calls this server records now, by recording id (none without an engine)."""
        return {} if self._engine is None else self._engine.live_sessions()

    # -- resolution ---------------------------------------------------------------------------

    async def live_recordings(
        self, principal: Principal, ref: str, action: Action = Action.CALL_CONTROL, verb: str = "control"
    ) -> tuple[ResolvedCall, list[CallRecordingRef]]:
        """The call ``ref`` names and those of its recordings that are live; 409 when none is."""
        resolved, live = await self.resolve(principal, ref, action)
        if not live:
            raise self.not_live(resolved, verb)
        return resolved, live

    async def resolve(
        self, principal: Principal, ref: str, action: Action = Action.CALL_CONTROL
    ) -> tuple[ResolvedCall, list[CallRecordingRef]]:
        """The call ``ref`` names (404 unknown or out of scope) and those of its recordings that are live."""
        resolved = await asyncio.to_thread(self._ctx.call_refs.resolve, principal, ref, action)
        return resolved, [r for r in resolved.recordings if self.is_live(r.recording_id)]

    @staticmethod
    def not_live(resolved: ResolvedCall, verb: str) -> Conflict:
        """The 409 for a call none of whose recordings is live: ended, or never recorded."""
        if any(r.status in NOT_RECORDED for r in resolved.recordings):
            return Conflict(f"cannot {verb} the call: it is not being recorded")
        return Conflict(f"cannot {verb} the call: it has ended")

    def live_loss(self, recording_id: str) -> dict[int, dict[str, int]]:
        """Packets received, expected and lost so far per stream index (empty: not measured)."""
        return {} if self._engine is None else self._engine.live_loss(recording_id)

    def is_live(self, recording_id: str) -> bool:
        return self._engine is not None and self._engine.is_live(recording_id)

    def _unrecorded_live(self, recording_id: str) -> bool:
        return self._engine is not None and self._engine.is_unrecorded_live(recording_id)

    # -- keep (on-demand calls; see runtime/media/on_demand.py) ---------------------------------

    async def keep(self, principal: Principal, ref: str) -> dict[str, Any]:
        """Keep an on-demand call's audio: during the call or within its keep time after it."""
        resolved = await asyncio.to_thread(self._ctx.call_refs.resolve, principal, ref, Action.CALL_CONTROL)
        engine = self._engine
        held = [
            r for r in resolved.recordings if engine is not None and engine.keep_gate.holds(r.recording_id)
        ]
        if not held:
            error = self._not_keepable(resolved)
            await self._audit(principal, KEEP_ACTION, [resolved.primary], error.message, "conflict")
            raise error
        assert engine is not None
        await self._audit(principal, KEEP_ACTION, held, "kept")
        now = datetime.now(UTC)
        for recording in held:
            try:
                await asyncio.to_thread(self._ctx.recordings.keep, recording.recording_id, now)
            except Conflict as exc:
                await self._audit(principal, KEEP_ACTION, [recording], exc.message, "conflict")
                raise
            engine.keep_gate.keep(recording.recording_id)
        primary = held[0]
        live = self.is_live(primary.recording_id)
        return {
            "recording_id": primary.recording_id,
            "recording_ids": [r.recording_id for r in held],
            "live": live,
            "state": "kept",
            "kept_at": _iso(now.timestamp()),
        }

    def _not_keepable(self, resolved: ResolvedCall) -> Conflict:
        statuses = {r.status for r in resolved.recordings}
        if "not_kept" in statuses:
            return Conflict("cannot keep the call: its keep time has passed and its audio was discarded")
        if statuses & {"not_recorded"}:
            return Conflict("cannot keep the call: it is not being recorded")
        if any(self.is_live(r.recording_id) for r in resolved.recordings) or statuses & {
            "complete",
            "incomplete",
            "interrupted",
        }:
            return Conflict("cannot keep the call: it is not recorded on demand (it is kept anyway)")
        return Conflict("cannot keep the call: it has ended")

    # -- pause and resume ---------------------------------------------------------------------

    async def state(self, principal: Principal, ref: str) -> dict[str, Any]:
        resolved, live = await self.resolve(principal, ref)
        unrecorded = [r for r in resolved.recordings if self._unrecorded_live(r.recording_id)]
        if not live and unrecorded:
            # Running, answered and watched for its end, but a recording rule keeps its audio off disk.
            return {
                "recording_id": unrecorded[0].recording_id,
                "recording_ids": [r.recording_id for r in unrecorded],
                "live": True,
                "state": "not_recorded",
                "status": unrecorded[0].status,
                "silences": [],
            }
        if not live:
            primary = resolved.primary
            return {
                "recording_id": primary.recording_id,
                "recording_ids": resolved.recording_ids,
                "live": False,
                "state": "ended",
                "status": primary.status,
                "silences": [],
            }
        return self._answer(resolved, live)

    async def pause(self, principal: Principal, ref: str) -> dict[str, Any]:
        resolved, live = await self._checked(principal, ref, PAUSE_ACTION, "pause")
        assert self._engine is not None
        seconds = float(self._ctx.settings.pci_pause_max_seconds)
        await self._audit(principal, PAUSE_ACTION, live, f"cause={API_CAUSE} channels=all")
        applied = 0
        for recording in live:
            try:
                self._engine.silence(
                    recording.recording_id, API_CAUSE, by=principal.username, max_seconds=seconds
                )
                applied += 1
            except Conflict:
                await self._audit(principal, PAUSE_ACTION, [recording], "the call ended", "conflict")
        if not applied:
            raise Conflict("cannot pause the call: it has ended")
        return self._answer(resolved, live)

    async def resume(self, principal: Principal, ref: str) -> dict[str, Any]:
        resolved, live = await self._checked(principal, ref, RESUME_ACTION, "resume")
        assert self._engine is not None
        paused = [r for r in live if API_CAUSE in self.causes(r.recording_id)]
        if not paused:
            others = set().union(*(self.causes(r.recording_id) for r in live))
            why = (
                "it is not paused"
                if not others
                else f"it is paused by {', '.join(sorted(others))}, not by a request"
            )
            error = Conflict(f"cannot resume the call: {why}")
            await self._audit(principal, RESUME_ACTION, live, error.message, "conflict")
            raise error
        await self._audit(principal, RESUME_ACTION, paused, f"cause={API_CAUSE}")
        for recording in paused:
            try:
                self._engine.unsilence(recording.recording_id, API_CAUSE, by=principal.username)
            except Conflict:
                await self._audit(principal, RESUME_ACTION, [recording], "the call ended", "conflict")
        return self._answer(resolved, live)

    async def _checked(
        self, principal: Principal, ref: str, action: str, verb: str
    ) -> tuple[ResolvedCall, list[CallRecordingRef]]:
        resolved, live = await self.resolve(principal, ref)
        if not live:
            error = self.not_live(resolved, verb)
            await self._audit(principal, action, [resolved.primary], error.message, "conflict")
            raise error
        return resolved, live

    def causes(self, recording_id: str) -> set[str]:
        """The causes silencing a live call now (``api``, ``dtmf``, ``consent``, ...)."""
        status = self._engine.silence_status(recording_id) if self._engine is not None else None
        return status.causes() if status is not None else set()

    def _answer(self, resolved: ResolvedCall, live: list[CallRecordingRef]) -> dict[str, Any]:
        primary = live[0]
        status = self._engine.silence_status(primary.recording_id) if self._engine is not None else None
        if status is None:
            status = SilenceStatus(primary.recording_id, ())
        silences = [
            {**s, "since": _iso(s["since"]), "resumes_at": _iso(s.get("resumes_at"))} for s in status.silences
        ]
        return {
            "recording_id": primary.recording_id,
            "recording_ids": [r.recording_id for r in live],
            "live": True,
            "state": status.state,
            "silences": silences,
        }

    # -- audit ----------------------------------------------------------------------------------

    async def _audit(
        self,
        principal: Principal,
        action: str,
        recordings: list[CallRecordingRef],
        detail: str,
        outcome: str = "ok",
    ) -> None:
        log_ = self._ctx.access_log
        for recording in recordings:
            await asyncio.to_thread(log_.record, principal, action, recording.recording_id, detail, outcome)

    def on_silence(self, change: SilenceChange) -> None:
        """The engine's report of a silence starting or ending; what the recorder did itself is audited here."""
        if not change.automatic:
            return  # a request, audited by whoever made it
        action = PAUSE_ACTION if change.kind == "pause" else RESUME_ACTION
        parts = [f"cause={change.cause}", f"channels={change.channels}"]
        if change.reason:
            parts.append(f"reason={change.reason}")
        detected = change.detail.get("detected")
        if detected:
            parts.append(f"detected={detected}")
        detail = " ".join(parts)
        loop = asyncio.get_running_loop()
        task = loop.run_in_executor(None, self._record_system, action, change.recording_id, detail)
        self._audits.add(task)
        task.add_done_callback(self._audits.discard)

    def _record_system(self, action: str, recording_id: str, detail: str) -> None:
        try:
            self._ctx.access_log.record(Principal.system(), action, recording_id, detail)
        except CallvaultError as exc:
            log.error("could not audit %s of %s: %s", action, recording_id, exc.message)

    async def drain(self) -> None:
        """Wait for the audit entries of automatic changes (server stop, tests)."""
        while self._audits:
            await asyncio.gather(*list(self._audits), return_exceptions=True)
