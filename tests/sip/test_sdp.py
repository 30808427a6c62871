"""SDP parsing as SRCs send it, and the recorder's answer."""

from __future__ import annotations

import pytest

from callvault.media.codec_spec import CodecSpec
from callvault.sip.sdp import SessionDescription, StreamAnswer, build_answer, build_offer

OFFER = """v=0
o=SBC 1 2 IN IP4 192.0.2.1
s=-
c=IN IP4 192.0.2.1
t=0 0
m=audio 10000 RTP/SAVP 8 0 101
a=label:10
a=rtpmap:8 pcma/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-16
a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz
a=rtcp-mux
a=sendonly
m=audio 10002 RTP/AVP 9 18
c=IN IP4 0.0.0.0
a=label:20
a=sendrecv
a=inactive
m=video 10004 RTP/AVP 96
a=rtpmap:96 H264/90000
"""


def test_parse_media_attributes() -> None:
    sdp = SessionDescription.parse(OFFER)
    assert sdp.origin.address == "192.0.2.1" and sdp.connection is not None
    first, second, video = sdp.media
    assert first.label == "10" and first.direction == "sendonly" and first.rtcp_mux and first.is_srtp
    assert first.codecs() == [
        CodecSpec(8, "PCMA", 8000),
        CodecSpec(0, "PCMU", 8000),
        CodecSpec(101, "TELEPHONE-EVENT", 8000),
    ]
    assert first.fmtp(101) == "0-16"
    assert len(first.crypto) == 1
    assert not sdp.is_on_hold(first)
    assert second.label == "20" and second.direction == "inactive"  # the last direction wins
    assert sdp.is_on_hold(second)
    assert [c.encoding for c in second.codecs()] == ["G722", "G729"]
    assert video.kind == "video"


def test_missing_connection_line_and_hold_address() -> None:
    sdp = SessionDescription.parse("v=0\no=- 1 1 IN IP4 0.0.0.0\ns=-\nt=0 0\nm=audio 5000 RTP/AVP 0\n")
    assert sdp.connection_for(sdp.media[0]) is None and not sdp.is_on_hold(sdp.media[0])
    held = SessionDescription.parse(
        "v=0\no=- 1 1 IN IP4 1.2.3.4\ns=-\nc=IN IP4 0.0.0.0\nt=0 0\nm=audio 5000 RTP/AVP 0\n"
    )
    assert held.is_on_hold(held.media[0])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("o=- 1 1 IN IP4 1.2.3.4\n", "no v= line"),
        ("v=0\ns=-\n", "no o= line"),
        ("v=0\no=- 1 IN IP4\n", "o= needs 6 fields"),
        ("v=0\no=- 1 1 IN IP4 h\nm=audio x RTP/AVP 0\n", "is not a port number"),
        ("v=0\no=- 1 1 IN IP4 h\nm=audio 1 RTP/AVP 0\na=rtpmap:x PCMU\n", None),
        ("v=0\no=- 1 1 IN IP4 h\ngarbage\n", "expected '<type>=<value>'"),
    ],
)
def test_malformed_sdp(text: str, message: str | None) -> None:
    if message is None:
        sdp = SessionDescription.parse(text)
        with pytest.raises(ValueError, match="a=rtpmap"):
            sdp.media[0].codecs()
        return
    with pytest.raises(ValueError, match=message):
        SessionDescription.parse(text)


def test_answer_mirrors_offer_lines_recvonly() -> None:
    offer = SessionDescription.parse(OFFER)
    answers = [
        StreamAnswer(
            30000,
            [CodecSpec(8, "PCMA", 8000), CodecSpec(101, "TELEPHONE-EVENT", 8000)],
            "1 AES_CM_128_HMAC_SHA1_80 inline:abc",
        ),
        StreamAnswer(30002, [CodecSpec(9, "G722", 8000)], direction="inactive"),
        StreamAnswer(0, []),
    ]
    answer = SessionDescription.parse(
        build_answer(offer, answers, address="198.51.100.5", session_id="7", session_version=1).serialise()
    )
    assert [m.port for m in answer.media] == [30000, 30002, 0]
    assert answer.media[0].direction == "recvonly" and answer.media[0].label == "10"
    assert answer.media[0].attribute_values("rtpmap") == ["8 PCMA/8000", "101 telephone-event/8000"]
    assert answer.media[0].fmtp(101) == "0-16" and answer.media[0].rtcp_mux
    assert answer.media[0].crypto == ["1 AES_CM_128_HMAC_SHA1_80 inline:abc"]
    assert answer.media[1].direction == "inactive"
    assert answer.media[2].kind == "video"
    with pytest.raises(ValueError, match="2 stream answers for 3 offered"):
        build_answer(offer, answers[:2], address="h", session_id="1", session_version=1)


def test_delayed_offer() -> None:
    offer = build_offer(
        ["1", "2"], [30000, 30002], [CodecSpec(0, "PCMU", 8000)], address="10.0.0.1", session_id="9"
    )
    parsed = SessionDescription.parse(offer.serialise())
    assert [m.label for m in parsed.media] == ["1", "2"] and all(
        m.direction == "recvonly" for m in parsed.media
    )


def test_vendor_sdps_parse() -> None:
    """Every SIPREC offer fixture's SDP, and the plain ones, parse into media with codecs."""
    from tests.support.siprec_samples import OFFERS, PLAIN_SDPS, first_boundary

    from callvault.sip.siprec_body import parse_siprec_body

    parsed = []
    for path in sorted(OFFERS.glob("*.txt")):
        body = path.read_bytes()
        offer = parse_siprec_body(f"multipart/mixed;boundary={first_boundary(body)}", body)
        assert offer.sdp is not None, path.name
        parsed.append(SessionDescription.parse(offer.sdp))
    parsed += [SessionDescription.parse(p.read_text()) for p in sorted(PLAIN_SDPS.glob("*.sdp"))]
    assert len(parsed) == 14
    for sdp in parsed:
        assert sdp.media and all(m.codecs() for m in sdp.media)
    # The trailing space FreeSWITCH leaves after a=ptime does not hide the direction before it.
    freeswitch = SessionDescription.parse((PLAIN_SDPS / "freeswitch-answer.sdp").read_text())
    assert freeswitch.media[0].direction == "recvonly"
