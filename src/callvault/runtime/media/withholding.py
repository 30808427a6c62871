"""What capture keeps off the disk: one session's silence intervals and keypad digits, per flush.

The capture loop (:mod:`.capture`) hands each flush of a session that has
silences or watched streams to its :class:`Withholding` before anything is
journalled:

1. **Digits** (:mod:`.digit_watch`): capture scans the new packets of each
   watched stream for RFC 4733 events and in-band tones (for all the sessions
   of a flush tick at once) and passes what it found to :meth:`Withholding.settle`.
   The first digit opens a silence of every stream of the call from
   ``DIGIT_LEAD_SECONDS`` before it (the tone's start, or the audio an SBC let
   through before it switched to events); it ends ``resume_after`` seconds
   after the last digit. Both are reported (never the digit) so the engine
   puts them on the timeline.
2. **Hold-back** (capture's side): while a session's streams are watched,
   capture leaves each stream's last ``HOLDBACK_SECONDS`` in its buffer for the
   next flush, so the digit that triggers a pause is blanked too: a tone is
   confirmed 40 ms after it began, an event arrives after its lead-in, and a
   digit of one stream must also blank the other stream's packets of that
   moment, which in a worker pool sit in another process. A journal then lags
   by up to one flush interval plus the hold-back (1.25 s) instead of one.
3. **Withholding**: packets whose arrival time falls in a silence interval
   covering their stream are dropped. The count of those dropped between two
   stored packets of a stream (which its sequence numbers would otherwise show
   as lost) goes to the journal as a running ``rtp_withheld`` total, so the
   renderer does not count a pause as packet loss; packets silenced before a
   stream's first stored packet or after its last are outside its sequence
   range and are not counted.

Intervals are named by whoever opened them (``api:3``, ``dtmf:1``) and set
again to move their end. An ended interval is kept a few seconds, as packets
of that time may still be waiting for their flush, then forgotten, so memory
stays bounded however often a call is paused.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable
from dataclasses import dataclass, field

from callvault.runtime.media.digit_watch import DigitSpan, DigitWatch, scan_many
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
    prefix: str = ""  # makes digit interval names unique across capture workers
    intervals: dict[str, Interval] = field(default_factory=dict)
    _counts: dict[int, _Count] = field(default_factory=dict)
    _digits: str | None = None  # the open digits interval
    _digits_last: float = 0.0
    _digits_how: str = ""
    _opened: int = 0

    @property
    def idle(self) -> bool:
        """No silence in force or remembered: nothing to withhold."""
        return not self.intervals

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

    # -- one flush -------------------------------------------------------------------------------

    def settle(self, records: list[Batch], digits: DigitSpan | None, now: float, final: bool) -> list[Batch]:
        """What of this flush's ``records`` may be journalled, ``digits`` being what capture's scan
        found in the packets that arrived since the last flush (watched streams only)."""
        self._digits_step(digits, now, final)
        if not self.intervals:
            for index, _, _ in records:
                self._stored(index)
            return records
        out: list[Batch] = []
        for index, arrivals, packets in records:
            arrivals, packets = self._withhold(index, arrivals, packets)
            if arrivals:
                out.append((index, arrivals, packets))
        self._forget(now)
        return out

    def apply(
        self, records: list[Batch], now: float, final: bool, watches: dict[int, DigitWatch] | None = None
    ) -> list[Batch]:
        """:meth:`settle` after scanning ``records`` with ``watches`` (by stream index) itself."""
        items = [(watches[i], a, p) for i, a, p in records if watches and i in watches]
        found: DigitSpan | None = None
        for span in scan_many(items):
            if span is not None:
                found = span.join(found)
        return self.settle(records, found, now, final)

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
        drops.sort()
        count = self._counts.setdefault(index, _Count())
        kept_arrivals: list[float] = []
        kept_packets: list[bytes] = []
        at = 0
        for lo, hi in drops:
            if lo > at:  # a kept run: what was withheld before it lies between stored packets
                self._stored(index)
                kept_arrivals += arrivals[at:lo]
                kept_packets += packets[at:lo]
            if hi > at:
                count.pending += hi - max(lo, at)
                at = hi
        if at < len(arrivals):
            self._stored(index)
            kept_arrivals += arrivals[at:]
            kept_packets += packets[at:]
        return kept_arrivals, kept_packets

    def _stored(self, index: int) -> None:
        count = self._counts.get(index)
        if count is None:
            self._counts[index] = _Count(stored=True)
            return
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
