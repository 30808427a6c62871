"""``callvault demo``: a small Session Recording Client that feeds the recorder synthetic calls.

Each call is a two-party SIPREC session (RFC 7866) over UDP: a multipart
INVITE with SDP and rs-metadata, two labelled PCMU streams (agent on label 1,
customer on label 2, each a different speech-like voice), RTP paced at 20 ms,
then BYE. Calls run one after another so the demo is easy to follow. Even calls are
inbound, odd ones outbound (a ``<direction>`` vendor extension in the session element,
which the recorder reads like any SRC's), and each names its queue in ``X-Queue``, so a
first listing fills every column.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import uuid
from dataclasses import dataclass, field

from callvault.media.g711 import ulaw_encode
from callvault.media.signals import synth_speech_like
from callvault.rtp.packet import RtpPacket
from callvault.sip.message import SipRequest, SipResponse, parse_message
from callvault.sip.sdp import SessionDescription

log = logging.getLogger(__name__)

AGENT_AOR = "sip:1001@pbx.example"
_BOUNDARY = "callvault-demo"
_PTIME = 0.02
_SAMPLES_PER_FRAME = 160


@dataclass
class _SipClient(asyncio.DatagramProtocol):
    responses: asyncio.Queue[SipResponse] = field(default_factory=asyncio.Queue)
    transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str | bytes | int, ...]) -> None:
        try:
            message = parse_message(data)
        except ValueError:
            return
        if isinstance(message, SipResponse):
            self.responses.put_nowait(message)


def _direction(number: int) -> str:
    """Demo calls alternate: even ones are the customer calling in, odd ones the agent calling out."""
    return "inbound" if number % 2 == 0 else "outbound"


def _queue(number: int) -> str:
    """The queue an SBC names in ``X-Queue``: inbound demo calls come in on support, outbound go from sales."""
    return "support" if number % 2 == 0 else "sales"


def _metadata(customer: str, session_id: str, direction: str) -> str:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<recording xmlns="urn:ietf:params:xml:ns:recording:1">
  <datamode>complete</datamode>
  <session session_id="{session_id}"><direction xmlns="urn:x-callvault:demo">{direction}</direction></session>
  <participant participant_id="YWdlbnQ="><nameID aor="{AGENT_AOR}"><name>Demo Agent</name></nameID></participant>
  <participant participant_id="Y3VzdA=="><nameID aor="{customer}"><name>Demo Customer</name></nameID></participant>
  <stream stream_id="c3RyZWFtMQ==" session_id="{session_id}"><label>1</label></stream>
  <stream stream_id="c3RyZWFtMg==" session_id="{session_id}"><label>2</label></stream>
  <participantstreamassoc participant_id="YWdlbnQ="><send>c3RyZWFtMQ==</send><recv>c3RyZWFtMg==</recv></participantstreamassoc>
  <participantstreamassoc participant_id="Y3VzdA=="><send>c3RyZWFtMg==</send><recv>c3RyZWFtMQ==</recv></participantstreamassoc>
</recording>
"""


def _sdp(host: str) -> str:
    lines = ["v=0", f"o=callvault-demo 1 1 IN IP4 {host}", "s=demo", f"c=IN IP4 {host}", "t=0 0"]
    for label, port in (("1", 40000), ("2", 40002)):
        lines += [f"m=audio {port} RTP/AVP 0", "a=rtpmap:0 PCMU/8000", f"a=label:{label}", "a=sendonly"]
    return "\r\n".join(lines) + "\r\n"


def _request(
    method: str, target: str, local: tuple[str, int], call_id: str, tag: str, cseq: int, to_tag: str | None
) -> SipRequest:
    request = SipRequest(method=method, uri=f"sip:srs@{target}")
    request.headers.add(
        "Via", f"SIP/2.0/UDP {local[0]}:{local[1]};branch=z9hG4bK{secrets.token_hex(8)};rport"
    )
    request.headers.add("Max-Forwards", "70")
    request.headers.add("From", f"<sip:demo-src@{local[0]}>;tag={tag}")
    request.headers.add("To", f"<sip:srs@{target}>" + (f";tag={to_tag}" if to_tag else ""))
    request.headers.add("Call-ID", call_id)
    request.headers.add("CSeq", f"{cseq} {method}")
    request.headers.add("Contact", f"<sip:demo-src@{local[0]}:{local[1]}>;+sip.src")
    return request


async def _transact(client: _SipClient, request: SipRequest, address: tuple[str, int]) -> SipResponse:
    """Send with RFC 3261 Timer A/E-style retransmission until a final response."""
    assert client.transport is not None
    data = request.serialise()
    interval = 0.5
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 32
    client.transport.sendto(data, address)
    while True:
        try:
            response = await asyncio.wait_for(client.responses.get(), interval)
        except TimeoutError:
            if loop.time() > deadline:
                raise TimeoutError(f"no final response to {request.method}") from None
            client.transport.sendto(data, address)
            interval = min(interval * 2, 4.0)
            continue
        if (
            response.call_id == request.call_id
            and response.cseq.method == request.method
            and response.status >= 200
        ):
            return response


async def _send_audio(host: str, ports: dict[str, int], seconds: float, seed: int) -> None:
    loop = asyncio.get_running_loop()
    voices = {
        "1": synth_speech_like(seconds, 8000, seed=seed),
        "2": synth_speech_like(seconds, 8000, seed=seed + 1),
    }
    transports = {}
    for label in voices:
        transport, _ = await loop.create_datagram_endpoint(
            asyncio.DatagramProtocol, local_addr=("0.0.0.0", 0)
        )
        transports[label] = transport
    ssrcs = {label: secrets.randbits(32) for label in voices}
    frames = int(seconds / _PTIME)
    start = loop.time()
    try:
        for index in range(frames):
            for label, pcm in voices.items():
                chunk = pcm[index * _SAMPLES_PER_FRAME : (index + 1) * _SAMPLES_PER_FRAME]
                packet = RtpPacket(
                    payload_type=0,
                    sequence_number=index & 0xFFFF,
                    timestamp=(index * _SAMPLES_PER_FRAME) & 0xFFFFFFFF,
                    ssrc=ssrcs[label],
                    payload=ulaw_encode(chunk),
                    marker=index == 0,
                )
                transports[label].sendto(packet.serialize(), (host, ports[label]))
            # Pace against the start time so timer jitter does not accumulate.
            await asyncio.sleep(max(0.0, start + (index + 1) * _PTIME - loop.time()))
    finally:
        for transport in transports.values():
            transport.close()


async def _one_call(
    client: _SipClient, target_host: str, target_port: int, seconds: float, number: int
) -> str:
    assert client.transport is not None
    local = client.transport.get_extra_info("sockname")[:2]
    address = (target_host, target_port)
    call_id = f"demo-{uuid.uuid4()}"
    tag = secrets.token_hex(4)
    customer = f"sip:+1415555{1000 + number:04d}@carrier.example"
    body = (
        f"--{_BOUNDARY}\r\nContent-Type: application/sdp\r\n\r\n{_sdp(local[0])}\r\n"
        f"--{_BOUNDARY}\r\nContent-Type: application/rs-metadata+xml\r\nContent-Disposition: recording-session\r\n\r\n"
        f"{_metadata(customer, secrets.token_urlsafe(12), _direction(number))}\r\n--{_BOUNDARY}--\r\n"
    ).encode()
    invite = _request("INVITE", f"{target_host}:{target_port}", local, call_id, tag, 1, None)
    invite.headers.add("Require", "siprec")
    invite.headers.add("Content-Type", f"multipart/mixed;boundary={_BOUNDARY}")
    invite.headers.add("X-Queue", _queue(number))
    invite.body = body
    response = await _transact(client, invite, address)
    if response.status != 200:
        raise RuntimeError(f"recorder refused demo call {call_id}: {response.status} {response.reason}")
    to_tag = response.to_addr.tag
    ack = _request("ACK", f"{target_host}:{target_port}", local, call_id, tag, 1, to_tag)
    client.transport.sendto(ack.serialise(), address)
    answer = SessionDescription.parse(response.body)
    media_host = answer.connection.address if answer.connection else target_host
    ports = {m.label or str(i + 1): m.port for i, m in enumerate(answer.media)}
    await _send_audio(media_host, ports, seconds, seed=number * 2)
    bye = _request("BYE", f"{target_host}:{target_port}", local, call_id, tag, 2, to_tag)
    await _transact(client, bye, address)
    log.info("demo call %s recorded (%.1f s)", call_id, seconds)
    return call_id


async def run_demo(target_host: str, target_port: int, calls: int = 3, seconds: float = 8.0) -> list[str]:
    """Send ``calls`` synthetic two-party SIPREC calls of ``seconds`` each; returns their Call-IDs."""
    loop = asyncio.get_running_loop()
    bind_host = "127.0.0.1" if target_host in ("127.0.0.1", "localhost") else "0.0.0.0"
    transport, client = await loop.create_datagram_endpoint(_SipClient, local_addr=(bind_host, 0))
    try:
        return [await _one_call(client, target_host, target_port, seconds, n) for n in range(calls)]
    finally:
        transport.close()
