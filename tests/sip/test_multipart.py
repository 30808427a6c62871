"""Multipart framing as real SRCs send it: every tolerance the parser promises, and its refusals."""

from __future__ import annotations

import pytest

from callvault.sip.multipart import (
    BodyPart,
    build_multipart,
    content_type_essence,
    content_type_params,
    parse_multipart,
)

SDP = b"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\na=label:1\r\n"
XML = b'<?xml version="1.0"?>\r\n<recording xmlns="urn:ietf:params:xml:ns:recording:1"/>'


def _crlf_body(boundary: str = "b1") -> bytes:
    d = f"--{boundary}".encode()
    return (
        d
        + b"\r\nContent-Type: application/sdp\r\n\r\n"
        + SDP
        + b"\r\n"
        + d
        + b"\r\nContent-Type: application/rs-metadata+xml\r\nContent-Disposition: recording-session\r\n\r\n"
        + XML
        + b"\r\n"
        + d
        + b"--\r\n"
    )


@pytest.mark.parametrize(
    ("value", "essence"),
    [
        ("application/SDP", "application/sdp"),
        ("multipart/mixed;boundary=x", "multipart/mixed"),
        ('  Multipart/Mixed ; boundary="a;b"', "multipart/mixed"),
        ("application/ +xml", "application/+xml"),
        ("", ""),
    ],
)
def test_content_type_essence(value: str, essence: str) -> None:
    assert content_type_essence(value) == essence


def test_content_type_params_quoted_and_bare() -> None:
    assert content_type_params('multipart/mixed; boundary="a b;c" ; charset=UTF-8') == {
        "boundary": "a b;c",
        "charset": "UTF-8",
    }
    assert (
        content_type_params("multipart/mixed;BOUNDARY=unique-boundary-1")["boundary"] == "unique-boundary-1"
    )
    assert content_type_params("application/sdp") == {}


def test_crlf_body_with_quoted_boundary() -> None:
    parts = parse_multipart('multipart/mixed;boundary="b1"', _crlf_body())
    assert [p.essence for p in parts] == ["application/sdp", "application/rs-metadata+xml"]
    # The CRLF before a delimiter belongs to the delimiter, not to the part.
    assert parts[0].body == SDP
    assert parts[1].body == XML
    assert parts[1].headers["content-disposition"] == "recording-session"
    assert parts[1].disposition == "recording-session"


def test_lf_only_body_with_preamble_epilogue_and_padding() -> None:
    body = (
        b"this is a preamble\n--b1 \t\nContent-Type: application/sdp\n\nv=0\ns=-\n"
        b"\n--b1\nContent-Type: text/plain\n\nhello\n--b1--   \nepilogue that is ignored\n--b1\n"
    )
    parts = parse_multipart("multipart/mixed;boundary=b1", body)
    assert [p.body for p in parts] == [b"v=0\ns=-\n", b"hello"]


def test_missing_closing_delimiter_keeps_last_part() -> None:
    body = (
        b"--b1\nContent-Type: application/sdp\n\nv=0\n--b1\nContent-Type: application/gtd\n\nIAM,\nGCI,ab\n"
    )
    parts = parse_multipart("multipart/mixed;boundary=b1", body)
    assert [p.essence for p in parts] == ["application/sdp", "application/gtd"]
    assert parts[1].body == b"IAM,\nGCI,ab\n"


def test_part_content_length_cuts_epilogue_when_unterminated() -> None:
    body = b"--b1\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello garbage after the part"
    (part,) = parse_multipart("multipart/mixed;boundary=b1", body)
    assert part.body == b"hello"


def test_wrong_part_content_length_does_not_beat_the_delimiter() -> None:
    body = (
        b"--b1\r\nContent-Type: application/sdp\r\nContent-Length: 300\r\n\r\nv=0\r\n"
        b"--b1\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nhello\r\n--b1--\r\n"
    )
    parts = parse_multipart("multipart/mixed;boundary=b1", body)
    assert [p.body for p in parts] == [b"v=0", b"hello"]


def test_missing_boundary_parameter_is_guessed() -> None:
    parts = parse_multipart("multipart/mixed", b"\r\n" + _crlf_body("guess-me"))
    assert [p.essence for p in parts] == ["application/sdp", "application/rs-metadata+xml"]


def test_boundary_parameter_that_never_occurs_falls_back_to_the_body() -> None:
    parts = parse_multipart("multipart/mixed;boundary=wrong", _crlf_body("right"))
    assert len(parts) == 2


def test_boundary_that_is_a_prefix_of_a_content_line_is_not_a_delimiter() -> None:
    body = b"--b\nContent-Type: text/plain\n\n--bb is just text\n--b--\n"
    (part,) = parse_multipart("multipart/mixed;boundary=b", body)
    assert part.body == b"--bb is just text"


def test_stray_part_from_another_boundary_is_split_off() -> None:
    body = (
        b"--outer\nContent-Type: application/sdp\n\nv=0\ns=-\n"
        b"--other\nContent-Type: application/rs-metadata+xml\n\n<recording/>\n"
        b"--other--\n--outer--\n"
    )
    parts = parse_multipart("multipart/mixed;boundary=outer", body)
    assert [(p.essence, p.body) for p in parts] == [
        ("application/sdp", b"v=0\ns=-"),
        ("application/rs-metadata+xml", b"<recording/>"),
    ]


def test_nested_multipart_part_is_kept_whole() -> None:
    inner_ct, inner = build_multipart(
        [BodyPart("text/plain", {}, b"a"), BodyPart("text/plain", {}, b"b")], "in"
    )
    body = b"--out\r\nContent-Type: " + inner_ct.encode() + b"\r\n\r\n" + inner + b"\r\n--out--\r\n"
    (outer,) = parse_multipart("multipart/mixed;boundary=out", body)
    assert [p.body for p in parse_multipart(outer.content_type, outer.body)] == [b"a", b"b"]


def test_headers_folding_duplicates_and_no_blank_line() -> None:
    body = (
        b"--b\nContent-Type: application/sdp;\n  charset=utf-8\nX-A: 1\nX-A: 2\n\nv=0\n"
        b"--b\nContent-Type: text/plain\nno blank line before this body\n--b--\n"
    )
    first, second = parse_multipart("multipart/mixed;boundary=b", body)
    assert first.content_type == "application/sdp; charset=utf-8"
    assert first.headers["x-a"] == "1, 2"
    assert second.body == b"no blank line before this body"


def test_part_without_content_type_defaults_to_text_plain() -> None:
    (part,) = parse_multipart("multipart/mixed;boundary=b", b"--b\n\nraw\n--b--")
    assert part.content_type == "text/plain"
    assert part.body == b"raw"


@pytest.mark.parametrize(
    ("content_type", "body", "message"),
    [
        ("application/sdp", b"v=0", "is not multipart"),
        ("multipart/mixed", b"v=0\r\ns=-\r\n", "no boundary parameter"),
        ("multipart/mixed;boundary=b", b"--b--\r\n", "no delimiter line"),
        ("multipart/mixed;boundary=b", b"--b\r\n\r\n--b--", "contains no parts"),
        ("multipart/mixed;boundary=" + "x" * 201, b"", "longer than"),
    ],
)
def test_refusals_are_value_errors(content_type: str, body: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_multipart(content_type, body)


def test_limits() -> None:
    many = b"".join(b"--b\nContent-Type: text/plain\n\nx\n" for _ in range(5)) + b"--b--"
    with pytest.raises(ValueError, match="more than 4 parts"):
        parse_multipart("multipart/mixed;boundary=b", many, max_parts=4)
    assert len(parse_multipart("multipart/mixed;boundary=b", many, max_parts=5)) == 5
    with pytest.raises(ValueError, match="exceeds the limit"):
        parse_multipart("multipart/mixed;boundary=b", many, max_size=10)
    too_many_headers = b"--b\n" + b"".join(b"X-%d: 1\n" % i for i in range(100)) + b"\nx\n--b--"
    with pytest.raises(ValueError, match="header lines"):
        parse_multipart("multipart/mixed;boundary=b", too_many_headers)


def test_build_then_parse_round_trip() -> None:
    parts = [
        BodyPart("application/sdp", {}, SDP),
        BodyPart("application/rs-metadata+xml", {"content-disposition": "recording-session"}, XML),
    ]
    content_type, body = build_multipart(parts, "unique-boundary-1")
    assert content_type == "multipart/mixed;boundary=unique-boundary-1"
    assert body.startswith(b"--unique-boundary-1\r\nContent-Type: application/sdp\r\n\r\n")
    assert body.endswith(b"--unique-boundary-1--\r\n")
    assert b"Content-Disposition: recording-session\r\n" in body
    parsed = parse_multipart(content_type, body)
    assert [(p.content_type, p.body) for p in parsed] == [(p.content_type, p.body) for p in parts]


def test_build_generates_and_quotes_boundaries() -> None:
    content_type, body = build_multipart([BodyPart("text/plain", {}, b"x")])
    boundary = content_type_params(content_type)["boundary"]
    assert boundary.startswith("callvault-")
    assert body.startswith(f"--{boundary}\r\n".encode())
    quoted_ct, quoted_body = build_multipart([BodyPart("text/plain", {}, b"y")], "with space")
    assert quoted_ct == 'multipart/mixed;boundary="with space"'
    assert parse_multipart(quoted_ct, quoted_body)[0].body == b"y"


@pytest.mark.parametrize(
    ("parts", "boundary", "message"),
    [
        ([], "b", "at least one part"),
        ([BodyPart("text/plain", {}, b"x")], "", "invalid multipart boundary"),
        ([BodyPart("text/plain", {}, b"x")], "x" * 71, "invalid multipart boundary"),
        ([BodyPart("text/plain", {}, b"a\r\n--b\r\n")], "b", "occurs inside a part body"),
        ([BodyPart("text/plain", {"x-a": "1\r\nInjected: 2"}, b"x")], "b", "invalid header"),
    ],
)
def test_build_refusals(parts: list[BodyPart], boundary: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build_multipart(parts, boundary)
