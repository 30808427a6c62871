"""Link layers, IPv4/IPv6, UDP and TCP: a captured frame into the transport payload it carries.

Link layers: Ethernet (with 802.1Q and 802.1ad VLAN tags), Linux cooked
capture v1 and v2, BSD loopback (null) and raw IP; tunnels of remote mirroring
(GRE, ERSPAN, IP-in-IP, VXLAN: :mod:`.tunnels`) are opened. IPv4 fragments come back
as :class:`Fragment` for :mod:`.fragments` to reassemble. Anything that is
not IP, UDP or TCP returns None; anything that claims to be and is broken
raises ``ValueError``.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass

from callvault.wire.tunnels import TUNNEL_PROTOCOLS, tunnel_payload, vxlan_frame

LINKTYPE_NULL = 0
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
LINKTYPE_LOOP = 108
LINKTYPE_LINUX_SLL = 113
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229
LINKTYPE_LINUX_SLL2 = 276
KNOWN_LINKTYPES = frozenset(
    {LINKTYPE_NULL, LINKTYPE_ETHERNET, LINKTYPE_RAW, 12, 14, LINKTYPE_LOOP, LINKTYPE_LINUX_SLL, LINKTYPE_IPV4,
     LINKTYPE_IPV6, LINKTYPE_LINUX_SLL2}
)  # fmt: skip

ETHERTYPE_IPV4 = 0x0800
ETHERTYPE_IPV6 = 0x86DD
_VLAN_TAGS = (0x8100, 0x88A8, 0x9100)
UDP, TCP = 17, 6
_IPV6_EXTENSIONS = {0, 43, 60, 135}  # hop-by-hop, routing, destination options, mobility
_IPV6_FRAGMENT = 44
MAX_TUNNEL_DEPTH = 3  # ERSPAN in GRE in a VXLAN overlay is 2; a deeper nest is hostile


@dataclass(frozen=True, slots=True)
class Datagram:
    """A UDP payload or TCP segment, with its endpoints."""

    protocol: int  # UDP or TCP
    src: tuple[str, int]
    dst: tuple[str, int]
    payload: bytes
    seq: int = 0  # TCP only
    flags: int = 0  # TCP only (SYN 0x02, FIN 0x01, RST 0x04)


@dataclass(frozen=True, slots=True)
class Fragment:
    """One fragment of an IP datagram (IPv4, or IPv6 with a fragment header)."""

    key: tuple[str, str, int, int]  # src, dst, protocol, identification
    offset: int  # bytes
    more: bool
    data: bytes
    version: int


def link_payload(linktype: int, frame: bytes) -> tuple[int, bytes] | None:
    """(ethertype, network-layer bytes), or None for a frame that carries no IP."""
    if linktype == LINKTYPE_ETHERNET:
        if len(frame) < 14:
            raise ValueError(f"Ethernet frame of {len(frame)} bytes is shorter than its header")
        ethertype, offset = struct.unpack_from("!H", frame, 12)[0], 14
        while ethertype in _VLAN_TAGS:
            if len(frame) < offset + 4:
                raise ValueError("VLAN tag cut short")
            ethertype, offset = struct.unpack_from("!H", frame, offset + 2)[0], offset + 4
        return ethertype, frame[offset:]
    if linktype == LINKTYPE_LINUX_SLL:
        if len(frame) < 16:
            raise ValueError(f"Linux cooked frame of {len(frame)} bytes is shorter than its header")
        return struct.unpack_from("!H", frame, 14)[0], frame[16:]
    if linktype == LINKTYPE_LINUX_SLL2:
        if len(frame) < 20:
            raise ValueError(f"Linux cooked v2 frame of {len(frame)} bytes is shorter than its header")
        return struct.unpack_from("!H", frame, 0)[0], frame[20:]
    if linktype in (LINKTYPE_NULL, LINKTYPE_LOOP):
        if len(frame) < 4:
            raise ValueError("loopback frame is shorter than its header")
        family = struct.unpack_from("<I", frame, 0)[0]
        if family > 0xFFFF:
            family = struct.unpack_from(">I", frame, 0)[0]
        if family == 2:
            return ETHERTYPE_IPV4, frame[4:]
        if family in (10, 24, 28, 30):
            return ETHERTYPE_IPV6, frame[4:]
        return None
    if linktype in (LINKTYPE_RAW, 12, 14, LINKTYPE_IPV4, LINKTYPE_IPV6):
        if not frame:
            raise ValueError("empty raw IP frame")
        version = frame[0] >> 4
        return (ETHERTYPE_IPV4 if version == 4 else ETHERTYPE_IPV6 if version == 6 else 0), frame
    raise ValueError(f"unknown link type {linktype}")


def decode_frame(linktype: int, frame: bytes, depth: int = 0) -> Datagram | Fragment | None:
    """The UDP or TCP payload a frame carries, a fragment of one, or None (not IP, other protocol).

    ``depth`` counts the tunnels (:mod:`.tunnels`) this frame was found in."""
    if depth > MAX_TUNNEL_DEPTH:
        raise ValueError(f"tunnels nested more than {MAX_TUNNEL_DEPTH} deep")
    network = link_payload(linktype, frame)
    if network is None:
        return None
    ethertype, packet = network
    if ethertype == ETHERTYPE_IPV4:
        return decode_ipv4(packet, depth)
    if ethertype == ETHERTYPE_IPV6:
        return decode_ipv6(packet, depth)
    return None


def decode_ipv4(packet: bytes, depth: int = 0) -> Datagram | Fragment | None:
    if len(packet) < 20:
        raise ValueError(f"IPv4 packet of {len(packet)} bytes is shorter than its header")
    version_ihl, _, total, ident, frag, _, protocol = struct.unpack_from("!BBHHHBB", packet, 0)
    if version_ihl >> 4 != 4:
        raise ValueError(f"IP version {version_ihl >> 4} in an IPv4 frame")
    header = (version_ihl & 0x0F) * 4
    if header < 20 or total < header:
        raise ValueError(f"IPv4 header length {header} / total length {total} is impossible")
    if total > len(packet):
        raise ValueError(f"IPv4 packet is cut short ({len(packet)} of {total} bytes; snap length too small?)")
    src = socket.inet_ntoa(packet[12:16])  # C, not ipaddress: this runs for every captured packet
    dst = socket.inet_ntoa(packet[16:20])
    body = packet[header:total]
    offset, more = (frag & 0x1FFF) * 8, bool(frag & 0x2000)
    if offset or more:
        return Fragment((src, dst, protocol, ident), offset, more, body, 4)
    return transport(protocol, src, dst, body, depth)


def decode_ipv6(packet: bytes, depth: int = 0) -> Datagram | Fragment | None:
    if len(packet) < 40:
        raise ValueError(f"IPv6 packet of {len(packet)} bytes is shorter than its header")
    if packet[0] >> 4 != 6:
        raise ValueError(f"IP version {packet[0] >> 4} in an IPv6 frame")
    length, next_header = struct.unpack_from("!HB", packet, 4)
    if 40 + length > len(packet):
        raise ValueError(f"IPv6 packet is cut short ({len(packet) - 40} of {length} payload bytes)")
    src = socket.inet_ntop(socket.AF_INET6, packet[8:24])
    dst = socket.inet_ntop(socket.AF_INET6, packet[24:40])
    body = packet[40 : 40 + length]
    for _ in range(8):  # a bounded walk over the extension headers
        if next_header in _IPV6_EXTENSIONS:
            if len(body) < 8:
                raise ValueError("IPv6 extension header cut short")
            size = (body[1] + 1) * 8
            if size > len(body):
                raise ValueError("IPv6 extension header longer than the packet")
            next_header, body = body[0], body[size:]
        elif next_header == _IPV6_FRAGMENT:
            if len(body) < 8:
                raise ValueError("IPv6 fragment header cut short")
            frag, ident = struct.unpack_from("!HI", body, 2)
            return Fragment((src, dst, body[0], ident), frag & 0xFFF8, bool(frag & 1), body[8:], 6)
        else:
            return transport(next_header, src, dst, body, depth)
    raise ValueError("IPv6 packet has too many extension headers")


def transport(protocol: int, src: str, dst: str, body: bytes, depth: int = 0) -> Datagram | Fragment | None:
    """The UDP or TCP layer of a whole (reassembled) IP payload, or what a tunnel in it carries."""
    if protocol in TUNNEL_PROTOCOLS:
        inner = tunnel_payload(protocol, body)
        return None if inner is None else decode_frame(inner[0], inner[1], depth + 1)
    if protocol == UDP:
        if len(body) < 8:
            raise ValueError(f"UDP datagram of {len(body)} bytes is shorter than its header")
        sport, dport, length = struct.unpack_from("!HHH", body, 0)
        if length < 8 or length > len(body):
            raise ValueError(f"UDP length {length} does not fit the {len(body)}-byte IP payload")
        inner_frame = vxlan_frame(dport, body[8:length])
        if inner_frame is not None:
            return decode_frame(LINKTYPE_ETHERNET, inner_frame, depth + 1)
        return Datagram(UDP, (src, sport), (dst, dport), body[8:length])
    if protocol == TCP:
        if len(body) < 20:
            raise ValueError(f"TCP segment of {len(body)} bytes is shorter than its header")
        sport, dport, seq, _, offset_flags = struct.unpack_from("!HHIIH", body, 0)
        header = (offset_flags >> 12) * 4
        if header < 20 or header > len(body):
            raise ValueError(f"TCP header length {header} does not fit the {len(body)}-byte segment")
        return Datagram(TCP, (src, sport), (dst, dport), body[header:], seq, offset_flags & 0x3F)
    return None
