"""Dialogs followed from the outside: who sent what, where each party's RTP goes, how calls end."""

from __future__ import annotations

import numpy as np

from callvault.runtime.passive.demux import Demux, SipSeen
from callvault.sip.passive_dialogs import Answered, Ended, MediaChanged, PassiveDialogs
from callvault.wire.capture_file import read_frames
from callvault.wire.packets import Datagram
from callvault.wire.tcp_streams import TcpStreams
from tests.support.wire import CRLF, CallPlan, Party, call_frames, ethernet, ipv4, pcap, sdp, sip, tcp, udp

A = ("203.0.113.7", 5060)
B = ("10.20.0.15", 5060)
VIA = ("Via", "SIP/2.0/UDP 203.0.113.7:5060;branch=z9hG4bK1")


def invite(call_id: str = "c1") -> bytes:
    headers = [VIA, ("From", "<sip:+14155550100@a>;tag=t1"), ("To", "<sip:1001@b>"), ("Call-ID", call_id), ("CSeq", "1 INVITE")]  # fmt: skip
    return sip("INVITE sip:1001@b SIP/2.0", headers, sdp(A[0], 40000))


def response(status: str, call_id: str = "c1", body: str = "", cseq: str = "1 INVITE") -> bytes:
    headers = [VIA, ("From", "<sip:+14155550100@a>;tag=t1"), ("To", "<sip:1001@b>;tag=t2"), ("Call-ID", call_id), ("CSeq", cseq)]  # fmt: skip
    return sip(f"SIP/2.0 {status}", headers, body)


def follow(
    dialogs: PassiveDialogs, *messages: tuple[bytes, tuple[str, int], tuple[str, int]]
) -> list[object]:
    demux, actions = Demux(), []

    for at, (data, src, dst) in enumerate(messages):
        out = demux.frame(float(at), 1, ethernet(ipv4(src[0], dst[0], 17, udp(src[1], dst[1], data))))
        assert isinstance(out, list), out
        for seen in out:
            assert isinstance(seen, SipSeen)
            actions += dialogs.on_message(seen.message, float(at), seen.src, seen.dst)
    return actions


def test_answer_then_bye_and_rtp_matched_both_ways_with_nat_tolerance() -> None:
    dialogs = PassiveDialogs()
    actions = follow(dialogs, (invite(), A, B), (response("200 OK", body=sdp(B[0], 16000)), B, A))
    assert [type(a) for a in actions] == [Answered]
    call = dialogs.calls()[0]
    assert dialogs.media_for(("10.20.0.15", 16000), ("203.0.113.7", 40000)) == (call, "callee")
    assert dialogs.media_for(("203.0.113.7", 40000), ("10.20.0.15", 16000)) == (call, "caller")
    # NAT: the caller's stream arrives from a public address and port SDP never named.
    assert dialogs.media_for(("198.51.100.9", 61000), ("10.20.0.15", 16000)) == (call, "caller")
    # ... and the callee's reaches the caller's signalled port at another address.
    assert dialogs.media_for(("10.20.0.15", 16000), ("192.168.1.20", 40000)) == (call, "callee")
    assert dialogs.media_for(("1.2.3.4", 1000), ("5.6.7.8", 2000)) is None
    bye = sip("BYE sip:1001@b SIP/2.0", [VIA, ("From", "<sip:1001@b>;tag=t2"), ("To", "<sip:+14155550100@a>;tag=t1"), ("Call-ID", "c1"), ("CSeq", "5 BYE")])  # fmt: skip
    ended = follow(dialogs, (bye, B, A))
    assert len(ended) == 1 and isinstance(ended[0], Ended) and ended[0].reason == "bye"
    assert len(dialogs) == 0 and dialogs.media_for(("10.20.0.15", 16000), ("203.0.113.7", 40000)) is None


def test_cancelled_and_rejected_calls_are_never_answered() -> None:
    dialogs = PassiveDialogs()
    cancel = sip("CANCEL sip:1001@b SIP/2.0", [VIA, ("From", "<sip:x@a>;tag=t1"), ("To", "<sip:1001@b>"), ("Call-ID", "c1"), ("CSeq", "1 CANCEL")])  # fmt: skip
    actions = follow(
        dialogs,
        (invite("c1"), A, B),
        (cancel, A, B),
        (invite("c2"), A, B),
        (response("486 Busy Here", "c2"), B, A),
    )
    assert [(type(a).__name__, getattr(a, "reason", None)) for a in actions] == [
        ("Ended", "cancel"),
        ("Ended", "rejected"),
    ]
    assert len(dialogs) == 0


def test_a_re_invite_from_the_callee_changes_the_callees_media() -> None:
    dialogs = PassiveDialogs()
    follow(dialogs, (invite(), A, B), (response("200 OK", body=sdp(B[0], 16000)), B, A))
    reinvite = sip("INVITE sip:x@a SIP/2.0", [VIA, ("From", "<sip:1001@b>;tag=t2"), ("To", "<sip:x@a>;tag=t1"), ("Call-ID", "c1"), ("CSeq", "9 INVITE")], sdp(B[0], 17000, direction="sendonly"))  # fmt: skip
    actions = follow(dialogs, (reinvite, B, A))
    assert [(type(a), getattr(a, "side", None)) for a in actions] == [(MediaChanged, "callee")]
    call = dialogs.calls()[0]
    assert call.callee.media.on_hold and call.callee.media.address == ("10.20.0.15", 17000)
    assert dialogs.media_for(("203.0.113.7", 40000), ("10.20.0.15", 17000)) == (call, "caller")


def test_several_sip_messages_in_one_tcp_segment_and_retransmissions() -> None:
    messages = invite() + response("100 Trying").replace(b"tag=t2", b"") + response("180 Ringing")
    streams, segment = TcpStreams(), Datagram(6, A, B, messages, seq=1, flags=0x18)
    demux = Demux()

    seen: list[SipSeen] = []
    for seq, payload in ((0, b""), (1, messages), (1, messages[:100])):
        flags = 0x02 if payload == b"" else 0x18
        out = demux.frame(1.0, 1, ethernet(ipv4(A[0], B[0], 6, tcp(A[1], B[1], seq, payload, flags))))
        seen += out if isinstance(out, list) else []
    assert [getattr(s.message, "method", getattr(s.message, "status", None)) for s in seen] == [
        "INVITE",
        100,
        180,
    ]
    assert streams.add(segment) is not None  # a stream joined mid-way starts at its first segment


def test_rtp_of_no_dialog_is_counted_and_sip_that_does_not_parse_is_damage() -> None:
    audio = np.zeros(800, np.int16)
    plan = CallPlan(
        Party("1001", "10.0.0.1", 5060, 4000, audio), Party("2002", "10.0.0.2", 5060, 6000, audio)
    )
    frames = [f for f in call_frames(plan)]
    demux, dialogs = Demux(), PassiveDialogs()
    rtp_without_dialog = 0
    for frame in read_frames(pcap(frames[5:])):  # capture started after the 200 OK
        out = demux.frame(frame.timestamp, frame.linktype, frame.data)
        if isinstance(out, Datagram) and dialogs.media_for(out.src, out.dst) is None:
            rtp_without_dialog += 1
    assert rtp_without_dialog == 10
    broken = b"INVITE sip:x SIP/2.0" + CRLF.encode() + b"Via: \x00\x01" + CRLF.encode() * 2

    assert demux.frame(9.0, 1, ethernet(ipv4(A[0], B[0], 17, udp(5060, 5060, broken)))) == []
    assert demux.damage["SIP message does not parse"] == 1
