"""Server transactions (RFC 3261 §17.2, RFC 6026), sans-IO with an injectable clock.

The runtime feeds requests in, sends what comes out, and calls :meth:`poll`
when :attr:`next_deadline` is reached; nothing here sleeps or touches a socket.

* INVITE server transaction: 100 Trying is the core's choice (it sends one at
  once); final non-2xx responses are retransmitted on Timer G until the ACK
  (Timer H gives up), ACK absorption lasts Timer I. A 2xx moves the
  transaction to RFC 6026's *Accepted* state for Timer L so retransmitted
  INVITEs are matched (we answer them with the 2xx again, which is harmless
  and repairs a lost 200 sooner than the core's timer).
* Retransmitting the 2xx itself until the ACK is the UAS core's job
  (§13.3.1.4): :class:`OkRetransmitter`.
* Non-INVITE transaction: the last response is resent on each retransmitted
  request until Timer J.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from callvault.sip.message import MAGIC_COOKIE, SipRequest, SipResponse

T1 = 0.5
T2 = 4.0
T4 = 5.0

Clock = Callable[[], float]
TransactionKey = tuple[str, ...]
InviteState = Literal["proceeding", "completed", "confirmed", "accepted", "terminated"]
NonInviteState = Literal["trying", "proceeding", "completed", "terminated"]


def transaction_key(request: SipRequest) -> TransactionKey:
    """Match key (RFC 3261 §17.2.3); ACK matches its INVITE, CANCEL is its own transaction.

    Requests from RFC 2543 clients (branch without the magic cookie) fall
    back to Call-ID, CSeq number, From tag and top Via sent-by.
    """
    via = request.top_via
    method = "INVITE" if request.method == "ACK" else request.method
    branch = via.branch or ""
    if branch.startswith(MAGIC_COOKIE):
        return ("3261", branch, via.sent_by, method)
    return (
        "2543",
        request.call_id,
        str(request.cseq.number),
        request.from_addr.tag or "",
        via.sent_by,
        method,
    )


class InviteServerTransaction:
    def __init__(self, request: SipRequest, *, reliable: bool, clock: Clock) -> None:
        self.request = request
        self.key = transaction_key(request)
        self.reliable = reliable
        self.state: InviteState = "proceeding"
        self.context: object = None  # where responses go; owned by the runtime
        self._clock = clock
        self._last: SipResponse | None = None
        self._timer_g: float | None = None
        self._g_interval = T1
        self._timer_end: float | None = None  # H, I or L, whichever the state runs
        self.ack_timed_out = False

    @property
    def last_response(self) -> SipResponse | None:
        return self._last

    def respond(self, response: SipResponse) -> list[SipResponse]:
        if self.state not in ("proceeding",):
            raise ValueError(f"INVITE transaction in state {self.state} cannot send {response.status}")
        now = self._clock()
        self._last = response
        if response.status < 200:
            return [response]
        if response.status < 300:
            self.state = "accepted"
            self._timer_end = now + 64 * T1  # Timer L
            return [response]
        self.state = "completed"
        if not self.reliable:
            self._timer_g = now + T1
        self._timer_end = now + 64 * T1  # Timer H
        return [response]

    def receive(self, request: SipRequest) -> list[SipResponse]:
        """A retransmitted INVITE or the ACK for a non-2xx final response."""
        if request.method == "ACK":
            if self.state == "completed":
                self.state = "confirmed"
                self._timer_g = None
                self._timer_end = self._clock() + (0.0 if self.reliable else T4)  # Timer I
            return []
        if self.state in ("proceeding", "completed", "accepted") and self._last is not None:
            return [self._last]
        return []

    def poll(self) -> list[SipResponse]:
        now = self._clock()
        out: list[SipResponse] = []
        if self._timer_end is not None and now >= self._timer_end:
            if self.state == "completed":
                self.ack_timed_out = True
            self.state = "terminated"
            self._timer_g = None
            self._timer_end = None
            return out
        if self.state == "completed" and self._timer_g is not None and now >= self._timer_g:
            assert self._last is not None
            out.append(self._last)
            self._g_interval = min(2 * self._g_interval, T2)
            # From the due time, not the poll time, so late polls do not stretch the schedule.
            self._timer_g += self._g_interval
        return out

    @property
    def next_deadline(self) -> float | None:
        deadlines = [d for d in (self._timer_g, self._timer_end) if d is not None]
        return min(deadlines) if deadlines else None


class NonInviteServerTransaction:
    def __init__(self, request: SipRequest, *, reliable: bool, clock: Clock) -> None:
        self.request = request
        self.key = transaction_key(request)
        self.reliable = reliable
        self.state: NonInviteState = "trying"
        self.context: object = None
        self._clock = clock
        self._last: SipResponse | None = None
        self._timer_j: float | None = None

    @property
    def last_response(self) -> SipResponse | None:
        return self._last

    def respond(self, response: SipResponse) -> list[SipResponse]:
        if self.state in ("completed", "terminated"):
            raise ValueError(f"non-INVITE transaction in state {self.state} cannot send {response.status}")
        self._last = response
        if response.status < 200:
            self.state = "proceeding"
        else:
            self.state = "completed"
            self._timer_j = self._clock() + (0.0 if self.reliable else 64 * T1)
        return [response]

    def receive(self, request: SipRequest) -> list[SipResponse]:
        if self.state in ("proceeding", "completed") and self._last is not None:
            return [self._last]
        return []

    def poll(self) -> list[SipResponse]:
        if self._timer_j is not None and self._clock() >= self._timer_j:
            self.state = "terminated"
            self._timer_j = None
        return []

    @property
    def next_deadline(self) -> float | None:
        return self._timer_j


ServerTransaction = InviteServerTransaction | NonInviteServerTransaction


class OkRetransmitter:
    """Retransmit a 2xx to INVITE until its ACK arrives (RFC 3261 §13.3.1.4).

    Intervals start at T1 and double up to T2; after 64*T1 without ACK the
    core should end the session (``gave_up``).
    """

    def __init__(self, response: SipResponse, *, reliable: bool, clock: Clock) -> None:
        self.response = response
        self.reliable = reliable
        self._clock = clock
        now = clock()
        self._interval = T1
        self._next: float | None = None if reliable else now + T1
        self._give_up_at: float | None = now + 64 * T1
        self.acknowledged = False
        self.gave_up = False

    def acknowledge(self) -> None:
        self.acknowledged = True
        self._next = None
        self._give_up_at = None

    def poll(self) -> list[SipResponse]:
        if self.acknowledged or self.gave_up:
            return []
        now = self._clock()
        if self._give_up_at is not None and now >= self._give_up_at:
            self.gave_up = True
            self._next = None
            return []
        if self._next is not None and now >= self._next:
            self._interval = min(2 * self._interval, T2)
            self._next += self._interval
            return [self.response]
        return []

    @property
    def next_deadline(self) -> float | None:
        deadlines = [d for d in (self._next, self._give_up_at) if d is not None]
        return min(deadlines) if deadlines else None


class TransactionTable:
    """Live server transactions by match key; terminated ones are dropped on :meth:`poll`."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._by_key: dict[TransactionKey, ServerTransaction] = {}

    def match(self, request: SipRequest) -> ServerTransaction | None:
        return self._by_key.get(transaction_key(request))

    def create(self, request: SipRequest, *, reliable: bool) -> ServerTransaction:
        transaction: ServerTransaction
        if request.method == "INVITE":
            transaction = InviteServerTransaction(request, reliable=reliable, clock=self.clock)
        else:
            transaction = NonInviteServerTransaction(request, reliable=reliable, clock=self.clock)
        self._by_key[transaction.key] = transaction
        return transaction

    def find_invite(self, cancel: SipRequest) -> InviteServerTransaction | None:
        """The INVITE a CANCEL targets: same branch and sent-by (RFC 3261 §9.2)."""
        key = transaction_key(cancel)
        found = self._by_key.get((*key[:-1], "INVITE"))
        return found if isinstance(found, InviteServerTransaction) else None

    def poll(self) -> list[tuple[ServerTransaction, list[SipResponse]]]:
        out: list[tuple[ServerTransaction, list[SipResponse]]] = []
        for key, transaction in list(self._by_key.items()):
            responses = transaction.poll()
            if responses:
                out.append((transaction, responses))
            if transaction.state == "terminated":
                del self._by_key[key]
        return out

    @property
    def next_deadline(self) -> float | None:
        deadlines = [d for t in self._by_key.values() if (d := t.next_deadline) is not None]
        return min(deadlines) if deadlines else None

    def __len__(self) -> int:
        return len(self._by_key)
