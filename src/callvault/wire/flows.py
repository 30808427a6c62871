"""The fast path of passive capture: the flow and payload bounds of a plain IPv4 UDP frame.

Nearly every frame a mirrored port carries during a call is RTP: an Ethernet
frame (perhaps one 802.1Q tag) with an unfragmented IPv4 UDP datagram. For
those, :func:`udp_flow` reads the endpoints straight from the frame's bytes,
building no objects and decoding no addresses, so the recorder can look the
flow up in a table of known streams and append the payload. Anything else
(IPv6, fragments, IP options that do not add up, TCP, other link layers, any
inconsistency) answers None and takes the full decoder in :mod:`.packets`,
which says precisely what is wrong with a broken frame.
"""

from __future__ import annotations

from callvault.wire.packets import LINKTYPE_ETHERNET

FlowKey = bytes  # source IPv4 (4) + destination IPv4 (4) + source port (2) + destination port (2)

_VLAN = 0x8100
_IPV4 = 0x0800
_UDP = 17


def udp_flow(linktype: int, frame: bytes) -> tuple[FlowKey, int, int] | None:
    """(flow key, payload start, payload end) of an unfragmented IPv4 UDP frame, else None."""
    if linktype != LINKTYPE_ETHERNET or len(frame) < 42:
        return None
    ip = 14
    ethertype = frame[12] << 8 | frame[13]
    if ethertype == _VLAN:
        ip = 18
        ethertype = frame[16] << 8 | frame[17]
    version_ihl = frame[ip]
    header = (version_ihl & 0x0F) * 4
    # Version 4, protocol UDP, not a fragment (no "more fragments" flag, offset zero).
    if ethertype != _IPV4 or version_ihl >> 4 != 4 or header < 20 or frame[ip + 9] != _UDP:
        return None
    if frame[ip + 6] & 0x3F or frame[ip + 7]:
        return None
    end = ip + (frame[ip + 2] << 8 | frame[ip + 3])
    udp = ip + header
    if end > len(frame) or udp + 8 > end:
        return None
    length = frame[udp + 4] << 8 | frame[udp + 5]
    if length < 8 or udp + length > end:
        return None
    return frame[ip + 12 : ip + 20] + frame[udp : udp + 4], udp + 8, udp + length


def flow_ports(key: FlowKey) -> tuple[int, int]:
    """(source port, destination port) of a flow key."""
    return key[8] << 8 | key[9], key[10] << 8 | key[11]
