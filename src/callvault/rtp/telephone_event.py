"""RFC 4733 telephone events (DTMF) carried in RTP.

A sender repeats one event in many packets that share the event's start
timestamp, with a growing duration, and sends the final packet (end bit set)
three times. :class:`EventTracker` turns that packet sequence into one
:class:`TelephoneEvent` per key press, whatever retransmissions or losses occur.
"""

from __future__ import annotations

from dataclasses import dataclass

_EVENT_NAMES = "0123456789*#ABCD"
FLASH_EVENT = 16


def event_name(event: int) -> str:
    """The DTMF symbol of an event code (RFC 4733 section 3.2), ``"flash"``, or ``"event-N"``."""
    if 0 <= event < len(_EVENT_NAMES):
        return _EVENT_NAMES[event]
    if event == FLASH_EVENT:
        return "flash"
    return f"event-{event}"


@dataclass(slots=True, frozen=True)
class EventPayload:
    """The 4-byte event block of RFC 4733 section 2.3."""

    event: int
    end: bool
    volume: int
    duration: int

    @classmethod
    def parse(cls, payload: bytes) -> EventPayload:
        if len(payload) < 4:
            raise ValueError(f"telephone-event payload is shorter than 4 bytes: {len(payload)}")
        flags = payload[1]
        return cls(
            event=payload[0],
            end=bool(flags & 0x80),
            volume=flags & 0x3F,
            duration=(payload[2] << 8) | payload[3],
        )


@dataclass(slots=True, frozen=True)
class TelephoneEvent:
    """One key press: ``start_rtp_ts`` is the RTP timestamp of its first packet."""

    digit: str
    start_rtp_ts: int
    duration_ticks: int


class EventTracker:
    """Collects distinct events from telephone-event packets fed in sequence-number order.

    An event is identified by its RTP timestamp. It is reported when its first
    end packet arrives; retransmitted end packets are ignored. An event whose end
    packets were all lost is reported when the next event starts, or by
    :meth:`finish`, with the longest duration seen.
    """

    __slots__ = ("_events", "_open_ts", "_open_event", "_open_duration", "_ended")

    def __init__(self) -> None:
        self._events: list[TelephoneEvent] = []
        self._open_ts: int | None = None
        self._open_event = 0
        self._open_duration = 0
        # Timestamps of events already reported, so that late retransmissions of
        # an end packet never report a key press twice.
        self._ended: set[int] = set()

    def feed(self, timestamp: int, payload: bytes) -> TelephoneEvent | None:
        """Account one packet; return the event it completes, if any."""
        block = EventPayload.parse(payload)
        if timestamp in self._ended:
            return None
        done: TelephoneEvent | None = None
        if self._open_ts is not None and self._open_ts != timestamp:
            self._close()
        if self._open_ts is None:
            self._open_ts = timestamp
            self._open_event = block.event
            self._open_duration = block.duration
        else:
            self._open_duration = max(self._open_duration, block.duration)
        if block.end:
            done = self._close()
        return done

    def finish(self) -> list[TelephoneEvent]:
        """Close any event still open and return every event seen, in order."""
        if self._open_ts is not None:
            self._close()
        return list(self._events)

    @property
    def events(self) -> list[TelephoneEvent]:
        return list(self._events)

    def _close(self) -> TelephoneEvent:
        assert self._open_ts is not None
        event = TelephoneEvent(event_name(self._open_event), self._open_ts, self._open_duration)
        self._events.append(event)
        self._ended.add(self._open_ts)
        self._open_ts = None
        return event
