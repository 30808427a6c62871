"""Silencing a live call: audio that never reaches disk (PCI pause, keypad digits, consent objections).

One mechanism serves every reason to stop recording part of a call: an agent's
or a payment system's PCI pause (``POST /api/v1/calls/{ref}/pause``), keypad
digits flowing (RFC 4733 events or in-band tones, detected by capture itself),
and a party's objection to being recorded. Each reason is a *cause*; a
session holds at most one silence per cause, over ``all`` channels or one side
(``agent`` or ``customer``; a stream labelled mixed carries both sides and is
silenced with either). Silences of different causes overlap freely: audio is
kept only where none applies.

How audio is kept off the disk: the capture loop (:mod:`.capture`) filters
every flush by arrival time against the session's silence intervals
(:mod:`.withholding`) before a byte is journalled, so a silenced packet is
never in the spool, the call-time render files or the archive. What stands in
its place is the gap the renderer turns into silence of the right length,
both channels staying aligned to the wall clock; the recording's length is
the call's. Nothing of the silenced packets is kept, not even their RTP
headers: key timing is enough to guess digits typed on a keypad.

Each start and end is a ``pause``/``resume`` event on the recording's timeline
(cause, channels, who or what; never a digit) and goes to the listeners (the
call control writes the audit log and counts pauses). A silence may carry a
deadline (PCI pauses resume by themselves after ``CALLVAULT_PCI_PAUSE_MAX_SECONDS``)
or be open-ended (a consent objection lasts until the call ends). At hang-up
every silence still in force is closed on the timeline with reason
``call_ended``; capture withholds the call's last packets too.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from callvault.errors import Conflict, InvalidInput
from callvault.runtime.media import metrics
from callvault.services.call_record import AGENT_CHANNEL, CUSTOMER_CHANNEL, MIXED_CHANNEL, CallEvent
from callvault.storage.spool import SpoolStream

log = logging.getLogger(__name__)

Channels = Literal["all", "agent", "customer"]
CHANNELS: tuple[Channels, ...] = ("all", "agent", "customer")
PAUSE_EVENT = "pause"
RESUME_EVENT = "resume"
# Causes the recorder itself knows; callers may name others (say, "consent").
API_CAUSE = "api"
DIGITS_CAUSE = "dtmf"

_SIDES: dict[str, frozenset[int]] = {
    "agent": frozenset({AGENT_CHANNEL, MIXED_CHANNEL}),
    "customer": frozenset({CUSTOMER_CHANNEL, MIXED_CHANNEL}),
}


def parse_channels(value: str) -> Channels:
    if value not in CHANNELS:
        raise InvalidInput(f"channels must be one of {', '.join(CHANNELS)}, not {value[:20]!r}")
    return value


def streams_of(channels: Channels, streams: list[SpoolStream]) -> frozenset[int] | None:
    """The stream indexes a silence over ``channels`` covers; None: every stream, also later ones."""
    if channels == "all":
        return None
    sides = _SIDES[channels]
    return frozenset(s.index for s in streams if s.channel in sides or s.channel not in _ALL_SIDES)


_ALL_SIDES = frozenset({AGENT_CHANNEL, CUSTOMER_CHANNEL, MIXED_CHANNEL})


class SilenceTarget(Protocol):
    """What the silencer needs of a media session (see :class:`.session.MediaSession`)."""

    recording_id: str
    started_at: float

    @property
    def streams(self) -> list[SpoolStream]: ...

    def record_event(self, event: CallEvent) -> None: ...


# capture.silence(key, interval name, stream indexes or None for all, start, end or None)
CaptureSilence = Callable[[str, str, "frozenset[int] | None", float, "float | None"], None]


@dataclass
class Silence:
    """One cause's silence of one session."""

    cause: str
    channels: Channels
    since: float  # wall-clock seconds
    by: str
    detail: dict[str, Any]
    deadline: float | None
    interval: str  # the capture's name for it
    streams: frozenset[int] | None
    timer: asyncio.TimerHandle | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "cause": self.cause,
            "channels": self.channels,
            "since": self.since,
            "by": self.by,
            "resumes_at": self.deadline,
            **self.detail,
        }


@dataclass(frozen=True)
class SilenceStatus:
    """A live session's silences now."""

    recording_id: str
    silences: tuple[dict[str, Any], ...]

    @property
    def state(self) -> Literal["paused", "recording"]:
        return "paused" if self.silences else "recording"

    def causes(self) -> set[str]:
        return {str(s["cause"]) for s in self.silences}


@dataclass(frozen=True)
class SilenceChange:
    """A silence started (``pause``) or ended (``resume``), for listeners (audit, metrics)."""

    recording_id: str
    kind: Literal["pause", "resume"]
    cause: str
    channels: Channels
    at: float
    by: str
    reason: str | None = None  # of a resume: "request", "auto_resume", "digits_stopped", "call_ended"
    detail: dict[str, Any] = field(default_factory=dict)
    automatic: bool = False  # the recorder's own doing (digits, auto-resume, hang-up), not a request


Listener = Callable[[SilenceChange], None]


@dataclass
class _Book:
    session: SilenceTarget
    silences: dict[str, Silence] = field(default_factory=dict)
    generation: int = 0
    digits: dict[str, float] = field(default_factory=dict)  # capture's open digit intervals: start


class Silencer:
    """The engine's silences of its open sessions; every method runs on the engine's event loop."""

    def __init__(self, capture: Callable[[], CaptureSilence], clock: Callable[[], float]) -> None:
        self._capture = capture
        self._clock = clock
        self._books: dict[str, _Book] = {}
        self._listeners: list[Listener] = []

    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    # -- session life --------------------------------------------------------------------------

    def open(self, session: SilenceTarget) -> None:
        self._books[session.recording_id] = _Book(session)

    def streams_changed(self, recording_id: str) -> None:
        """A stream was added or changed side: silences of one side take in its new streams."""
        book = self._books.get(recording_id)
        if book is None:
            return
        now = self._clock()
        for silence in book.silences.values():
            if silence.channels == "all":
                continue
            streams = streams_of(silence.channels, book.session.streams)
            if streams != silence.streams:
                self._capture()(recording_id, silence.interval, silence.streams, silence.since, now)
                book.generation += 1
                silence.interval = f"{silence.cause}:{book.generation}"
                silence.streams = streams
                self._capture()(recording_id, silence.interval, streams, now, None)

    def close(self, recording_id: str, ended_at: float) -> None:
        """The call ended: every silence in force ends on the timeline (capture withholds to the end)."""
        book = self._books.pop(recording_id, None)
        if book is None:
            return
        for silence in list(book.silences.values()):
            self._finish(book, silence, ended_at, "system", "call_ended")

    # -- starting and ending -------------------------------------------------------------------

    def status(self, recording_id: str) -> SilenceStatus | None:
        book = self._books.get(recording_id)
        if book is None:
            return None
        ordered = sorted(book.silences.values(), key=lambda s: (s.since, s.cause))
        return SilenceStatus(recording_id, tuple(s.to_dict() for s in ordered))

    def start(
        self,
        recording_id: str,
        cause: str,
        *,
        channels: Channels = "all",
        by: str = "system",
        max_seconds: float | None = None,
        at: float | None = None,
        detail: dict[str, Any] | None = None,
        interval: str | None = None,
        automatic: bool = False,
    ) -> SilenceStatus:
        """Silence ``channels`` of a live call from ``at`` (default now) for ``cause``.

        A cause already in force over the same channels is renewed (its deadline
        restarts) rather than doubled; over other channels it is ended and started
        again. ``interval`` names a capture interval that already exists (digits
        that capture silenced itself), which is then only relayed.
        """
        book = self._book(recording_id)
        now = self._clock()
        since = now if at is None else at
        deadline = now + max_seconds if max_seconds is not None else None
        current = book.silences.get(cause)
        if current is not None and current.channels == channels:
            current.deadline = deadline
            self._arm(recording_id, current)
            return self._status(book)
        if current is not None:
            self._finish(book, current, since, by, "changed", automatic)
        book.generation += 1
        streams = streams_of(channels, book.session.streams)
        silence = Silence(
            cause,
            channels,
            since,
            by,
            dict(detail or {}),
            deadline,
            interval or f"{cause}:{book.generation}",
            streams,
        )
        # Capture first: from here on no packet of the interval can be journalled.
        self._capture()(recording_id, silence.interval, streams, since, None)
        book.silences[cause] = silence
        self._arm(recording_id, silence)
        offset = max(0.0, since - book.session.started_at)
        data = {"cause": cause, "channels": channels, "by": by, **silence.detail}
        book.session.record_event(CallEvent(PAUSE_EVENT, offset, data))
        metrics.PAUSES.labels(cause=cause).inc()
        self._tell(
            SilenceChange(
                recording_id, "pause", cause, channels, since, by, detail=silence.detail, automatic=automatic
            )
        )
        return self._status(book)

    def end(
        self,
        recording_id: str,
        cause: str,
        *,
        by: str = "system",
        reason: str = "request",
        at: float | None = None,
    ) -> SilenceStatus:
        """End ``cause``'s silence at ``at`` (default now); Conflict when that cause is not in force."""
        book = self._book(recording_id)
        silence = book.silences.get(cause)
        if silence is None:
            raise Conflict(f"the call is not paused by {cause}")
        self._finish(book, silence, self._clock() if at is None else at, by, reason, automatic=False)
        return self._status(book)

    def _finish(
        self, book: _Book, silence: Silence, at: float, by: str, reason: str, automatic: bool = True
    ) -> None:
        recording_id = book.session.recording_id
        at = max(at, silence.since)
        if silence.timer is not None:
            silence.timer.cancel()
        book.silences.pop(silence.cause, None)
        if reason != "call_ended":
            self._capture()(recording_id, silence.interval, silence.streams, silence.since, at)
        offset = max(0.0, at - book.session.started_at)
        data = {
            "cause": silence.cause,
            "channels": silence.channels,
            "by": by,
            "reason": reason,
            "paused_seconds": round(at - silence.since, 3),
        }
        book.session.record_event(CallEvent(RESUME_EVENT, offset, data))
        change = SilenceChange(
            recording_id, "resume", silence.cause, silence.channels, at, by, reason, silence.detail, automatic
        )
        self._tell(change)

    def digits(self, recording_id: str, name: str, state: str, at: float, how: str) -> None:
        """Capture silenced a call for keypad digits (``start``) or stopped (``end``).

        The silence is on the timeline once however many capture workers found
        digits; each worker's interval is relayed to the others (a worker pool
        holds the call's streams in several processes), and the silence ends
        when the last of them does.
        """
        book = self._books.get(recording_id)
        if book is None:
            return
        if state == "start":
            book.digits[name] = at
            if DIGITS_CAUSE in book.silences:
                self._capture()(recording_id, name, None, at, None)
            else:
                detail = {"detected": how}
                self.start(recording_id, DIGITS_CAUSE, at=at, detail=detail, interval=name, automatic=True)
            return
        start = book.digits.pop(name, None)
        if start is None:
            return
        self._capture()(recording_id, name, None, start, at)
        silence = book.silences.get(DIGITS_CAUSE)
        if not book.digits and silence is not None:
            self._finish(book, silence, at, "system", "digits_stopped")

    # -- internals -----------------------------------------------------------------------------

    def _book(self, recording_id: str) -> _Book:
        book = self._books.get(recording_id)
        if book is None:
            raise Conflict(f"recording {recording_id} is not live")
        return book

    def _status(self, book: _Book) -> SilenceStatus:
        status = self.status(book.session.recording_id)
        assert status is not None
        return status

    def _arm(self, recording_id: str, silence: Silence) -> None:
        if silence.timer is not None:
            silence.timer.cancel()
            silence.timer = None
        if silence.deadline is None:
            return
        loop = asyncio.get_running_loop()
        delay = max(0.0, silence.deadline - self._clock())
        silence.timer = loop.call_later(delay, self._expire, recording_id, silence.cause, silence.interval)

    def _expire(self, recording_id: str, cause: str, interval: str) -> None:
        book = self._books.get(recording_id)
        silence = book.silences.get(cause) if book is not None else None
        if book is None or silence is None or silence.interval != interval:
            return
        assert silence.deadline is not None
        self._finish(book, silence, silence.deadline, "system", "auto_resume")

    def _tell(self, change: SilenceChange) -> None:
        for listener in self._listeners:
            try:
                listener(change)
            except Exception:
                log.exception("silence listener failed for %s", change.recording_id)
