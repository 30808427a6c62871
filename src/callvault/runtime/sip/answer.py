"""The SDP and Contact the recorder answers with.

Which codec, key and direction each stream gets is decided in
:mod:`callvault.runtime.sip.offer`; this module turns those plans and the
RTP ports the media engine bound into SDP. The answer's origin uses the
call's local tag as session id and bumps its version with every change, so
an SRC can tell a new answer from a repeated one (RFC 3264 §8). When the
SRC sends no SDP (delayed offer), the recorder offers its own receive-only
streams and the SRC answers in the ACK.
"""

from __future__ import annotations

from callvault.runtime.sip.core import RecordingCall
from callvault.runtime.sip.offer import DELAYED_OFFER_CODECS, StreamPlan, plan_streams
from callvault.runtime.sip.transport import Peer
from callvault.sip.sdp import SessionDescription, StreamAnswer, build_answer, build_offer


def contact(peer: Peer) -> str:
    """Our Contact on the transport the request came in on; ``+sip.srs`` marks a recorder (RFC 7866)."""
    transport = "" if peer.transport == "UDP" else f";transport={peer.transport.lower()}"
    return f"<sip:srs@{peer.local_host}:{peer.local_port}{transport}>;+sip.srs"


def answer_sdp(
    call: RecordingCall,
    offer: SessionDescription,
    plans: list[StreamPlan],
    ports: dict[str, int],
    address: str,
) -> str:
    answers = [
        StreamAnswer(ports.get(p.label, 0), list(p.codecs), p.answer_crypto, p.answer_direction)
        if p.accepted
        else StreamAnswer(0, [])
        for p in plans
    ]
    answer = build_answer(
        offer,
        answers,
        address=address,
        session_id=call.local_tag,
        session_version=call.sdp_version,
    )
    return answer.serialise()


def current_sdp(call: RecordingCall, address: str) -> str:
    """The answer to the call's last offer as it stands now (re-INVITE without SDP)."""
    assert call.offer is not None
    plans = plan_streams(call.offer, call.streams)
    ports = {label: port_of(call, label) for label in call.streams}
    return answer_sdp(call, call.offer, plans, ports, address)


def port_of(call: RecordingCall, label: str) -> int:
    return call.ports.get(label, 0)


def delayed_offer_sdp(call: RecordingCall, labels: list[str], ports: dict[str, int], address: str) -> str:
    return build_offer(
        labels,
        [ports[label] for label in labels],
        DELAYED_OFFER_CODECS,
        address=address,
        session_id=call.local_tag,
    ).serialise()
