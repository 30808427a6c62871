"""SIP dialogs followed from the outside (port mirroring, packet captures), with their media addresses.

A sniffer is neither UAC nor UAS: it sees both sides' messages and must
infer who said what. A call (one Call-ID, one recording per call leg) is
followed from its INVITE through provisional and final responses,
re-INVITEs (hold, codec and address changes), ACK with a late answer, BYE
and CANCEL. Each party's SDP (offer or answer, whoever sent it) says where
that party *receives* RTP, so packets sent to the caller's address are the
callee's voice and vice versa. Streams are named by their sender:
``caller`` and ``callee``.

Who sent a message: a request comes from the caller when its From tag is the
dialog's first From tag, else from the callee; a response comes from the
other side than its request.

RTP is matched by :meth:`PassiveDialogs.media_for`: first the exact
destination address and port from SDP, then the source (symmetric RTP: a
party sends from the port it receives on), then the signalled port alone
when only one call uses it (NAT: the address differs from what SDP says).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from callvault.media.codec_spec import CodecSpec
from callvault.sip.headers import NameAddr
from callvault.sip.message import SipRequest, SipResponse
from callvault.sip.sdp import SessionDescription

Side = Literal["caller", "callee"]
Addr = tuple[str, int]
EndReason = Literal["bye", "cancel", "rejected", "timeout", "capture_end"]
SIDES: tuple[Side, Side] = ("caller", "callee")
MAX_CALLS = 100_000


def other(side: Side) -> Side:
    return "callee" if side == "caller" else "caller"


@dataclass
class PartyMedia:
    """One party's audio as its SDP describes it: where it receives, how, whether it holds."""

    address: Addr | None = None
    codecs: list[CodecSpec] = field(default_factory=list)
    crypto: list[str] = field(default_factory=list)
    on_hold: bool = False


@dataclass
class Party:
    aor: str | None
    display_name: str | None
    signalling: Addr  # where its SIP came from (or went to)
    media: PartyMedia = field(default_factory=PartyMedia)


@dataclass
class PassiveCall:
    call_id: str
    caller_tag: str | None
    invited_at: float
    caller: Party
    callee: Party
    answered_at: float | None = None
    ended_at: float | None = None
    end_reason: EndReason | None = None

    def party(self, side: Side) -> Party:
        return self.caller if side == "caller" else self.callee


@dataclass(frozen=True)
class Answered:
    call: PassiveCall
    at: float


@dataclass(frozen=True)
class MediaChanged:
    """``side``'s SDP changed on an answered call: the stream *to* it, sent by the other side, follows."""

    call: PassiveCall
    side: Side
    at: float


@dataclass(frozen=True)
class Ended:
    call: PassiveCall
    at: float
    reason: EndReason


Action = Answered | MediaChanged | Ended


def _addr(value: str | None) -> tuple[str | None, str | None]:
    """(aor, display name) of a From/To value, or (None, None) when it does not parse."""
    if value is None:
        return None, None
    try:
        parsed = NameAddr.parse(value)
    except ValueError:
        return None, None
    return parsed.uri, parsed.display_name


def parse_media(body: bytes, content_type: str | None) -> PartyMedia | None:
    """The first audio stream of an SDP body; None when the body holds no SDP."""
    if not body or (content_type or "application/sdp").split(";")[0].strip().lower() != "application/sdp":
        return None
    sdp = SessionDescription.parse(body)
    audio = next((m for m in sdp.media if m.kind == "audio"), None)
    if audio is None:
        return None
    connection = sdp.connection_for(audio)
    held = sdp.is_on_hold(audio) or (audio.direction or sdp.direction) in ("sendonly", "inactive")
    address = (connection.address, audio.port) if connection is not None and audio.port else None
    return PartyMedia(address, audio.codecs(), audio.crypto, held)


class PassiveDialogs:
    """Every call the sniffer follows, and where their RTP goes."""

    def __init__(self, max_calls: int = MAX_CALLS) -> None:
        self._calls: dict[str, PassiveCall] = {}
        self._max_calls = max_calls
        self._by_address: dict[Addr, tuple[PassiveCall, Side]] = {}  # receiver address -> (call, receiver)
        self._by_port: dict[int, list[tuple[PassiveCall, Side]]] = {}
        # Ports whose mapping changed since the owner last looked: what it cached from media_for
        # for a flow on one of them may be wrong now (the recorder's fast path drains this).
        self.changed_ports: set[int] = set()
        self.unparsable_sdp = 0

    def __len__(self) -> int:
        return len(self._calls)

    def calls(self) -> list[PassiveCall]:
        return list(self._calls.values())

    def on_message(self, message: SipRequest | SipResponse, at: float, src: Addr, dst: Addr) -> list[Action]:
        """Follow one SIP message seen on the wire; ValueError for headers the dialog needs that do not parse."""
        call_id = message.call_id
        if isinstance(message, SipRequest):
            return self._request(message, call_id, at, src, dst)
        return self._response(message, call_id, at)

    def _request(self, request: SipRequest, call_id: str, at: float, src: Addr, dst: Addr) -> list[Action]:
        call = self._calls.get(call_id)
        method = request.method
        if method == "INVITE" and call is None:
            if len(self._calls) >= self._max_calls:
                raise ValueError(f"more than {self._max_calls} calls in progress; INVITE ignored")
            caller_aor, caller_name = _addr(request.headers.get("From"))
            callee_aor, callee_name = _addr(request.headers.get("To"))
            call = PassiveCall(
                call_id,
                request.from_addr.tag,
                at,
                Party(caller_aor, caller_name, src),
                Party(callee_aor, callee_name, dst),
            )
            self._calls[call_id] = call
            self._sdp(call, "caller", request.body, request.content_type, at)
            return []
        if call is None:
            return []
        sender: Side = "caller" if request.from_addr.tag == call.caller_tag else "callee"
        if method in ("INVITE", "ACK", "UPDATE"):
            return self._sdp(call, sender, request.body, request.content_type, at)
        if method == "BYE":
            return self._end(call, at, "bye")
        if method == "CANCEL" and call.answered_at is None:
            return self._end(call, at, "cancel")
        return []

    def _response(self, response: SipResponse, call_id: str, at: float) -> list[Action]:
        call = self._calls.get(call_id)
        if call is None:
            return []
        method = response.cseq.method.upper()
        if method not in ("INVITE", "UPDATE"):
            return []
        request_sender: Side = "caller" if response.from_addr.tag == call.caller_tag else "callee"
        responder = other(request_sender)
        actions: list[Action] = []
        if 100 < response.status < 300:
            actions += self._sdp(call, responder, response.body, response.content_type, at)
        if 200 <= response.status < 300 and method == "INVITE" and call.answered_at is None:
            call.answered_at = at
            actions.insert(0, Answered(call, at))
        elif response.status >= 300 and method == "INVITE" and call.answered_at is None:
            actions += self._end(call, at, "rejected")
        return actions

    def _sdp(
        self, call: PassiveCall, side: Side, body: bytes, content_type: str | None, at: float
    ) -> list[Action]:
        try:
            media = parse_media(body, content_type)
        except ValueError:
            self.unparsable_sdp += 1
            return []
        if media is None:
            return []
        party = call.party(side)
        self._unmap(call, side)
        if media.address is None and party.media.address is not None:
            media.address = party.media.address  # port 0 / hold keeps the last address known
        party.media = media
        self._map(call, side)
        return [MediaChanged(call, side, at)] if call.answered_at is not None else []

    def _map(self, call: PassiveCall, side: Side) -> None:
        address = call.party(side).media.address
        if address is not None:
            self.changed_ports.add(address[1])
            self._by_address[address] = (call, side)
            self._by_port.setdefault(address[1], []).append((call, side))

    def _unmap(self, call: PassiveCall, side: Side) -> None:
        address = call.party(side).media.address
        if address is None:
            return
        self.changed_ports.add(address[1])
        if self._by_address.get(address, (None, None))[0] is call:
            del self._by_address[address]
        users = [u for u in self._by_port.get(address[1], []) if u[0] is not call or u[1] != side]
        if users:
            self._by_port[address[1]] = users
        else:
            self._by_port.pop(address[1], None)

    def media_for(self, src: Addr, dst: Addr) -> tuple[PassiveCall, Side] | None:
        """(call, sending side) of an RTP packet, or None when no followed call signalled it."""
        found = self._by_address.get(dst)
        if found is not None:
            return found[0], other(found[1])
        found = self._by_address.get(src)
        if found is not None:
            return found  # symmetric RTP: the party sends from where it receives
        users = self._by_port.get(dst[1])
        if users is not None and len(users) == 1:
            return users[0][0], other(users[0][1])
        return None

    def adopt_unsignalled(self, src: Addr, dst: Addr, codecs: list[CodecSpec], at: float) -> PassiveCall:
        """Follow an RTP stream pair whose SIP was never seen (capture started mid-call) as a call:
        the first sender is taken as the caller, each side receiving where it sends from."""
        call = PassiveCall(
            f"unsignalled:{src[0]}:{src[1]}-{dst[0]}:{dst[1]}",
            None,
            at,
            Party(None, None, src, PartyMedia(src, list(codecs))),
            Party(None, None, dst, PartyMedia(dst, list(codecs))),
            answered_at=at,
        )
        self._calls[call.call_id] = call
        for side in SIDES:
            self._map(call, side)
        return call

    def end(self, call: PassiveCall, at: float, reason: EndReason) -> list[Action]:
        """End a call from outside SIP (RTP timeout, end of capture)."""
        if self._calls.get(call.call_id) is not call:
            return []
        return self._end(call, at, reason)

    def _end(self, call: PassiveCall, at: float, reason: EndReason) -> list[Action]:
        call.ended_at, call.end_reason = at, reason
        for side in SIDES:
            self._unmap(call, side)
        del self._calls[call.call_id]
        return [Ended(call, at, reason)]
