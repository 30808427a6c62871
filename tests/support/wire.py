"""Packet captures of whole calls, written independently of callvault (struct, f-strings, numpy).

Builders for Ethernet (VLAN), Linux cooked, IPv4 (fragments), IPv6, UDP and TCP
frames; pcap and pcapng writers; and :func:`call_frames`, a complete SIP call
(INVITE, 100, 180, 200, ACK, G.711 RTP both ways, optional hold re-INVITE,
BYE, 200) between a caller and a callee with known audio in each direction.
"""

from __future__ import annotations

import base64
import socket
import struct
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import pylibsrtp

from tests.support.test_src import alaw_encode, ulaw_encode

CRLF = "\r\n"
Frame = tuple[float, bytes]  # (timestamp, link-layer frame)
LINKTYPE_ETHERNET, LINKTYPE_SLL = 1, 113


def _checksum(header: bytes) -> int:
    total = sum(struct.unpack(f"!{len(header) // 2}H", header))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def ipv4(src: str, dst: str, protocol: int, body: bytes, ident: int = 1, frag: int = 0) -> bytes:
    header = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, 20 + len(body), ident, frag, 64, protocol, 0,
        socket.inet_aton(src), socket.inet_aton(dst),
    )  # fmt: skip
    return header[:10] + struct.pack("!H", _checksum(header)) + header[12:] + body


def ipv6(src: str, dst: str, protocol: int, body: bytes) -> bytes:
    return (
        struct.pack("!IHBB", 6 << 28, len(body), protocol, 64)
        + socket.inet_pton(socket.AF_INET6, src)
        + socket.inet_pton(socket.AF_INET6, dst)
        + body
    )


def udp(sport: int, dport: int, payload: bytes) -> bytes:
    return struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload


def tcp(sport: int, dport: int, seq: int, payload: bytes, flags: int = 0x18) -> bytes:
    return struct.pack("!HHIIBBHHH", sport, dport, seq, 0, 5 << 4, flags, 65535, 0, 0) + payload


def ethernet(ip_packet: bytes, *, vlan: int | None = None, v6: bool = False) -> bytes:
    head = bytes.fromhex("020000000002020000000001")
    if vlan is not None:
        head += struct.pack("!HH", 0x8100, vlan)
    return head + struct.pack("!H", 0x86DD if v6 else 0x0800) + ip_packet


def cooked(ip_packet: bytes) -> bytes:
    """Linux cooked capture (v1) header, as ``tcpdump -i any`` writes."""
    return struct.pack("!HHH8sH", 0, 1, 6, b"\x02\x00\x00\x00\x00\x01\x00\x00", 0x0800) + ip_packet


def fragments(src: str, dst: str, udp_datagram: bytes, mtu: int, ident: int) -> list[bytes]:
    """The IPv4 fragments of a UDP datagram for a link of ``mtu`` bytes."""
    step = (mtu - 20) // 8 * 8
    pieces = []
    for offset in range(0, len(udp_datagram), step):
        more = offset + step < len(udp_datagram)
        flags = (0x2000 if more else 0) | (offset // 8)
        pieces.append(ipv4(src, dst, 17, udp_datagram[offset : offset + step], ident, flags))
    return pieces


def pcap(frames: Sequence[Frame], linktype: int = LINKTYPE_ETHERNET, *, nano: bool = False) -> bytes:
    magic = 0xA1B23C4D if nano else 0xA1B2C3D4
    out = [struct.pack("<IHHiIII", magic, 2, 4, 0, 0, 262144, linktype)]
    for stamp, frame in frames:
        seconds = int(stamp)
        fraction = round((stamp - seconds) * (1e9 if nano else 1e6))
        out.append(struct.pack("<IIII", seconds, fraction, len(frame), len(frame)) + frame)
    return b"".join(out)


def _block(kind: int, body: bytes) -> bytes:
    body += b"\0" * (-len(body) % 4)
    return struct.pack("<II", kind, len(body) + 12) + body + struct.pack("<I", len(body) + 12)


def pcapng(frames: Sequence[Frame], linktype: int = LINKTYPE_ETHERNET) -> bytes:
    """A pcapng with one interface at nanosecond resolution (if_tsresol 9)."""
    shb = _block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    options = struct.pack("<HHB3x", 9, 1, 9) + struct.pack("<HH", 0, 0)
    idb = _block(1, struct.pack("<HHI", linktype, 0, 262144) + options)
    out = [shb, idb]
    for stamp, frame in frames:
        ticks = round(stamp * 1e9)
        body = struct.pack("<IIIII", 0, ticks >> 32, ticks & 0xFFFFFFFF, len(frame), len(frame)) + frame
        out.append(_block(6, body))
    return b"".join(out)


# -- SIP -----------------------------------------------------------------------


def sdp(
    ip: str, port: int, *, encoding: str = "PCMU", direction: str = "sendrecv", crypto: str | None = None
) -> str:
    pt = 0 if encoding == "PCMU" else 8
    proto = "RTP/SAVP" if crypto else "RTP/AVP"
    lines = [
        "v=0", f"o=- 1 1 IN IP4 {ip}", "s=-", f"c=IN IP4 {ip}", "t=0 0",
        f"m=audio {port} {proto} {pt} 101", f"a=rtpmap:{pt} {encoding}/8000",
        "a=rtpmap:101 telephone-event/8000", f"a={direction}",
    ]  # fmt: skip
    if crypto:
        lines.append(f"a=crypto:{crypto}")
    return CRLF.join(lines) + CRLF


def sip(start: str, headers: list[tuple[str, str]], body: str = "") -> bytes:
    lines = [start, *(f"{k}: {v}" for k, v in headers)]
    if body:
        lines.append("Content-Type: application/sdp")
    lines.append(f"Content-Length: {len(body.encode())}")
    return (CRLF.join(lines) + CRLF + CRLF + body).encode()


@dataclass
class Party:
    number: str
    ip: str
    sip_port: int
    rtp_port: int
    audio: npt.NDArray[np.int16] = field(default_factory=lambda: np.zeros(0, np.int16))
    srtp_key: bytes | None = None  # 30 bytes key + salt: SDES a=crypto, and the RTP it sends is SRTP

    @property
    def crypto(self) -> str | None:
        if self.srtp_key is None:
            return None
        return f"1 AES_CM_128_HMAC_SHA1_80 inline:{base64.b64encode(self.srtp_key).decode()}"


def protect(packets: list[bytes], key: bytes) -> list[bytes]:
    policy = pylibsrtp.Policy(
        key=key,
        ssrc_type=pylibsrtp.Policy.SSRC_ANY_OUTBOUND,
        srtp_profile=pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_80,
    )
    session = pylibsrtp.Session(policy=policy)
    return [session.protect(p) for p in packets]


@dataclass
class CallPlan:
    caller: Party
    callee: Party
    call_id: str = "passive-call-1@test"
    start: float = 1_760_000_000.0
    encoding: str = "PCMU"
    transport: str = "UDP"
    hold_at: float | None = None  # seconds after the answer: the caller puts the callee on hold
    resume_after: float = 1.0
    fragment_invite_mtu: int | None = None
    padding_header_bytes: int = 0  # a big header, so the INVITE needs fragmenting
    vlan: int | None = None
    cooked: bool = False  # Linux cooked capture instead of Ethernet
    bye: bool = True

    def capture(self, *, ng: bool = False) -> bytes:
        """The call as a pcap (or pcapng) file."""
        linktype = LINKTYPE_SLL if self.cooked else LINKTYPE_ETHERNET
        return (pcapng if ng else pcap)(call_frames(self), linktype)


class _Wire:
    """Frames of one call on an Ethernet link (UDP, or TCP with a running sequence per direction)."""

    def __init__(self, plan: CallPlan) -> None:
        self.plan = plan
        self.frames: list[Frame] = []
        self.ident = 100
        self.seq: dict[tuple[str, int], int] = {}
        self.datagrams: list[tuple[float, tuple[str, int], tuple[str, int], bytes]] = []  # UDP, for replay

    def ip_frame(self, at: float, packet: bytes) -> None:
        frame = cooked(packet) if self.plan.cooked else ethernet(packet, vlan=self.plan.vlan)
        self.frames.append((at, frame))

    def send(self, at: float, src: Party, dst: Party, payload: bytes, *, sip_message: bool = True) -> None:
        self.ident += 1
        sport, dport = (src.sip_port, dst.sip_port) if sip_message else (src.rtp_port, dst.rtp_port)
        if sip_message and self.plan.transport == "TCP":
            # Each message split across two segments, the second sent first (reordered).
            if (src.ip, sport) not in self.seq:  # the connection's SYN (each direction)
                self.ip_frame(at, ipv4(src.ip, dst.ip, 6, tcp(sport, dport, 999, b"", 0x02), self.ident))
            seq = self.seq.get((src.ip, sport), 1000)
            self.seq[(src.ip, sport)] = seq + len(payload)
            half = len(payload) // 2
            self.ip_frame(
                at, ipv4(src.ip, dst.ip, 6, tcp(sport, dport, seq + half, payload[half:]), self.ident)
            )
            self.ip_frame(at, ipv4(src.ip, dst.ip, 6, tcp(sport, dport, seq, payload[:half]), self.ident + 1))
            self.ident += 1
            return
        datagram = udp(sport, dport, payload)
        self.datagrams.append((at, (src.ip, sport), (dst.ip, dport), payload))
        mtu = self.plan.fragment_invite_mtu
        if sip_message and mtu and len(datagram) + 20 > mtu:
            for piece in fragments(src.ip, dst.ip, datagram, mtu, self.ident):
                self.ip_frame(at, piece)
            return
        self.ip_frame(at, ipv4(src.ip, dst.ip, 17, datagram, self.ident))


def rtp_packets(audio: npt.NDArray[np.int16], encoding: str, ssrc: int) -> list[bytes]:
    encode = ulaw_encode if encoding == "PCMU" else alaw_encode
    pt = 0 if encoding == "PCMU" else 8
    payload = encode(audio)
    return [
        struct.pack("!BBHII", 0x80, pt | (0x80 if i == 0 else 0), i & 0xFFFF, i * 160, ssrc)
        + payload[i * 160 : (i + 1) * 160]
        for i in range(len(payload) // 160)
    ]


def call_frames(plan: CallPlan) -> list[Frame]:
    """Every frame of the call, in time order; RTP starts at the answer, one packet per 20 ms each way."""
    return sorted(_call(plan).frames, key=lambda f: f[0])


def play_call(plan: CallPlan) -> float:
    """Send the call over real UDP sockets (SIP and RTP, each from its own address), paced in real
    time as the capture says; returns the monotonic time the BYE was sent."""
    datagrams = sorted(_call(plan).datagrams, key=lambda d: d[0])
    sockets: dict[tuple[str, int], socket.socket] = {}
    for _, src, dst, _ in datagrams:
        for address in (src, dst):
            if address not in sockets:
                sock = sockets[address] = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                sock.bind(address)  # receivers too: no ICMP port unreachable
    began, bye_sent = time.monotonic(), 0.0
    try:
        for at, src, dst, payload in datagrams:
            delay = began + (at - plan.start) - time.monotonic()
            if delay > 0:
                time.sleep(delay)  # pacing a real-time sender, not waiting for a condition
            sockets[src].sendto(payload, dst)
            if payload.startswith(b"BYE "):
                bye_sent = time.monotonic()
    finally:
        for sock in sockets.values():
            sock.close()
    return bye_sent


def _call(plan: CallPlan) -> _Wire:
    wire = _Wire(plan)
    a, b = plan.caller, plan.callee
    t = plan.start
    via = lambda p: ("Via", f"SIP/2.0/{plan.transport} {p.ip}:{p.sip_port};branch=z9hG4bK{plan.call_id[:8]}")  # noqa: E731
    common = [
        ("From", f'"Caller {a.number}" <sip:{a.number}@{a.ip}>;tag=caller-tag'),
        ("To", f"<sip:{b.number}@{b.ip}>"),
        ("Call-ID", plan.call_id),
    ]
    answered = [common[0], (common[1][0], common[1][1] + ";tag=callee-tag"), common[2]]
    pad = [("X-Padding", "x" * plan.padding_header_bytes)] if plan.padding_header_bytes else []
    offer = sdp(a.ip, a.rtp_port, encoding=plan.encoding, crypto=a.crypto)
    answer = sdp(b.ip, b.rtp_port, encoding=plan.encoding, crypto=b.crypto)
    wire.send(t, a, b, sip(f"INVITE sip:{b.number}@{b.ip} SIP/2.0", [via(a), *common, ("CSeq", "1 INVITE"), ("Contact", f"<sip:{a.number}@{a.ip}>"), *pad], offer))  # fmt: skip
    wire.send(t + 0.01, b, a, sip("SIP/2.0 100 Trying", [via(a), *common, ("CSeq", "1 INVITE")]))
    wire.send(t + 0.05, b, a, sip("SIP/2.0 180 Ringing", [via(a), *answered, ("CSeq", "1 INVITE")]))
    answer_at = t + 1.0
    wire.send(answer_at, b, a, sip("SIP/2.0 200 OK", [via(a), *answered, ("CSeq", "1 INVITE"), ("Contact", f"<sip:{b.number}@{b.ip}>")], answer))  # fmt: skip
    wire.send(
        answer_at + 0.01,
        a,
        b,
        sip(f"ACK sip:{b.number}@{b.ip} SIP/2.0", [via(a), *answered, ("CSeq", "1 ACK")]),
    )
    ssrc_a, ssrc_b = 0x1111AAAA, 0x2222BBBB
    to_callee = rtp_packets(a.audio, plan.encoding, ssrc_a)
    to_caller = rtp_packets(b.audio, plan.encoding, ssrc_b)
    if a.srtp_key is not None:
        to_callee = protect(to_callee, a.srtp_key)
    if b.srtp_key is not None:
        to_caller = protect(to_caller, b.srtp_key)
    first_rtp = answer_at + 0.02
    for i in range(max(len(to_callee), len(to_caller))):
        at = first_rtp + i * 0.02
        if i < len(to_callee):
            wire.send(at, a, b, to_callee[i], sip_message=False)
        if i < len(to_caller):
            wire.send(at + 0.001, b, a, to_caller[i], sip_message=False)
    end = first_rtp + max(len(to_callee), len(to_caller)) * 0.02
    if plan.hold_at is not None:
        hold_sdp = sdp(a.ip, a.rtp_port, encoding=plan.encoding, direction="sendonly")
        at = answer_at + plan.hold_at
        wire.send(at, a, b, sip(f"INVITE sip:{b.number}@{b.ip} SIP/2.0", [via(a), *answered, ("CSeq", "2 INVITE")], hold_sdp))  # fmt: skip
        wire.send(at + 0.01, b, a, sip("SIP/2.0 200 OK", [via(a), *answered, ("CSeq", "2 INVITE")], answer))
        at += plan.resume_after
        wire.send(at, a, b, sip(f"INVITE sip:{b.number}@{b.ip} SIP/2.0", [via(a), *answered, ("CSeq", "3 INVITE")], offer))  # fmt: skip
        wire.send(at + 0.01, b, a, sip("SIP/2.0 200 OK", [via(a), *answered, ("CSeq", "3 INVITE")], answer))
    if plan.bye:
        wire.send(
            end, a, b, sip(f"BYE sip:{b.number}@{b.ip} SIP/2.0", [via(a), *answered, ("CSeq", "4 BYE")])
        )
        wire.send(end + 0.01, b, a, sip("SIP/2.0 200 OK", [via(a), *answered, ("CSeq", "4 BYE")]))
    return wire
