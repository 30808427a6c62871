"""An AF_PACKET socket's TPACKET_V3 receive ring: frames read from shared memory in blocks.

With a plain packet socket every frame costs a system call (``recvfrom``) and
a copy; measured on the live capture benchmark that was most of the ~9 us a
packet the capture thread spent. With ``PACKET_RX_RING`` version 3 the kernel
writes frames into blocks of a memory map shared with this process and hands
over a whole block at once (when it is full, or after ``RETIRE_MS`` if
traffic is light); reading a frame is then a few offsets into the map. Each
frame carries the kernel's own receive timestamp, more precise than the time
a user-space thread gets round to it.

Layout (``linux/if_packet.h``): a block starts with ``tpacket_block_desc``
(``block_status`` at byte 8, ``num_pkts`` at 12, ``offset_to_first_pkt`` at
16); each frame with ``tpacket3_hdr`` (``tp_next_offset``, ``tp_sec``,
``tp_nsec``, ``tp_snaplen``, ``tp_len``, ``tp_status``, ``tp_mac``) followed,
48 bytes in, by the ``sockaddr_ll`` whose ``sll_pkttype`` (byte 10) says
whether the host sent the frame. A block whose status has ``TP_STATUS_USER``
is ours until we write ``TP_STATUS_KERNEL`` back.
"""

from __future__ import annotations

import mmap
import socket
import struct
from collections.abc import Callable

SOL_PACKET = 263
PACKET_RX_RING = 5
PACKET_VERSION = 10
TPACKET_V3 = 2
TP_STATUS_KERNEL = 0
TP_STATUS_USER = 1
PACKET_OUTGOING = 4

BLOCK_SIZE = 1 << 20  # 1 MiB: about 3,000 G.711 frames
BLOCK_COUNT = 64  # 64 MiB: about 1 s of 2,000 calls, time for the thread to be scheduled
FRAME_SIZE = 2048  # a hint only in version 3 (frames are packed at their own size)
RETIRE_MS = 20  # a block partly filled is handed over after this long

_FRAME = struct.Struct("=IIIIIIH")  # next offset, sec, nsec, snaplen, len, status, mac offset
_U32 = struct.Struct("=I")
_PKTTYPE = 48 + 10  # sll_pkttype in the sockaddr_ll after the (aligned) tpacket3_hdr

Handler = Callable[[float, int, bytes], None]  # (receive time, link type, frame)


def enable_ring(
    sock: socket.socket, block_size: int = BLOCK_SIZE, block_count: int = BLOCK_COUNT
) -> mmap.mmap:
    """Switch an unbound AF_PACKET socket to a TPACKET_V3 receive ring and map it."""
    sock.setsockopt(SOL_PACKET, PACKET_VERSION, TPACKET_V3)
    frames = block_size * block_count // FRAME_SIZE
    request = struct.pack("=7I", block_size, block_count, FRAME_SIZE, frames, RETIRE_MS, 0, 0)
    sock.setsockopt(SOL_PACKET, PACKET_RX_RING, request)
    return mmap.mmap(
        sock.fileno(), block_size * block_count, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE
    )


class PacketRing:
    """Walks the ring's blocks in order, handing each frame to a handler, and gives blocks back."""

    def __init__(
        self, ring: mmap.mmap, block_size: int, block_count: int, *, linktype: int, skip_outgoing: bool
    ) -> None:
        self._ring = ring
        self._linktype = linktype
        self._block_size = block_size
        self._block_count = block_count
        self._skip_outgoing = skip_outgoing  # loopback: the sent copy of every frame is seen too
        self._next = 0

    def read(self, handle: Handler) -> int:
        """Every frame of every block ready now, in arrival order; returns how many were handed on."""
        handed = 0
        ring, unpack_frame, linktype = self._ring, _FRAME.unpack_from, self._linktype
        while True:
            base = self._next * self._block_size
            if not _U32.unpack_from(ring, base + 8)[0] & TP_STATUS_USER:
                return handed
            count = _U32.unpack_from(ring, base + 12)[0]
            at = base + _U32.unpack_from(ring, base + 16)[0]
            for _ in range(count):
                next_offset, sec, nsec, snaplen, _, _, mac = unpack_frame(ring, at)
                if not (self._skip_outgoing and ring[at + _PKTTYPE] == PACKET_OUTGOING):
                    start = at + mac
                    handle(sec + nsec * 1e-9, linktype, ring[start : start + snaplen])
                    handed += 1
                at += next_offset
            _U32.pack_into(ring, base + 8, TP_STATUS_KERNEL)  # the block is the kernel's again
            self._next = (self._next + 1) % self._block_count

    def close(self) -> None:
        self._ring.close()
