"""An independent Session Recording Client for tests.

Nothing here imports callvault: SIP, SDP and rs-metadata text is written with
f-strings, RTP headers are packed with ``struct``, G.711 is encoded with numpy
from the ITU-T reference algorithm, G.722 through PyAV, and SRTP through
pylibsrtp directly, Opus through PyAV's libopus, TLS through the standard
``ssl`` module. Blocking sockets: call it from a thread
(``asyncio.to_thread``) when the server runs in the test's event loop.
"""

from __future__ import annotations

import base64
import os
import secrets
import socket
import ssl
import struct
import time
import uuid
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

CRLF = "\r\n"


# -- audio encoders -------------------------------------------------------------


def ulaw_encode(pcm: npt.NDArray[np.int16]) -> bytes:
    x = pcm.astype(np.int32)
    sign = (x < 0).astype(np.int32)
    magnitude = np.minimum(np.abs(x), 32635) + 0x84
    exponent = np.clip(np.floor(np.log2(magnitude)).astype(np.int32) - 7, 0, 7)
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    return (~((sign << 7) | (exponent << 4) | mantissa) & 0xFF).astype(np.uint8).tobytes()


def alaw_encode(pcm: npt.NDArray[np.int16]) -> bytes:
    out = bytearray()
    seg_end = [0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF]
    for sample in pcm.astype(np.int32).tolist():
        value = sample >> 3
        if value >= 0:
            mask = 0xD5
        else:
            mask = 0x55
            value = -value - 1
        seg = next((i for i, end in enumerate(seg_end) if value <= end), 8)
        if seg >= 8:
            out.append(0x7F ^ mask)
            continue
        aval = seg << 4
        aval |= (value >> 1) & 0x0F if seg < 2 else (value >> seg) & 0x0F
        out.append(aval ^ mask)
    return bytes(out)


def g722_encode(pcm16k: npt.NDArray[np.int16]) -> list[bytes]:
    """20 ms G.722 frames (160 bytes each) of 16 kHz audio, via FFmpeg's encoder."""
    import av

    codec = av.CodecContext.create("g722", "w")
    codec.sample_rate = 16000
    codec.format = "s16"
    codec.layout = "mono"
    codec.open()
    data = bytearray()
    for start in range(0, pcm16k.size - 319, 320):
        frame = av.AudioFrame.from_ndarray(
            pcm16k[start : start + 320].reshape(1, -1), format="s16", layout="mono"
        )
        frame.sample_rate = 16000
        for packet in codec.encode(frame):
            data.extend(bytes(packet))
    for packet in codec.encode(None):
        data.extend(bytes(packet))
    return [bytes(data[i : i + 160]) for i in range(0, len(data) - 159, 160)]


def opus_encode(pcm48k: npt.NDArray[np.int16], bitrate: int = 32000) -> list[bytes]:
    """20 ms Opus packets (RFC 7587) of 48 kHz mono audio, via libopus."""
    import av

    codec = av.CodecContext.create("libopus", "w")
    codec.sample_rate = 48000
    codec.format = "s16"
    codec.layout = "mono"
    codec.bit_rate = bitrate
    codec.options = {"application": "audio", "frame_duration": "20"}
    codec.open()
    packets: list[bytes] = []
    for start in range(0, pcm48k.size - 959, 960):
        frame = av.AudioFrame.from_ndarray(
            pcm48k[start : start + 960].reshape(1, -1), format="s16", layout="mono"
        )
        frame.sample_rate = 48000
        frame.pts = start
        packets.extend(bytes(packet) for packet in codec.encode(frame))
    packets.extend(bytes(packet) for packet in codec.encode(None))
    return packets[: pcm48k.size // 960]


def frames_for(encoding: str, pcm: npt.NDArray[np.int16]) -> list[bytes]:
    """20 ms payloads; ``pcm`` is 8 kHz for G.711, 16 kHz for G.722, 48 kHz for Opus."""
    if encoding == "G722":
        return g722_encode(pcm)
    if encoding == "OPUS":
        return opus_encode(pcm)
    encoded = ulaw_encode(pcm) if encoding == "PCMU" else alaw_encode(pcm)
    return [encoded[i : i + 160] for i in range(0, len(encoded) - 159, 160)]


# -- RTP / SRTP ------------------------------------------------------------------


@dataclass
class RtpSender:
    host: str
    port: int
    payload_type: int
    frames: list[bytes]
    samples_per_frame: int = 160
    ssrc: int = field(default_factory=lambda: secrets.randbits(32))
    srtp_key: bytes | None = None  # 30 bytes key+salt
    srtp_suite: str = "AES_CM_128_HMAC_SHA1_80"
    drop: frozenset[int] = frozenset()  # frame indices never sent (network loss)
    # RFC 4733 digits (event code, first frame, frames): they replace the audio of those frames.
    digits: tuple[tuple[int, int, int], ...] = ()
    event_payload_type: int = 101
    source: str = "127.0.0.1"  # the address the packets are sent from
    first_seq: int | None = None  # None: random (a sender continuing a stream gives its next numbers)
    first_ts: int | None = None

    def packets(self) -> list[bytes | None]:
        """One entry per 20 ms slot; ``None`` where a packet is lost."""
        seq = secrets.randbelow(30000) if self.first_seq is None else self.first_seq
        ts = secrets.randbits(31) if self.first_ts is None else self.first_ts
        protect = None
        if self.srtp_key is not None:
            import pylibsrtp

            profile = (
                pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_32
                if self.srtp_suite.endswith("_32")
                else pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_80
            )
            policy = pylibsrtp.Policy(
                key=self.srtp_key, ssrc_type=pylibsrtp.Policy.SSRC_ANY_OUTBOUND, srtp_profile=profile
            )
            protect = pylibsrtp.Session(policy=policy).protect
        events = {
            first + step: (code, first, step, frames)
            for code, first, frames in self.digits
            for step in range(frames)
        }
        out: list[bytes | None] = []
        for index, audio in enumerate(self.frames):
            pt, payload = self.payload_type, audio
            stamp = ts + index * self.samples_per_frame
            marker = 0x80 if index == 0 else 0
            if index in events:
                code, first, step, frames = events[index]
                pt, stamp = self.event_payload_type, ts + first * self.samples_per_frame
                marker = 0x80 if step == 0 else 0
                end = 0x80 if step == frames - 1 else 0
                payload = struct.pack("!BBH", code, end | 10, (step + 1) * self.samples_per_frame)
            header = struct.pack(
                "!BBHII", 0x80, marker | pt, (seq + index) & 0xFFFF, stamp & 0xFFFFFFFF, self.ssrc
            )
            packet = header + payload
            out.append(None if index in self.drop else (protect(packet) if protect else packet))
        return out


def send_rtp(
    senders: list[RtpSender],
    ptime: float = 0.02,
    sockets: list[socket.socket] | None = None,
    lateness: list[float] | None = None,
) -> float:
    """Send every stream's packets interleaved, paced at ``ptime``, from one socket per stream
    (``sockets``, kept open by the caller, for a stream sent in several parts from one address);
    returns when (``time.monotonic``) the first packets went out. ``lateness``, when given,
    receives how far behind its schedule the latest packet went out (a stalled sender on a
    loaded machine sends a burst; tests of timing need to know)."""
    own = sockets is None
    if sockets is None:
        sockets = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in senders]
        for sock, sender in zip(sockets, senders, strict=True):
            sock.bind((sender.source, 0))
    streams = [s.packets() for s in senders]
    start = time.monotonic()
    late = 0.0
    try:
        for index in range(max(len(p) for p in streams)):
            due = start + index * ptime
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)  # real-time pacing of the media, not a wait on a condition
            late = max(late, -delay)
            for sock, sender, packets in zip(sockets, senders, streams, strict=True):
                packet = packets[index] if index < len(packets) else None
                if packet is not None:
                    sock.sendto(packet, (sender.host, sender.port))
    finally:
        if own:
            for sock in sockets:
                sock.close()
        if lateness is not None:
            lateness.append(late)
    return start


# -- SIP ---------------------------------------------------------------------------


@dataclass
class Response:
    status: int
    reason: str
    headers: dict[str, list[str]]
    body: bytes

    def header(self, name: str) -> str | None:
        values = self.headers.get(name.lower())
        return values[0] if values else None

    @property
    def to_tag(self) -> str | None:
        to = self.header("to") or self.header("t") or ""
        for piece in to.split(";")[1:]:
            key, _, value = piece.strip().partition("=")
            if key.lower() == "tag":
                return value
        return None


def parse_response(data: bytes) -> Response | None:
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("utf-8", "replace").split("\r\n")
    if not lines[0].startswith("SIP/2.0 "):
        return None
    _, code, *reason = lines[0].split(" ", 2)
    headers: dict[str, list[str]] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.setdefault(name.strip().lower(), []).append(value.strip())
    return Response(int(code), reason[0] if reason else "", headers, body)


@dataclass
class Stream:
    label: str
    encoding: str = "PCMU"  # PCMU, PCMA, G722 or OPUS
    sender_aor: str | None = None
    direction: str = "sendonly"
    srtp: bool = False
    key: bytes = field(default_factory=lambda: os.urandom(30))
    srtp_suite: str = "AES_CM_128_HMAC_SHA1_80"

    @property
    def payload_type(self) -> int:
        return {"PCMU": 0, "PCMA": 8, "G722": 9, "OPUS": 111}[self.encoding]

    @property
    def rtpmap(self) -> str:
        return "opus/48000/2" if self.encoding == "OPUS" else f"{self.encoding}/8000"

    @property
    def clock_rate(self) -> int:
        return 48000 if self.encoding == "OPUS" else 8000

    @property
    def samples_per_frame(self) -> int:
        return self.clock_rate // 50

    @property
    def stream_id(self) -> str:
        return base64.b64encode(f"stream-{self.label}".encode()).decode()


def sdp_offer(streams: list[Stream], *, host: str = "127.0.0.1", hold: bool = False, version: int = 1) -> str:
    lines = [
        "v=0",
        f"o=TestSRC 4242 {version} IN IP4 {host}",
        "s=-",
        f"c=IN IP4 {'0.0.0.0' if hold else host}",
        "t=0 0",
    ]
    for index, stream in enumerate(streams):
        proto = "RTP/SAVP" if stream.srtp else "RTP/AVP"
        lines.append(f"m=audio {40000 + 2 * index} {proto} {stream.payload_type} 101")
        lines.append(f"a=rtpmap:{stream.payload_type} {stream.rtpmap}")
        lines.append(f"a=rtpmap:101 telephone-event/{stream.clock_rate}")
        lines.append("a=fmtp:101 0-15")
        lines.append(f"a=label:{stream.label}")
        if stream.srtp:
            key = base64.b64encode(stream.key).decode()
            lines.append(f"a=crypto:1 {stream.srtp_suite} inline:{key}")
        lines.append("a=inactive" if hold else f"a={stream.direction}")
    return CRLF.join(lines) + CRLF


def metadata_xml(
    participants: list[tuple[str, str]], streams: list[Stream], session_id: str = "c2Vzc2lvbi0x"
) -> str:
    """``participants``: (participant id, AOR); each stream's sender is ``Stream.sender_aor``."""
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<recording xmlns="urn:ietf:params:xml:ns:recording:1">',
    ]
    parts.append("<datamode>complete</datamode>")
    parts.append(f'<session session_id="{session_id}"><sipSessionID>abc</sipSessionID></session>')
    for pid, aor in participants:
        parts.append(
            f'<participant participant_id="{pid}"><nameID aor="{aor}"><name>{aor}</name></nameID></participant>'
        )
    for stream in streams:
        parts.append(
            f'<stream stream_id="{stream.stream_id}" session_id="{session_id}"><label>{stream.label}</label></stream>'
        )
    for pid, aor in participants:
        sends = "".join(f"<send>{s.stream_id}</send>" for s in streams if s.sender_aor == aor)
        recvs = "".join(f"<recv>{s.stream_id}</recv>" for s in streams if s.sender_aor not in (aor, None))
        parts.append(
            f'<participantstreamassoc participant_id="{pid}">{sends}{recvs}</participantstreamassoc>'
        )
    parts.append("</recording>")
    return "\n".join(parts)


def multipart(sdp: str, xml: str, boundary: str = "testsrc-boundary") -> tuple[str, bytes]:
    body = (
        f"--{boundary}{CRLF}Content-Type: application/sdp{CRLF}{CRLF}{sdp}{CRLF}"
        f"--{boundary}{CRLF}Content-Type: application/rs-metadata+xml{CRLF}Content-Disposition: recording-session{CRLF}{CRLF}{xml}{CRLF}"
        f"--{boundary}--{CRLF}"
    )
    return f"multipart/mixed;boundary={boundary}", body.encode()


def answered_ports(sdp: bytes) -> dict[str, int]:
    """label → port of the answer's m= lines (position label if unlabelled)."""
    ports: dict[str, int] = {}
    current_port: int | None = None
    index = 0
    for line in sdp.decode().splitlines():
        if line.startswith("m="):
            current_port = int(line.split()[1])
            index += 1
            ports[str(index)] = current_port
        elif line.startswith("a=label:") and current_port is not None:
            ports.pop(str(index), None)
            ports[line[len("a=label:") :].strip()] = current_port
    return ports


class TestSrc:
    """One SIP client socket (UDP, TCP or TLS) talking to the recorder."""

    __test__ = False  # not a pytest class

    def __init__(
        self,
        host: str,
        port: int,
        transport: str = "UDP",
        tls: ssl.SSLContext | None = None,
        source: str = "127.0.0.1",
    ) -> None:
        """``source``: the local address to send from (127.0.0.2 is another host on loopback)."""
        self.host, self.port, self.transport = host, port, transport.upper()
        self.sock: socket.socket
        if self.transport == "UDP":
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.sock.bind((source, 0))
        elif self.transport == "TLS":
            assert tls is not None, "TLS needs an ssl.SSLContext that trusts the recorder"
            connection = socket.create_connection((host, port), source_address=(source, 0))
            self.sock = tls.wrap_socket(connection, server_hostname=host)
        else:
            self.sock = socket.create_connection((host, port), source_address=(source, 0))
        self.sock.settimeout(5.0)
        self.local_port = self.sock.getsockname()[1]
        self._buffer = b""
        self.call_id = f"{uuid.uuid4()}@testsrc"
        self.from_tag = secrets.token_hex(4)
        self.to_tag: str | None = None
        self.cseq = 1
        self.requests: list[bytes] = []  # requests from the recorder not yet looked at
        # Our requests by their Via branch: a response is ours only if it names one of them.
        self._sent: dict[str, bytes] = {}
        self.strays: list[Response] = []  # responses that were not ours, dropped
        self.acks_sent = 0  # ACKs of refused INVITEs (RFC 3261 17.1.1.3), retransmissions included

    def close(self) -> None:
        self.sock.close()

    def send_raw(self, data: bytes) -> None:
        branch = _top_branch(data)
        if branch and not data.startswith(b"SIP/2.0 "):
            self._sent.setdefault(branch, data)
        self._send(data)

    def _send(self, data: bytes) -> None:
        if self.transport == "UDP":
            self.sock.sendto(data, (self.host, self.port))
        else:
            self.sock.sendall(data)

    def receive(self, timeout: float = 5.0) -> Response:
        deadline = time.monotonic() + timeout
        while True:
            data = self._next_message(deadline)
            response = parse_response(data)
            if response is None:
                self.requests.append(data)
            elif self._is_ours(response):
                self._ack_refusal(response)
                return response
            else:
                self.strays.append(response)

    def _is_ours(self, response: Response) -> bool:
        """A response answers one of our requests: its top Via names a branch we sent, with our
        Call-ID. Anything else (a late retransmission of a refusal meant for an earlier SRC that
        had this local port, a forged response) is not an answer to us and must not be taken as one."""
        request = self._sent.get(
            _header_param(response.header("via") or response.header("v") or "", "branch")
        )
        if request is None:
            return False
        call_id = response.header("call-id") or response.header("i")
        return call_id == _request_header(request, ("call-id", "i"))

    def _ack_refusal(self, response: Response) -> None:
        """ACK a non-2xx final response to an INVITE, and each retransmission of it (RFC 3261
        17.1.1.3): without the ACK the recorder retransmits it for 32 s to this address, where
        the next SRC that gets the port would read it."""
        cseq = (response.header("cseq") or "").split()
        if response.status < 300 or len(cseq) != 2 or cseq[1] != "INVITE" or not cseq[0].isdigit():
            return
        branch = _header_param(response.header("via") or response.header("v") or "", "branch")
        invite = self._sent[branch]
        request_line, *lines = invite.split(b"\r\n\r\n", 1)[0].decode().split(CRLF)
        names = [line.split(":", 1)[0].strip().lower() for line in lines]
        vias = [line for line, name in zip(lines, names, strict=True) if name in ("via", "v")]
        # The INVITE's top Via (so the ACK matches the server transaction), From, Call-ID, Route;
        # the To of the response, with the recorder's tag.
        kept = [
            line
            for line, name in zip(lines, names, strict=True)
            if name in ("from", "f", "call-id", "i", "route")
        ]
        ack = [
            f"ACK {request_line.split(' ')[1]} SIP/2.0",
            vias[0],
            *kept,
            "Max-Forwards: 70",
            f"To: {response.header('to') or response.header('t') or ''}",
            f"CSeq: {cseq[0]} ACK",
            "Content-Length: 0",
        ]
        self._send((CRLF.join(ack) + CRLF + CRLF).encode())
        self.acks_sent += 1

    def _next_message(self, deadline: float) -> bytes:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("no SIP message from the recorder")
        self.sock.settimeout(remaining)
        if self.transport == "UDP":
            return self.sock.recv(65535)
        return self._read_stream_message(remaining)

    def wait_request(self, method: str, timeout: float = 10.0) -> bytes:
        """The next request ``method`` from the recorder (a BYE it sends), answered 200."""
        deadline = time.monotonic() + timeout
        while True:
            for data in self.requests:
                if data.startswith(method.encode() + b" "):
                    self.requests.remove(data)
                    self._send(_answer(data, 200))
                    return data
            data = self._next_message(deadline)
            response = parse_response(data)
            if response is None:
                self.requests.append(data)
            elif self._is_ours(response):
                self._ack_refusal(response)  # a refusal's retransmission still wants its ACK
            else:
                self.strays.append(response)

    def _read_stream_message(self, timeout: float) -> bytes:
        while b"\r\n\r\n" not in self._buffer:
            self._buffer += self._recv_some()
        head, _, rest = self._buffer.partition(b"\r\n\r\n")
        length = 0
        for line in head.decode().split("\r\n"):
            name, _, value = line.partition(":")
            if name.strip().lower() in ("content-length", "l"):
                length = int(value.strip())
        while len(rest) < length:
            rest += self._recv_some()
        self._buffer = rest[length:]
        return head + b"\r\n\r\n" + rest[:length]

    def _recv_some(self) -> bytes:
        data = self.sock.recv(65535)
        if not data:
            raise ConnectionError("the recorder closed the connection")
        return data

    def final_response(self, timeout: float = 5.0) -> Response:
        while True:
            response = self.receive(timeout)
            if response.status >= 200:
                return response

    def request_text(
        self,
        method: str,
        *,
        body: bytes = b"",
        content_type: str | None = None,
        extra: list[str] | None = None,
        cseq: int | None = None,
        branch: str | None = None,
        to_tag: str | None = None,
    ) -> tuple[bytes, str]:
        branch = branch or f"z9hG4bK{secrets.token_hex(6)}"
        number = cseq if cseq is not None else self.cseq
        tag = to_tag if to_tag is not None else self.to_tag
        to = f"<sip:srs@{self.host}>" + (f";tag={tag}" if tag else "")
        lines = [
            f"{method} sip:srs@{self.host}:{self.port} SIP/2.0",
            f"Via: SIP/2.0/{self.transport} 127.0.0.1:{self.local_port};branch={branch};rport",
            "Max-Forwards: 70",
            f"From: <sip:src@127.0.0.1>;tag={self.from_tag}",
            f"To: {to}",
            f"Call-ID: {self.call_id}",
            f"CSeq: {number} {method}",
            f"Contact: <sip:src@127.0.0.1:{self.local_port}>;+sip.src",
        ]
        lines += extra or []
        if content_type:
            lines.append(f"Content-Type: {content_type}")
        lines.append(f"Content-Length: {len(body)}")
        return (CRLF.join(lines) + CRLF + CRLF).encode() + body, branch

    def invite(
        self,
        content_type: str | None,
        body: bytes,
        extra: list[str] | None = None,
        *,
        ack: bool = True,
    ) -> Response:
        """INVITE (retransmitted over UDP until answered, RFC 3261 timer A); ACKs a 200 unless told not to."""
        data, _ = self.request_text(
            "INVITE", body=body, content_type=content_type, extra=["Require: siprec", *(extra or [])]
        )
        response = self._transact(data)
        if response.status == 200:
            self.to_tag = response.to_tag
            if ack:
                self.ack()
        return response

    def _transact(self, data: bytes, timeout: float = 10.0) -> Response:
        """Send a request and return its final response, retransmitting over UDP until then."""
        self.send_raw(data)
        head = data.split(b"\r\n\r\n", 1)[0].decode()
        cseq = next(line for line in head.split(CRLF) if line.lower().startswith("cseq:"))
        cseq = " ".join(cseq.split(":", 1)[1].split())
        branch = _top_branch(data)
        deadline = time.monotonic() + timeout
        interval = 0.5
        provisional = False
        while True:
            wait = min(deadline, time.monotonic() + interval)
            try:
                response = self.receive(max(0.001, wait - time.monotonic()))
            except TimeoutError:
                if time.monotonic() >= deadline:
                    raise
                if self.transport == "UDP" and not provisional:
                    self._send(data)
                    interval = min(interval * 2, 4.0)
                continue
            via = response.header("via") or response.header("v") or ""
            if (
                " ".join((response.header("cseq") or "").split()) != cseq
                or _header_param(via, "branch") != branch
            ):
                continue  # a late retransmission answering an earlier request
            if response.status >= 200:
                return response
            provisional = True

    def reinvite(self, content_type: str, body: bytes) -> Response:
        self.cseq += 1
        data, _ = self.request_text("INVITE", body=body, content_type=content_type)
        response = self._transact(data)
        if response.status == 200:
            self.ack()
        return response

    def ack(self, body: bytes = b"", content_type: str | None = None) -> None:
        data, _ = self.request_text("ACK", body=body, content_type=content_type)
        self.send_raw(data)

    def in_dialog(
        self, method: str, body: bytes = b"", content_type: str | None = None, extra: list[str] | None = None
    ) -> Response:
        self.cseq += 1
        data, _ = self.request_text(method, body=body, content_type=content_type, extra=extra)
        return self._transact(data)

    def bye(self) -> Response:
        return self.in_dialog("BYE")

    def options(self) -> Response:
        data, _ = self.request_text("OPTIONS", to_tag="")
        return self._transact(data)


def _request_header(message: bytes, names: tuple[str, ...]) -> str | None:
    """The first value of a header (by any of its ``names``) in a message's head."""
    for line in message.split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace").split(CRLF)[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() in names:
            return value.strip()
    return None


def _header_param(value: str, name: str) -> str:
    """A ``;name=value`` parameter of a header value (the top one if comma-separated); '' if absent."""
    for piece in value.split(",", 1)[0].split(";")[1:]:
        key, _, param = piece.strip().partition("=")
        if key.lower() == name:
            return param.strip()
    return ""


def _top_branch(message: bytes) -> str | None:
    via = _request_header(message, ("via", "v"))
    return _header_param(via, "branch") if via is not None else None


def _answer(request: bytes, status: int) -> bytes:
    """A response to ``request`` copying Via, From, To, Call-ID and CSeq (RFC 3261 §8.2.6)."""
    head = request.split(b"\r\n\r\n", 1)[0].decode()
    copied = [
        line
        for line in head.split(CRLF)[1:]
        if line.split(":", 1)[0].strip().lower()
        in ("via", "v", "from", "f", "to", "t", "call-id", "i", "cseq")
    ]
    return (CRLF.join([f"SIP/2.0 {status} OK", *copied, "Content-Length: 0"]) + CRLF + CRLF).encode()
