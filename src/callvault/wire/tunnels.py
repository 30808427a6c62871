"""Tunnels that carry mirrored traffic: the inner frame of GRE, ERSPAN, IP-in-IP and VXLAN.

A switch that mirrors a port on another switch (remote SPAN) sends the copies
inside a tunnel: ERSPAN over GRE (Cisco, Arista, Juniper; type II and III),
plain GRE or transparent Ethernet bridging over GRE, IP-in-IP, or VXLAN
from virtual switches. The recorder sees the tunnel's outer packet;
:func:`tunnel_payload` and :func:`vxlan_frame` give the frame inside, which
:mod:`.packets` decodes again (to a bounded depth). A tunnel header that is
cut short raises ``ValueError``; a tunnel of a kind not carrying mirrored
frames (PPTP's enhanced GRE, say) answers None.
"""

from __future__ import annotations

import struct

# Link types of an inner frame, as in pcap (the values of wire.packets' constants).
ETHERNET = 1
RAW_IP = 101

IPIP, IPV6_IN_IP, GRE = 4, 41, 47
TUNNEL_PROTOCOLS = frozenset({IPIP, IPV6_IN_IP, GRE})
VXLAN_PORT = 4789

_GRE_IPV4, _GRE_IPV6 = 0x0800, 0x86DD
_GRE_ETHERNET = 0x6558  # transparent Ethernet bridging
_ERSPAN_II, _ERSPAN_III = 0x88BE, 0x22EB


def tunnel_payload(protocol: int, body: bytes) -> tuple[int, bytes] | None:
    """(link type, inner frame) of an IP payload of protocol IP-in-IP, IPv6-in-IP or GRE."""
    if protocol == IPIP or protocol == IPV6_IN_IP:
        return RAW_IP, body
    if protocol == GRE:
        return _gre(body)
    return None


def _gre(body: bytes) -> tuple[int, bytes] | None:
    if len(body) < 4:
        raise ValueError(f"GRE header cut short ({len(body)} bytes)")
    flags, kind = struct.unpack_from("!HH", body, 0)
    if flags & 0x0007:
        return None  # version 1: PPTP's enhanced GRE, not mirrored frames
    # Optional fields, in order: checksum+reserved (C), key (K), sequence number (S).
    offset = 4 + sum(4 for bit in (0x8000, 0x2000, 0x1000) if flags & bit)
    if len(body) < offset:
        raise ValueError(f"GRE header with its options needs {offset} bytes, the packet has {len(body)}")
    inner = body[offset:]
    if kind in (_GRE_IPV4, _GRE_IPV6):
        return RAW_IP, inner
    if kind == _GRE_ETHERNET:
        return ETHERNET, inner
    if kind == _ERSPAN_II:
        if not flags & 0x1000:
            return ETHERNET, inner  # type I (no sequence number) has no ERSPAN header
        _need(inner, 8, "ERSPAN type II header")
        return ETHERNET, inner[8:]
    if kind == _ERSPAN_III:
        _need(inner, 12, "ERSPAN type III header")
        header = 12 + (8 if inner[11] & 0x01 else 0)  # the O flag: a platform-specific subheader follows
        _need(inner, header, "ERSPAN type III platform subheader")
        return ETHERNET, inner[header:]
    return None


def vxlan_frame(destination_port: int, payload: bytes) -> bytes | None:
    """The Ethernet frame inside a VXLAN datagram to the standard port, or None if it is not VXLAN."""
    if destination_port != VXLAN_PORT or len(payload) < 8:
        return None
    # Flags 0x08 (a valid VNI) and the reserved fields zero: anything else is not VXLAN.
    if payload[0] != 0x08 or payload[1:4] != b"\0\0\0" or payload[7] != 0:
        return None
    return payload[8:]


def _need(data: bytes, size: int, what: str) -> None:
    if len(data) < size:
        raise ValueError(f"{what} cut short ({len(data)} of {size} bytes)")
