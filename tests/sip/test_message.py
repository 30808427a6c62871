"""SIP message parsing and serialising (RFC 3261 §7, §20) with the tolerances real SRCs need."""

from __future__ import annotations

import pytest

from callvault.sip.message import (
    CSeq,
    Headers,
    SipRequest,
    SipResponse,
    Via,
    frame_stream_message,
    make_response,
    parse_message,
    readable_for_response,
    stamp_received,
)

INVITE = (
    b"INVITE sip:srs@10.0.0.1 SIP/2.0\r\n"
    b"v: SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bK1;rport\r\n"
    b"Via: SIP/2.0/TCP proxy.example;branch=z9hG4bK0, SIP/2.0/UDP [2001:db8::1]:5070;branch=z9hG4bKx\r\n"
    b'f: "Alice, A." <sip:src@10.0.0.2>;tag=abc\r\n'
    b"t: <sip:srs@10.0.0.1>\r\n"
    b"i: call-1@10.0.0.2\r\n"
    b"CSeq: 7 INVITE\r\n"
    b"Subject: a folded\r\n  header value\r\n"
    b"k: siprec, timer\r\n"
    b"c: application/sdp\r\n"
    b"l: 4\r\n"
    b"\r\n"
    b"v=0\n"
)


def test_compact_forms_folding_and_multi_value_headers() -> None:
    request = parse_message(INVITE)
    assert isinstance(request, SipRequest)
    assert request.method == "INVITE" and request.uri == "sip:srs@10.0.0.1"
    assert request.call_id == "call-1@10.0.0.2"
    assert request.cseq == CSeq(7, "INVITE")
    assert request.headers.get("subject") == "a folded header value"
    assert request.headers.tokens("Supported") == {"siprec", "timer"}
    vias = request.vias
    assert [v.transport for v in vias] == ["UDP", "TCP", "UDP"]
    assert vias[0].branch == "z9hG4bK1" and vias[0].port == 5060
    assert vias[2].host == "[2001:db8::1]" and vias[2].port == 5070
    assert request.from_addr.display_name == "Alice, A." and request.from_addr.tag == "abc"
    assert request.to_addr.tag is None
    assert request.body == b"v=0\n"
    request.validate()


def test_udp_uses_the_actual_body_whatever_content_length_says() -> None:
    longer = INVITE.replace(b"l: 4", b"l: 2")
    shorter = INVITE.replace(b"l: 4", b"l: 400")
    assert parse_message(longer).body == b"v=0\n"
    assert parse_message(shorter).body == b"v=0\n"


def test_stream_framing_uses_content_length() -> None:
    buffer = bytearray(b"\r\n\r\n" + INVITE + INVITE[:50])
    message = frame_stream_message(buffer)
    assert message == INVITE
    assert frame_stream_message(buffer) is None  # second message incomplete
    assert parse_message(INVITE + b"extra", stream=True).body == b"v=0\n"
    with pytest.raises(ValueError, match="Content-Length is required"):
        frame_stream_message(bytearray(INVITE.replace(b"l: 4\r\n", b"")))
    with pytest.raises(ValueError, match="body has 4 bytes, Content-Length says 9"):
        parse_message(INVITE.replace(b"l: 4", b"l: 9"), stream=True)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty message"),
        (b"INVITE sip:x SIP/3.0\r\n\r\n", "expected '<METHOD> <URI> SIP/2.0'"),
        (b"SIP/2.0 99 Odd\r\n\r\n", "status code must be 100-699"),
        (b"INVITE sip:x SIP/2.0\r\nno colon here\r\n\r\n", "is not 'Name: value'"),
        (INVITE.replace(b"l: 4", b"l: -1"), "Content-Length '-1'"),
        (b"INVITE sip:x SIP/2.0\r\nX: \xff\r\n\r\n", "not UTF-8"),
    ],
)
def test_malformed_messages_raise_precise_errors(data: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_message(data)


def test_size_limit() -> None:
    with pytest.raises(ValueError, match="exceeds the 100-byte limit"):
        parse_message(INVITE, max_size=100)


def test_validate_reports_missing_and_bad_headers() -> None:
    request = parse_message(INVITE.replace(b"i: call-1@10.0.0.2\r\n", b""))
    assert isinstance(request, SipRequest)
    with pytest.raises(ValueError, match="missing Call-ID header"):
        request.validate()
    bad_cseq = parse_message(INVITE.replace(b"CSeq: 7 INVITE", b"CSeq: seven INVITE"))
    assert isinstance(bad_cseq, SipRequest)
    with pytest.raises(ValueError, match="CSeq 'seven INVITE'"):
        bad_cseq.validate()
    with pytest.raises(ValueError, match="expected 'SIP/2.0/<transport> host"):
        Via.parse("HTTP/1.1 host")


def test_response_copies_dialog_headers_and_adds_to_tag() -> None:
    request = parse_message(INVITE)
    assert isinstance(request, SipRequest)
    response = make_response(
        request, 200, to_tag="xyz", headers=[("Contact", "<sip:srs@10.0.0.1>")], body=b"abc"
    )
    parsed = parse_message(response.serialise())
    assert isinstance(parsed, SipResponse)
    assert parsed.status == 200 and parsed.reason == "OK"
    assert len(parsed.vias) == 3 and parsed.top_via.branch == "z9hG4bK1"
    assert parsed.to_addr.tag == "xyz"
    assert parsed.headers.get("Content-Length") == "3" and parsed.body == b"abc"
    trying = make_response(request, 100, to_tag="xyz")
    assert trying.to_addr.tag is None  # 100 Trying never carries a To tag


def test_received_and_rport_stamped_on_top_via() -> None:
    request = parse_message(INVITE)
    assert isinstance(request, SipRequest)
    stamp_received(request, "192.0.2.7", 40000)
    top = request.top_via
    assert top.params["received"] == "192.0.2.7" and top.params["rport"] == "40000"
    assert len(request.vias) == 3 and request.vias[1].host == "proxy.example"


def test_best_effort_parse_for_a_400() -> None:
    broken = INVITE.replace(b"CSeq: 7 INVITE", b"CSeq: 7 INVITE\r\n\x01bad line")
    assert readable_for_response(broken) is not None
    assert readable_for_response(b"garbage\r\n\r\n") is None
    assert (
        readable_for_response(
            INVITE.replace(
                b"v: SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bK1;rport\r\nVia: SIP/2.0/TCP proxy.example;branch=z9hG4bK0, SIP/2.0/UDP [2001:db8::1]:5070;branch=z9hG4bKx\r\n",
                b"",
            )
        )
        is None
    )


def test_headers_set_replaces_all() -> None:
    headers = Headers([("Via", "a"), ("X-Custom", "1"), ("via", "b")])
    headers.set("v", "c")
    assert list(headers) == [("Via", "c"), ("X-Custom", "1")]
