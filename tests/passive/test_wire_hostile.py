"""The sans-IO capture decoders on hostile input: precise ValueErrors, never an over-read or a crash."""

from __future__ import annotations

import gzip
import random
import struct

import numpy as np
import pytest

from callvault.runtime.passive.demux import Demux
from callvault.wire.capture_file import Frame, read_frames
from callvault.wire.fragments import Reassembler
from callvault.wire.packets import Datagram, Fragment, decode_frame
from tests.support.wire import (
    LINKTYPE_ETHERNET,
    CallPlan,
    Party,
    call_frames,
    ethernet,
    fragments,
    ipv4,
    ipv6,
    pcap,
    pcapng,
    udp,
)

FRAMES = [(1_700_000_000.25, ethernet(ipv4("10.0.0.1", "10.0.0.2", 17, udp(4000, 5000, b"x" * 40))))] * 3


def frames(data: bytes) -> list[Frame]:
    return list(read_frames(data))


def test_pcap_pcapng_nanoseconds_and_gzip_read_the_same_frames() -> None:
    expected = [(round(t, 6), LINKTYPE_ETHERNET, d) for t, d in FRAMES]
    for data in (pcap(FRAMES), pcap(FRAMES, nano=True), pcapng(FRAMES), gzip.compress(pcapng(FRAMES))):
        assert [(round(f.timestamp, 6), f.linktype, f.data) for f in frames(data)] == expected


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "not a pcap or pcapng capture (magic missing)"),
        (b"GIF89a....", "not a pcap or pcapng capture (magic 47494638)"),
        (pcap(FRAMES)[:20], "pcap global header is cut short at 20 of 24 bytes"),
        (gzip.compress(pcap(FRAMES), mtime=0)[:-12], "gzip stream is truncated"),
        (b"\x1f\x8b" + b"\0" * 20, "gzip stream is damaged"),
        (gzip.compress(gzip.compress(pcap(FRAMES), mtime=0), mtime=0), "gzip inside gzip is not a capture"),
    ],
)
def test_files_that_are_not_captures_are_refused_with_the_reason(data: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        frames(data)


def test_a_torn_pcap_tail_yields_every_whole_frame_first() -> None:
    data = pcap(FRAMES)[:-10]
    reader = read_frames(data)
    assert next(reader).data == FRAMES[0][1]
    assert next(reader).data == FRAMES[1][1]
    with pytest.raises(ValueError, match=r"pcap record at byte \d+ is cut short"):
        next(reader)


def test_absurd_record_length_is_damage_not_an_allocation() -> None:
    data = bytearray(pcap(FRAMES))
    struct.pack_into("<I", data, 24 + 8, 0x7FFFFFFF)
    with pytest.raises(ValueError, match="claims 2147483647 bytes"):
        frames(bytes(data))


def test_gzip_bomb_is_refused_past_the_limit() -> None:
    bomb = gzip.compress(pcap(FRAMES) + b"\0" * 5_000_000)
    with pytest.raises(ValueError, match="inflates to more than 1000000 bytes"):
        list(read_frames(bomb, max_bytes=1_000_000))


@pytest.mark.parametrize(
    ("offset", "value", "message"),
    [
        (32, 13, "impossible length 13"),  # the interface block's length, not a multiple of 4
        (32, 0xFFFFFFF0, "impossible length"),
        (8, 0x11111111, "bad byte-order magic"),
    ],
)
def test_pcapng_block_damage_is_named(offset: int, value: int, message: str) -> None:
    data = bytearray(pcapng(FRAMES))
    struct.pack_into("<I", data, offset, value)
    with pytest.raises(ValueError, match=message):
        frames(bytes(data))


def test_pcapng_packet_of_an_undeclared_interface_and_a_wrong_trailer() -> None:
    data = bytearray(pcapng(FRAMES))
    shb_len = struct.unpack_from("<I", data, 4)[0]
    idb_len = struct.unpack_from("<I", data, shb_len + 4)[0]
    first_packet = shb_len + idb_len
    undeclared = bytearray(data)
    struct.pack_into("<I", undeclared, first_packet + 8, 7)
    with pytest.raises(ValueError, match="names undeclared interface 7"):
        frames(bytes(undeclared))
    struct.pack_into("<I", data, shb_len + idb_len - 4, 999)
    with pytest.raises(ValueError, match="trailing length 999"):
        frames(bytes(data))
    with pytest.raises(ValueError, match="not a pcap or pcapng capture"):
        frames(bytes(data[shb_len:]))


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (b"\x02\x00", "Ethernet frame of 2 bytes is shorter than its header"),
        (ethernet(b"")[:12] + b"\x81\x00\x00", "VLAN tag cut short"),
        (ethernet(b"\x45" + b"\0" * 10), "IPv4 packet of 11 bytes"),
        (ethernet(ipv4("1.1.1.1", "2.2.2.2", 17, b"")[:20].replace(b"\x45", b"\x4f", 1)), "is impossible"),
        (ethernet(ipv4("1.1.1.1", "2.2.2.2", 17, udp(1, 2, b"abc"))[:-2]), "IPv4 packet is cut short"),
        (ethernet(ipv4("1.1.1.1", "2.2.2.2", 17, b"\0\1\0\2\0\xff\0\0")), "UDP length 255 does not fit"),
        (ethernet(ipv4("1.1.1.1", "2.2.2.2", 6, b"\0" * 12 + b"\xf0" + b"\0" * 7)), "TCP header length 60"),
        (
            ethernet(ipv6("::1", "::2", 0, b"\x00\x00" + b"\0" * 6) * 1, v6=True),
            "IPv6 extension header cut short",
        ),
    ],
)
def test_malformed_frames_raise_precise_errors(frame: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        decode_frame(LINKTYPE_ETHERNET, frame)


def test_unknown_link_type_is_named() -> None:
    with pytest.raises(ValueError, match="unknown link type 147"):
        decode_frame(147, b"\0" * 40)


def test_fragments_reassemble_in_any_order_and_overlaps_are_refused() -> None:
    datagram = udp(5060, 5060, b"INVITE " + b"y" * 4000)
    pieces = fragments("10.0.0.1", "10.0.0.2", datagram, 1500, 77)
    decoded = [decode_frame(LINKTYPE_ETHERNET, ethernet(p)) for p in pieces]
    assert all(isinstance(d, Fragment) for d in decoded)
    reassembler = Reassembler()
    out = [reassembler.add(f, 1.0) for f in reversed(decoded) if isinstance(f, Fragment)]
    assert out[:-1] == [None] * (len(out) - 1)
    whole = out[-1]
    assert isinstance(whole, Datagram) and whole.payload == b"INVITE " + b"y" * 4000
    assert len(reassembler) == 0
    first = decoded[0]
    assert isinstance(first, Fragment)
    reassembler.add(first, 2.0)
    with pytest.raises(ValueError, match="overlapping IP fragments"):
        reassembler.add(Fragment(first.key, 8, True, b"z" * 64, 4), 2.0)
    with pytest.raises(ValueError, match="reassemble to over 65535 bytes"):
        reassembler.add(Fragment(first.key, 65_528, False, b"z" * 64, 4), 2.0)


def test_incomplete_fragments_are_forgotten_and_bounded() -> None:
    reassembler = Reassembler(timeout=30, max_pending=10)
    for ident in range(50):
        reassembler.add(Fragment(("1.1.1.1", "2.2.2.2", 17, ident), 0, True, b"a" * 8, 4), 1.0)
    assert len(reassembler) == 10 and reassembler.expired == 40
    reassembler.add(Fragment(("1.1.1.1", "2.2.2.2", 17, 999), 0, True, b"a" * 8, 4), 100.0)
    assert len(reassembler) == 1 and reassembler.expired == 50


def test_mutated_captures_only_ever_raise_value_error() -> None:
    """Fuzz-ish: random byte flips, truncations and splices of a whole call capture."""
    audio = np.zeros(1600, np.int16)
    plan = CallPlan(
        Party("1001", "10.0.0.1", 5060, 4000, audio), Party("2002", "10.0.0.2", 5060, 6000, audio)
    )
    plan.transport = "TCP"
    originals = [pcap(call_frames(plan)), pcapng(call_frames(plan))]
    rng = random.Random(13)
    for round_ in range(300):
        data = bytearray(rng.choice(originals))
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        if round_ % 3 == 0:
            del data[rng.randrange(len(data)) :]
        demux = Demux()
        try:
            for frame in read_frames(bytes(data)):
                demux.frame(frame.timestamp, frame.linktype, frame.data)
        except ValueError:
            pass
