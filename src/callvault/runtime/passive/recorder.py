"""The passive recorder: captured frames in, one spool journal per answered call leg out.

Frames come from a live interface (:mod:`.live`) or a capture file
(:mod:`.pcap_import`), each with its capture timestamp, which is the clock
here: arrival times in the journal, the call's start (its 200 OK) and end
(its BYE) are all packet times, so an imported capture is recorded as it
happened. A call is catalogued when it is answered
(:mod:`callvault.services.passive_call` decides agent and customer); its
RTP, matched by :class:`~callvault.sip.passive_dialogs.PassiveDialogs`, is
buffered per stream and journalled in batches, in the same journal format
SIPREC capture writes, sealed under a per-call spool key. When the call
ends the journal is closed and handed on (``on_finished``) to be rendered
and sealed by the media engine.

Not thread-safe: one thread owns a recorder.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from callvault.crypto.keyprovider import KeyProvider
from callvault.media.codec_spec import CodecSpec
from callvault.media.payload_codecs import create_decoder
from callvault.rtp.srtp import SdesCrypto
from callvault.runtime.media.session import srtp_params
from callvault.runtime.media.spool_key import SpoolKey
from callvault.runtime.passive.demux import Demux
from callvault.services.call_record import FinalStatus, IngestSource
from callvault.services.passive_call import plan_call
from callvault.services.recordings import RecordingService
from callvault.settings import Network
from callvault.sip.passive_dialogs import (
    SIDES,
    Action,
    Answered,
    Ended,
    MediaChanged,
    PassiveCall,
    PassiveDialogs,
    Side,
)
from callvault.storage.spool import SpoolStream, SpoolWriter
from callvault.wire.flows import FlowKey, flow_ports, udp_flow
from callvault.wire.packets import Datagram

log = logging.getLogger(__name__)

STATIC_AUDIO = frozenset({0, 8, 9, 18})  # PCMU, PCMA, G722, G729: decodable without SDP
FLUSH_PACKETS = 500  # per stream: a journal record of about 10 s of 20 ms packets
MAX_FLOWS = 100_000  # the fast path's table of known RTP flows is rebuilt past this
STATUS_BY_REASON: dict[str, FinalStatus] = {
    "bye": "complete",
    "timeout": "complete",
    "capture_end": "interrupted",
}


@dataclass(frozen=True)
class Finished:
    """A call leg whose journal is closed, to be rendered and sealed."""

    recording_id: str
    journal: Path
    key: bytes
    ended_at: float
    status: FinalStatus


@dataclass
class _Leg:
    recording_id: str
    writer: SpoolWriter
    key: bytes
    started_at: float
    streams: dict[Side, SpoolStream]
    buffers: dict[Side, tuple[list[float], list[bytes]]] = field(default_factory=dict)
    last_activity: float = 0.0


def _sender_crypto(call: PassiveCall, sender: Side) -> object | None:
    """The SDES key ``sender`` encrypts with: its own a=crypto, the one whose tag the other side chose."""
    mine = call.party(sender).media.crypto
    if not mine:
        return None
    theirs = call.party("callee" if sender == "caller" else "caller").media.crypto
    chosen_tag = theirs[0].split(None, 1)[0] if theirs else None
    value = next((c for c in mine if c.split(None, 1)[0] == chosen_tag), mine[0])
    try:
        return SdesCrypto.parse(value)
    except ValueError:
        return None


@cache
def _decodable(encoding: str, clock_rate: int, channels: int) -> bool:
    if encoding in ("TELEPHONE-EVENT", "CN"):
        return True
    try:
        create_decoder(encoding, clock_rate, channels)
    except ValueError:
        return False
    return True


def _codecs(call: PassiveCall, sender: Side) -> list[CodecSpec]:
    """Payload types of what ``sender`` sends (as its peer, the receiver, declared them, else its own)
    that the renderer can decode: a call in GSM or Speex is still catalogued, its audio silence."""
    receiver = call.party("callee" if sender == "caller" else "caller")
    offered = receiver.media.codecs or call.party(sender).media.codecs
    return [c for c in offered if _decodable(c.encoding.upper(), c.clock_rate, c.channels)]


def _undecodable(call: PassiveCall) -> bool:
    """Neither side offered an audio codec callvault decodes."""
    return not any(
        not (c.is_telephone_event or c.is_comfort_noise) for side in SIDES for c in _codecs(call, side)
    )


class PassiveRecorder:
    def __init__(
        self,
        recordings: RecordingService,
        agent_for: Callable[[str | None], int | None],
        keys: KeyProvider,
        spool_dir: Path,
        source: IngestSource,
        on_finished: Callable[[Finished], None],
        *,
        agent_networks: Sequence[Network] = (),
        rtp_timeout: float = 60.0,
        tags: Sequence[str] = (),
        max_sip_message: int = 65_535,
        unsignalled: bool = False,
        on_started: Callable[[str, Path, bytes, float], None] | None = None,
    ) -> None:
        self._recordings = recordings
        self._agent_for = agent_for
        self._keys = keys
        self._spool_dir = spool_dir
        self._source = source
        self._on_finished = on_finished
        self._networks = tuple(agent_networks)
        self._rtp_timeout = rtp_timeout
        self._tags = list(tags)
        self._unsignalled_calls = unsignalled  # CALLVAULT_CAPTURE_UNSIGNALLED
        # Told (recording id, journal, key, start) when a call's journal opens: live capture has
        # the media engine render it while the call lasts.
        self._on_started = on_started
        self.demux = Demux(max_sip_message)
        self.dialogs = PassiveDialogs()
        self._legs: dict[str, _Leg] = {}  # call id -> open recording
        # The fast path: RTP flows already matched to (call id, sender), keyed by the frame's own
        # address bytes; indexed by port so a dialog's mapping change forgets what it affects.
        self._flows: dict[FlowKey, tuple[str, Side]] = {}
        self._flows_by_port: dict[int, list[FlowKey]] = {}
        self.counts: Counter[str] = Counter()
        self.recording_ids: list[str] = []
        self.now = 0.0

    @property
    def open_calls(self) -> int:
        return len(self._legs)

    def damage(self) -> dict[str, int]:
        """Frames and messages that could not be used, by cause."""
        return dict(self.demux.damage)

    # -- frames in -------------------------------------------------------------

    def frame(self, at: float, linktype: int, data: bytes) -> None:
        if at > self.now:
            self.now = at
        self.counts["frames"] += 1
        if self.dialogs.changed_ports:
            self._forget_flows()
        flow = udp_flow(linktype, data)
        if flow is not None:
            key, start, end = flow
            known = self._flows.get(key)
            # RTP version 2 (first byte 0x80-0xBF): a SIP message between the same ports goes the long way.
            if known is not None and start < end and 0x80 <= data[start] < 0xC0:
                leg = self._legs.get(known[0])
                if leg is not None:
                    self._append(leg, known[1], at, data[start:end])
                    return
        out = self.demux.frame(at, linktype, data)
        if out is None:
            return
        if isinstance(out, Datagram):
            # The fast path may take this flow from now on only if it reads the same payload
            # (not a tunnel's outer packet, not one put together from fragments).
            same = flow is not None and data[flow[1] : flow[2]] == out.payload
            self._datagram(at, out, flow[0] if same and flow is not None else None)
            return
        for seen in out:
            self.counts["sip_messages"] += 1
            try:
                actions = self.dialogs.on_message(seen.message, at, seen.src, seen.dst)
            except ValueError:
                self.demux.damage["SIP message without a usable dialog header"] += 1
                continue
            self._act(actions)

    def _datagram(self, at: float, datagram: Datagram, key: FlowKey | None) -> None:
        found = self.dialogs.media_for(datagram.src, datagram.dst)
        if found is None:
            found = self._unsignalled(at, datagram)
            if found is None:
                return
        call, sender = found
        if key is not None and not self.dialogs.changed_ports:
            self._remember_flow(key, call.call_id, sender)
        leg = self._legs.get(call.call_id)
        if leg is None:
            self.counts["unanswered_packets"] += 1  # early media before the answer
            return
        self._append(leg, sender, at, datagram.payload)

    def _append(self, leg: _Leg, sender: Side, at: float, payload: bytes) -> None:
        arrivals, packets = leg.buffers.setdefault(sender, ([], []))
        arrivals.append(at)
        packets.append(payload)
        leg.last_activity = at
        self.counts["rtp_packets"] += 1
        if len(packets) >= FLUSH_PACKETS:
            self._flush_stream(leg, sender)

    def _remember_flow(self, key: FlowKey, call_id: str, sender: Side) -> None:
        if len(self._flows) >= MAX_FLOWS:
            self._flows.clear()
            self._flows_by_port.clear()
        self._flows[key] = (call_id, sender)
        for port in set(flow_ports(key)):
            self._flows_by_port.setdefault(port, []).append(key)

    def _forget_flows(self) -> None:
        """Drop the remembered flows on ports whose dialog mapping changed (answer, re-INVITE, end)."""
        for port in self.dialogs.changed_ports:
            for key in self._flows_by_port.pop(port, ()):
                self._flows.pop(key, None)
        self.dialogs.changed_ports.clear()

    def _unsignalled(self, at: float, datagram: Datagram) -> tuple[PassiveCall, Side] | None:
        """RTP of no dialog: counted, and recorded as a stream pair when configured to."""
        payload = datagram.payload
        if len(payload) < 12 or payload[0] >> 6 != 2:
            return None  # not RTP
        self.counts["unsignalled_packets"] += 1
        payload_type = payload[1] & 0x7F
        if not self._unsignalled_calls or payload_type not in STATIC_AUDIO:
            return None
        call = self.dialogs.adopt_unsignalled(
            datagram.src, datagram.dst, [CodecSpec.static(payload_type)], at
        )
        self._begin(call, at, unsignalled=True)
        return call, "caller"

    # -- what the dialogs say ----------------------------------------------------

    def _act(self, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, Answered):
                self._begin(action.call, action.at)
            elif isinstance(action, MediaChanged):
                self._media_changed(action.call, action.side, action.at)
            elif isinstance(action, Ended):
                self._end(action.call, action.at, action.reason)

    def _begin(self, call: PassiveCall, at: float, *, unsignalled: bool = False) -> None:
        tags = self._tags + (["undecodable-codec"] if _undecodable(call) else [])
        tags += ["unsignalled"] if unsignalled else []
        plan = plan_call(call, agent_for=self._agent_for, agent_networks=self._networks, tags=tags)
        try:
            recording_id = self._recordings.begin(plan.call, self._source)
        except Exception as exc:  # noqa: BLE001 - one call's catalogue failure must not stop the capture
            # A dead or refusing catalogue loses this call, counted and shown (calls_lost, the
            # metric, the import's result); every other call, and the capture, go on.
            self.counts["calls_lost"] += 1
            log.error("a sniffed call could not be recorded: the catalogue refused it (%s)", exc)
            return
        spool_key = SpoolKey.new(self._keys, recording_id)
        writer = spool_key.create_journal(self._spool_dir, at)
        streams: dict[Side, SpoolStream] = {}
        for index, sender in enumerate(SIDES):
            stream = SpoolStream(
                index=index,
                label=sender,
                codecs=_codecs(call, sender),
                channel=plan.channels[sender],
                participant_aor=plan.aors[sender],
                srtp=srtp_params(_sender_crypto(call, sender)),
                on_hold=call.party(sender).media.on_hold,
            )
            writer.write_stream(stream)
            streams[sender] = stream
        self._legs[call.call_id] = _Leg(recording_id, writer, spool_key.key, at, streams, last_activity=at)
        if self._on_started is not None:
            self._on_started(recording_id, writer.path, spool_key.key, at)
        self.recording_ids.append(recording_id)
        self.counts["calls"] += 1
        log.info("sniffed call recorded as %s (layout by %s)", recording_id, plan.rule)

    def _media_changed(self, call: PassiveCall, side: Side, at: float) -> None:
        """``side`` sent new SDP: its stream's key and hold state, and the codecs of the stream to it."""
        leg = self._legs.get(call.call_id)
        if leg is None:
            return
        leg.last_activity = at
        offset = max(0.0, at - leg.started_at)
        for sender in SIDES:
            stream = leg.streams[sender]
            self._flush_stream(leg, sender)
            stream.codecs = _codecs(call, sender)
            stream.srtp = srtp_params(_sender_crypto(call, sender))
            held = call.party(side).media.on_hold
            if sender == side and held != stream.on_hold:
                stream.on_hold = held
                leg.writer.write_event("hold" if held else "resume", offset, {"stream": sender})
            leg.writer.write_stream(stream)

    def _end(self, call: PassiveCall, at: float, reason: str) -> None:
        leg = self._legs.pop(call.call_id, None)
        if leg is None:
            self.counts[f"calls_not_answered_{reason}"] += 1
            return
        for sender in SIDES:
            self._flush_stream(leg, sender)
        lost = leg.writer.close()
        if lost:
            log.warning("recording %s: %d journal records could not be written", leg.recording_id, lost)
        status = STATUS_BY_REASON.get(reason, "complete")
        self._on_finished(Finished(leg.recording_id, leg.writer.path, leg.key, at, status))

    def _flush_stream(self, leg: _Leg, sender: Side) -> None:
        buffered = leg.buffers.pop(sender, None)
        if buffered and buffered[1]:
            leg.writer.write_packets(leg.streams[sender].index, buffered[0], buffered[1])

    # -- time passes ------------------------------------------------------------

    def tick(self, now: float) -> None:
        """Journal what is buffered and end calls silent for ``rtp_timeout`` (call about once a second)."""
        for call in self.dialogs.calls():
            leg = self._legs.get(call.call_id)
            if leg is None:
                if now - call.invited_at > 300:  # never answered, never ended: forget it
                    self.dialogs.end(call, now, "timeout")
                continue
            for sender in SIDES:
                self._flush_stream(leg, sender)
            if now - leg.last_activity > self._rtp_timeout:
                self._act(self.dialogs.end(call, leg.last_activity, "timeout"))

    def finish(self) -> None:
        """End every call still open (the capture ended): they are sealed as interrupted."""
        for call in self.dialogs.calls():
            if call.call_id in self._legs:
                self._act(self.dialogs.end(call, self._legs[call.call_id].last_activity, "capture_end"))
            else:
                self.dialogs.end(call, self.now, "capture_end")
