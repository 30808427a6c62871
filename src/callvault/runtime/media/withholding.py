"""What capture keeps off the disk: one session's silence intervals and keypad digits, applied per flush.

The capture loop (:mod:`.capture`) hands each flush of a session that has
silences or watched streams to its :class:`Withholding` before anything is
journalled. Three things happen, in this order:

1. **Digits** (:mod:`.digit_watch`): the new packets of each watched stream
   are scanned for RFC 4733 events and in-band tones. The first digit opens
   a silence of every stream of the call from ``DIGIT_LEAD_SECONDS`` before
   it (the tone's start, or the audio an SBC let through before it switched to
   events); it ends ``resume_after`` seconds after the last digit. Both are
   reported (never the digit) so the engine puts them on the timeline.
2. **Hold-back**: while streams are watched, the last ``HOLDBACK_SECONDS`` of
   each stream stay in memory until the next flush, so the digit that
   triggers a pause is blanked too: a tone is confirmed 40 ms after it began,
   an event arrives after its lead-in, and a digit of one stream must also
   blank the other stream's packets of the same moment, which in a worker
   pool may sit in another process. A journal then lags by up to one flush
   interval plus the hold-back (1.25 s) instead of one interval.
3. **Withholding**: packets whose arrival time falls in a silence interval
   covering their stream are dropped. The count of those dropped between two
   stored packets of a stream (which the stream's sequence numbers would
   otherwise show as lost) goes to the journal as a running ``rtp_withheld``
   total, so the renderer does not count a pause as packet loss; packets
   silenced before a stream's first stored packet or after its last are
   outside its sequence range and are not counted.

Intervals are named by whoever opened them (``api:3``, ``dtmf:1``) and set
again to move their end. An ended interval is kept a few seconds, as packets
of that time may still be waiting for their flush, then forgotten, so memory
stays bounded however often a call is paused.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable
from dataclasses import dataclass, field

from callvault.runtime.media.digit_watch import DigitSpan, DigitWatch
from callvault.runtime.media.journal_backlog import Batch

HOLDBACK_SECONDS = 0.25
DIGIT_LEAD_SECONDS = 0.1
FORGET_AFTER_SECONDS = 5.0
DIGITS_NAME = "dtmf"

# report(interval name, "start" | "end", wall-clock time, "rfc4733" | "inband")
DigitsReport = Callable[[str, str, float, str], None]


@dataclass
class Interval:
    start: float
    end: float | None  # None: until further notice
    streams: frozenset[int] | None  # None: every stream of the session

    def covers(self, index: int) -> bool:
        return self.streams is None or index in self.streams


@dataclass
class _Count:
    """Packets of one stream withheld, as its sequence numbers will show them."""

    stored: bool = False  # a packet of the stream was journalled
    pending: int = 0  # withheld since the last stored packet
    total: int = 0  # withheld between stored packets
    reported: int = 0


@dataclass
class Withholding:
    resume_after: float
    report: DigitsReport
    holdback: float = HOLDBACK_SECONDS
    prefix: str = ""  # makes digit interval names unique across capture workers
    intervals: dict[str, Interval] = field(default_factory=dict)
    watches: dict[int, DigitWatch] = field(default_factory=dict)
    _held: dict[int, tuple[list[float], list[bytes]]] = field(default_factory=dict)
    _counts: dict[int, _Count] = field(default_factory=dict)
    _digits: str | None = None  # the open digits interval
    _digits_last: float = 0.0
    _digits_how: str = ""
    _opened: int = 0

    @property
    def idle(self) -> bool:
        """Nothing to do: no silence, no watched stream, nothing held."""
        return not self.intervals and not self.watches and not self._held

    def set_interval(
        self, name: str, streams: frozenset[int] | None, start: float, end: float | None
    ) -> None:
        known = self.intervals.get(name)
        if known is not None and known.end is not None and end is None:
            return  # a late repeat of the start of an interval already ended here
        self.intervals[name] = Interval(start, end, streams)

    def journalled_before(self, indexes: list[int]) -> None:
        """Streams with packets in the journal from before this object existed (a first pause mid-call)."""
        for index in indexes:
            self._counts.setdefault(index, _Count()).stored = True

    def watch(self, index: int, watch: DigitWatch | None) -> None:
        if watch is None:
            self.watches.pop(index, None)
        else:
            self.watches[index] = watch

    # -- one flush -------------------------------------------------------------------------------

    def apply(self, records: list[Batch], now: float, final: bool) -> list[Batch]:
        """What of this flush's ``records`` (and what was held back) may be journalled now."""
        merged: dict[int, tuple[list[float], list[bytes], int]] = {
            index: (arrivals, packets, len(arrivals)) for index, (arrivals, packets) in self._held.items()
        }
        self._held = {}
        for index, arrivals, packets in records:
            if index in merged:
                held_arrivals, held_packets, new_from = merged[index]
                merged[index] = (held_arrivals + arrivals, held_packets + packets, new_from)
            else:
                merged[index] = (arrivals, packets, 0)
        if self.watches:
            self._digits_step(self._scan(merged), now, final)
        horizon = now - self.holdback if self.watches and not final else None
        out: list[Batch] = []
        for index, (arrivals, packets, _) in merged.items():
            if horizon is not None:
                cut = bisect_left(arrivals, horizon)
                if cut < len(arrivals):
                    self._held[index] = (arrivals[cut:], packets[cut:])
                    arrivals, packets = arrivals[:cut], packets[:cut]
            if not arrivals:
                continue
            if self.intervals:
                arrivals, packets = self._withhold(index, arrivals, packets)
            else:
                self._stored(index)
            if arrivals:
                out.append((index, arrivals, packets))
        self._forget(now)
        return out

    def withheld_totals(self) -> list[tuple[int, int]]:
        """``(stream index, total)`` of each stream whose withheld count changed since last asked."""
        changed = []
        for index, count in self._counts.items():
            if count.total != count.reported:
                changed.append((index, count.total))
                count.reported = count.total
        return changed

    def mark_unreported(self, index: int) -> None:
        """The last total of ``index`` could not be written (a full disk): report it again later."""
        count = self._counts.get(index)
        if count is not None:
            count.reported = -1

    # -- the steps ---------------------------------------------------------------------------------

    def _scan(self, merged: dict[int, tuple[list[float], list[bytes], int]]) -> DigitSpan | None:
        span: DigitSpan | None = None
        for index, (arrivals, packets, new_from) in merged.items():
            watch = self.watches.get(index)
            if watch is None or new_from >= len(arrivals):
                continue
            found = watch.scan(arrivals[new_from:], packets[new_from:])
            if found is not None:
                span = found.join(span)
        return span

    def _digits_step(self, span: DigitSpan | None, now: float, final: bool) -> None:
        if span is not None:
            if self._digits is None:
                self._opened += 1
                self._digits = f"{DIGITS_NAME}:{self.prefix}{self._opened}"
                start = span.first - DIGIT_LEAD_SECONDS
                self.intervals[self._digits] = Interval(start, None, None)
                self._digits_how = span.how
                self._digits_last = span.last
                self.report(self._digits, "start", start, span.how)
            else:
                self._digits_last = max(self._digits_last, span.last)
            return
        if self._digits is None or final or now - self._digits_last < self.resume_after:
            return
        name, self._digits = self._digits, None
        end = self._digits_last + self.resume_after
        interval = self.intervals.get(name)
        if interval is not None:
            interval.end = end
        self.report(name, "end", end, self._digits_how)

    def _withhold(
        self, index: int, arrivals: list[float], packets: list[bytes]
    ) -> tuple[list[float], list[bytes]]:
        drops: list[tuple[int, int]] = []
        for interval in self.intervals.values():
            if not interval.covers(index):
                continue
            lo = bisect_left(arrivals, interval.start)
            hi = len(arrivals) if interval.end is None else bisect_left(arrivals, interval.end)
            if lo < hi:
                drops.append((lo, hi))
        if not drops:
            self._stored(index)
            return arrivals, packets
        keep = [True] * len(arrivals)
        for lo, hi in drops:
            keep[lo:hi] = [False] * (hi - lo)
        count = self._counts.setdefault(index, _Count())
        for kept in keep:
            if not kept:
                count.pending += 1
            elif count.stored:
                count.total += count.pending
                count.pending = 0
            else:
                count.stored, count.pending = True, 0
        kept_arrivals = [a for a, k in zip(arrivals, keep, strict=True) if k]
        kept_packets = [p for p, k in zip(packets, keep, strict=True) if k]
        return kept_arrivals, kept_packets

    def _stored(self, index: int) -> None:
        count = self._counts.setdefault(index, _Count())
        if count.stored:
            count.total += count.pending
        count.stored, count.pending = True, 0

    def _forget(self, now: float) -> None:
        stale = [
            name
            for name, interval in self.intervals.items()
            if interval.end is not None and interval.end < now - FORGET_AFTER_SECONDS
        ]
        for name in stale:
            del self.intervals[name]
