from __future__ import annotations

import random

import pytest

from callvault.rtp.packet import RtpPacket, is_rtcp, parse_headers


def full_packet() -> RtpPacket:
    return RtpPacket(
        payload_type=96,
        sequence_number=65535,
        timestamp=0xFFFFFFF0,
        ssrc=0xDEADBEEF,
        payload=b"\x01\x02\x03",
        marker=True,
        csrc=[1, 0xFFFFFFFF],
        extension_profile=0xBEDE,
        extension=b"\x10\xff\x00\x00",
        padding_size=4,
    )


def test_round_trip_with_every_optional_part() -> None:
    packet = full_packet()
    data = packet.serialize()
    assert len(data) == 12 + 8 + 4 + 4 + 3 + 4
    parsed = RtpPacket.parse(data)
    assert parsed == packet
    assert parsed.padding
    assert parsed.serialize() == data


def test_plain_packet_round_trip() -> None:
    packet = RtpPacket(payload_type=0, sequence_number=1, timestamp=160, ssrc=7, payload=bytes(160))
    data = packet.serialize()
    assert data[:2] == b"\x80\x00"
    assert RtpPacket.parse(data) == packet


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\x80\x00\x00", "less than 12 bytes"),
        (b"\x40" + bytes(11), "invalid version 1"),
        (b"\x82" + bytes(11) + bytes(4), "truncated CSRC list"),
        (b"\x90" + bytes(11) + b"\xbe\xde", "truncated extension header"),
        (b"\x90" + bytes(11) + b"\xbe\xde\x00\x02" + bytes(4), "extension length 2 words"),
        (b"\xa0" + bytes(11) + b"\x01\x00", "padding count 0"),
        (b"\xa0" + bytes(11) + b"\x01\x09", "padding count 9 exceeds"),
    ],
)
def test_malformed_headers_are_rejected_with_reason(data: bytes, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        RtpPacket.parse(data)
    assert not parse_headers([data]).valid[0]


def test_serialize_rejects_impossible_fields() -> None:
    with pytest.raises(ValueError, match="payload type"):
        RtpPacket(payload_type=128).serialize()
    with pytest.raises(ValueError, match="too many CSRCs"):
        RtpPacket(csrc=list(range(16))).serialize()
    with pytest.raises(ValueError, match="multiple of 4"):
        RtpPacket(extension_profile=1, extension=b"abc").serialize()


def test_rtcp_is_told_apart_from_rtp() -> None:
    assert is_rtcp(b"\x80\xc8" + bytes(26))  # sender report
    assert is_rtcp(b"\x81\xc9" + bytes(6))  # receiver report
    assert not is_rtcp(RtpPacket(payload_type=0, marker=True).serialize())
    assert not is_rtcp(RtpPacket(payload_type=127, marker=True).serialize())  # second byte 255
    assert not is_rtcp(b"\x80")
    headers = parse_headers([b"\x80\xc8" + bytes(26)])
    assert headers.rtcp[0] and not headers.valid[0]


def test_batch_parser_agrees_with_single_parser_on_mutated_packets() -> None:
    rng = random.Random(5)
    datagrams = []
    for _ in range(2000):
        data = bytearray(
            full_packet().serialize() if rng.random() < 0.5 else RtpPacket(payload=b"x" * 20).serialize()
        )
        for _ in range(rng.randrange(3)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        if rng.random() < 0.2:
            del data[rng.randrange(len(data)) :]
        datagrams.append(bytes(data))
    headers = parse_headers(datagrams)
    payloads = headers.payloads(datagrams)
    valid_count = 0
    for i, data in enumerate(datagrams):
        try:
            packet = RtpPacket.parse(data)
        except ValueError:
            assert not headers.valid[i], data.hex()
            continue
        if is_rtcp(data):
            assert not headers.valid[i]
            continue
        valid_count += 1
        assert headers.valid[i], data.hex()
        assert headers.payload_type[i] == packet.payload_type
        assert headers.marker[i] == packet.marker
        assert headers.sequence_number[i] == packet.sequence_number
        assert headers.timestamp[i] == packet.timestamp
        assert headers.ssrc[i] == packet.ssrc
        assert payloads[i] == packet.payload
    assert 200 < valid_count < 2000
