"""RFC 7865 recording metadata: vendor dialects, updates, participant diffs, limits and hostile XML."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from tests.support.siprec_samples import METADATA

from callvault.sip.metadata import (
    RecordingMetadata,
    apply_update,
    diff_participants,
    normalise_aor,
    parse_recording_metadata,
)

# Stream ids of tests/fixtures/siprec/metadata/complete-4streams.xml, labels 96 to 99.
S96, S97, S98, S99 = (
    "St1aA1aA1aA1aA1aA1aA1w==",
    "St2bB2bB2bB2bB2bB2bB2w==",
    "St3cC3cC3cC3cC3cC3cC3w==",
    "St4dD4dD4dD4dD4dD4dD4w==",
)


def _doc(body: str, ns: str = "urn:ietf:params:xml:ns:recording:1", root: str = "recording") -> bytes:
    return f'<?xml version="1.0"?>\n<{root} xmlns="{ns}">{body}</{root}>'.encode()


TWO_PARTY = """
<datamode>complete</datamode>
<session session_id="S1"><start-time>2024-01-02T03:04:05.123+0000</start-time></session>
<participant participant_id="P1"><nameID aor="sip:+15551230001@pbx.example.com;user=phone">
  <name>Agent Smith</name></nameID></participant>
<participant participant_id="P2"><nameID aor="15551230002"><name> </name></nameID></participant>
<stream stream_id="A" session_id="S1"><label>1</label></stream>
<stream stream_id="B" session_id="S1"><label>2</label></stream>
<participantstreamassoc participant_id="P1"><send>A</send><recv>B</recv></participantstreamassoc>
<participantstreamassoc participant_id="P2"><send>B</send><recv>A</recv></participantstreamassoc>
"""


@pytest.mark.parametrize(
    ("ns", "root"),
    [
        ("urn:ietf:params:xml:ns:recording:1", "recording"),
        ("urn:ietf:params:xml:ns:recording", "recording"),
        ("urn:ietf:params:xml:ns:siprec", "recording_metadata"),
        ("urn:example:unknown", "Recording"),
    ],
)
def test_all_namespaces_and_roots_give_the_same_model(ns: str, root: str) -> None:
    meta = parse_recording_metadata(_doc(TWO_PARTY, ns, root))
    assert meta == parse_recording_metadata(_doc(TWO_PARTY))
    assert meta.data_mode == "complete"
    assert [p.participant_id for p in meta.participants] == ["P1", "P2"]
    agent, customer = meta.participants
    assert agent.aor == "+15551230001@pbx.example.com"
    assert agent.aor_raw == "sip:+15551230001@pbx.example.com;user=phone"
    assert agent.aor_user == "+15551230001"
    assert agent.display_name == "Agent Smith"
    assert customer.aor == "15551230002" and customer.aor_user == "15551230002"
    assert customer.display_name is None  # blank name
    assert meta.sessions[0].start_time == datetime(2024, 1, 2, 3, 4, 5, 123000, tzinfo=UTC)
    stream = meta.stream_for_label("2")
    assert stream is not None and stream.stream_id == "B"
    sender = meta.participant_sending("B")
    assert sender is not None and sender.participant_id == "P2"


def test_prefixed_namespace_and_camel_case_elements() -> None:
    xml = (
        b"<tns:recording xmlns:tns='urn:ietf:params:xml:ns:recording'><tns:dataMode>Partial</tns:dataMode>"
        b"<tns:Participant Participant_ID='X'><tns:NameID aor='a@b.example'/></tns:Participant></tns:recording>"
    )
    meta = parse_recording_metadata(xml)
    assert meta.data_mode == "partial"
    assert meta.participants[0].participant_id == "X"
    assert meta.participants[0].aor == "a@b.example"


def test_id_styles_attributes_and_child_elements() -> None:
    body = """
    <session><id>S</id></session>
    <participant id="P" session="S"><nameID aor="tel:+4930123"/>
      <send><id>ST1</id></send><recv>ST2</recv></participant>
    <stream><id>ST1</id><session_id>S</session_id><label>7</label></stream>
    <stream id="ST2" session="S"><label>8</label></stream>
    """
    meta = parse_recording_metadata(_doc(body, "urn:ietf:params:xml:ns:recording"))
    assert [s.session_id for s in meta.sessions] == ["S"]
    (participant,) = meta.participants
    assert participant.aor == "+4930123"
    assert participant.session_ids == ["S"]
    assert participant.send_stream_ids == ["ST1"] and participant.recv_stream_ids == ["ST2"]
    assert participant.has_stream_association
    assert [(s.stream_id, s.session_id, s.label) for s in meta.streams] == [
        ("ST1", "S", "7"),
        ("ST2", "S", "8"),
    ]


@pytest.mark.parametrize(
    ("raw", "display"),
    [
        ("sip:9000@192.168.50.102", "9000@192.168.50.102"),
        ("SIPS:Alice@Atlanta.EXAMPLE.com;transport=tls", "Alice@atlanta.example.com"),
        ('"Extension 8500" <sip:2249888500@172.16.198.55>;tag=x', "2249888500@172.16.198.55"),
        ("2249888012@172.16.195.72", "2249888012@172.16.195.72"),
        ("sip:user:secret@host.example:5061?subject=x", "user@host.example:5061"),
        ("tel:+15551234567;phone-context=example.com", "+15551234567"),
        ("0771121212", "0771121212"),
        ("  ", None),
    ],
)
def test_normalise_aor(raw: str, display: str | None) -> None:
    assert normalise_aor(raw) == display


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2019-03-09T16:50:20", datetime(2019, 3, 9, 16, 50, 20, tzinfo=UTC)),
        ("2017-06-23T12:16:06.040Z", datetime(2017, 6, 23, 12, 16, 6, 40000, tzinfo=UTC)),
        ("2019-01-13T14:48:35-05:00", datetime(2019, 1, 13, 19, 48, 35, tzinfo=UTC)),
        ("2019-01-13T14:48:35+0100", datetime(2019, 1, 13, 13, 48, 35, tzinfo=UTC)),
        ("1970-05-13T03:29:05Z", None),
        ("yesterday", None),
        ("", None),
    ],
)
def test_timestamps(text: str, expected: datetime | None) -> None:
    meta = parse_recording_metadata(
        _doc(f"<session session_id='S'><start-time>{text}</start-time></session>")
    )
    assert meta.sessions[0].start_time == expected


def test_vendor_call_ids_found_anywhere() -> None:
    body = """
    <session session_id="S"><extensiondata xmlns:c="urn:x-cisco"><c:ciscoGUID>1-2-3-4</c:ciscoGUID>
      </extensiondata></session>
    <participant participant_id="P"><nameID aor="sip:a@b"/>
      <extensiondata xmlns:apkt="http://acmepacket.com/siprec/extensiondata">
        <apkt:ucid-hex>00FA080012345678</apkt:ucid-hex><apkt:callingParty>false</apkt:callingParty>
      </extensiondata></participant>
    <group group_id="G"><bw:extTrackingID xmlns:bw="urn:bw">123:1</bw:extTrackingID></group>
    """
    meta = parse_recording_metadata(_doc(body))
    assert meta.external_ids == {
        "cisco_guid": "1-2-3-4",
        "ucid": "00FA080012345678",
        "broadworks_tracking_id": "123:1",
    }
    assert meta.participants[0].role_hint == "called"
    # Vendor elements are kept, opaque, where they were found and in the document-wide list.
    assert any("ciscoGUID" in ext for ext in meta.sessions[0].extensions)
    assert any("callingParty" in ext for ext in meta.participants[0].extensions)
    assert len(meta.extensions) == 3


def test_avaya_hex_session_id_is_taken_as_ucid_but_base64_is_not() -> None:
    avaya = parse_recording_metadata(_doc("<session session_id='00FA0800705D4C5DCAAC41'/>"))
    assert avaya.external_ids == {"ucid": "00FA0800705D4C5DCAAC41"}
    other = parse_recording_metadata(_doc("<session session_id='kQNhKFdEEeeJ9tD/VsPGWA=='/>"))
    assert other.external_ids == {}


def test_rfc7865_style_snapshot_with_extensions() -> None:
    meta = parse_recording_metadata((METADATA / "complete-4streams.xml").read_bytes())
    assert meta.group_ids == ["Gq8rN2vLT0e4hY6cJ1mZpA=="]
    (session,) = meta.sessions
    assert session.group_ref == "Gq8rN2vLT0e4hY6cJ1mZpA=="
    assert session.sip_session_ids == [
        "c0ffee11c0ffee22c0ffee33c0ffee44; remote=deadbeef11deadbeef22deadbeef3344"
    ]
    assert [p.aor for p in meta.participants] == ["nora@contact.example.com", "omar@customer.example.net"]
    assert [s.label for s in meta.streams] == ["96", "97", "98", "99"]
    assert meta.participants[0].send_stream_ids == [S97, S96]
    # call-center and two private elements in <group>, one each in the session and participants.
    assert len(meta.extensions) == 6
    assert "urn:ietf:params:xml:ns:callcenter" in meta.extensions[0]
    # A well-formed RFC 7989 Session-ID is not a Call-ID.
    assert session.sip_call_ids == []


def test_misspelt_closing_tag_is_malformed() -> None:
    with pytest.raises(ValueError, match="not well-formed XML: mismatched tag"):
        parse_recording_metadata((METADATA / "complete-4streams-malformed.xml").read_bytes())


def test_partial_hold_and_resume_apply_on_the_snapshot() -> None:
    base = parse_recording_metadata((METADATA / "complete-4streams.xml").read_bytes())
    hold = parse_recording_metadata((METADATA / "partial-hold.xml").read_bytes())
    resume = parse_recording_metadata((METADATA / "partial-resume.xml").read_bytes())
    assert hold.data_mode == resume.data_mode == "partial"

    held = apply_update(base, hold)
    assert held.data_mode == "complete"
    alice, bob = held.participants
    # Alice is on hold: she no longer sends; Bob's media no longer reaches her.
    assert alice.send_stream_ids == [] and alice.recv_stream_ids == [S98, S99]
    assert bob.send_stream_ids == [S98, S99] and bob.recv_stream_ids == []
    # What the partial update did not mention is kept.
    assert alice.aor == "nora@contact.example.com" and alice.display_name == "Nora"
    assert [s.label for s in held.streams] == ["96", "97", "98", "99"]
    assert held.participant_sending(S96) is None
    assert diff_participants(base, held) == diff_participants(base, base)

    resumed = apply_update(held, resume)
    alice, bob = resumed.participants
    assert alice.send_stream_ids == [S97, S96] and alice.recv_stream_ids == [S98, S99]
    assert bob.send_stream_ids == [S98, S99] and bob.recv_stream_ids == [S96, S97]
    sender = resumed.participant_sending(S96)
    assert sender is not None and sender.aor == "nora@contact.example.com"


def test_complete_update_replaces_and_partial_without_base_stands_alone() -> None:
    first = parse_recording_metadata(_doc(TWO_PARTY))
    replacement = parse_recording_metadata(_doc("<participant participant_id='P9'/>"))
    assert apply_update(first, replacement) is replacement
    partial = parse_recording_metadata(_doc("<datamode>partial</datamode>"))
    assert apply_update(None, partial) is partial


def test_partial_update_adds_participant_and_disassociates_another() -> None:
    base = parse_recording_metadata(_doc(TWO_PARTY))
    update = parse_recording_metadata(
        _doc(
            """<datamode>partial</datamode>
            <participant participant_id="P3"><nameID aor="sip:sup@pbx.example.com"/></participant>
            <stream stream_id="C" session_id="S1"><label>3</label></stream>
            <participantstreamassoc participant_id="P3"><send>C</send></participantstreamassoc>
            <participantsessionassoc participant_id="P2" session_id="S1">
              <disassociate-time>2024-01-02T03:10:00Z</disassociate-time></participantsessionassoc>"""
        )
    )
    merged = apply_update(base, update)
    assert [p.participant_id for p in merged.participants] == ["P1", "P2", "P3"]
    assert [p.participant_id for p in merged.active_participants] == ["P1", "P3"]
    p2 = merged.participant("P2")
    assert p2 is not None and p2.disassociate_time == datetime(2024, 1, 2, 3, 10, tzinfo=UTC)
    assert p2.send_stream_ids == ["B"]  # streams untouched by an update that did not mention them
    changes = diff_participants(base, merged)
    assert [p.participant_id for p in changes.joined] == ["P3"]
    assert [p.participant_id for p in changes.left] == ["P2"]


def _snapshot(*parties: tuple[str, str]) -> RecordingMetadata:
    body = "".join(
        f"<participant participant_id='{pid}'><nameID aor='{aor}'/></participant>" for pid, aor in parties
    )
    return parse_recording_metadata(_doc(body))


def test_diff_three_way_call_with_fresh_ids_per_snapshot() -> None:
    two = _snapshot(("a1", "sip:alice@x"), ("b1", "sip:bob@x"))
    # Metaswitch-style: every snapshot mints new participant ids; the AOR still matches.
    three = _snapshot(("a2", "sip:alice@x"), ("b2", "sip:bob@x"), ("c2", "sip:carol@x"))
    back_to_two = _snapshot(("a3", "sip:alice@x"), ("c3", "sip:carol@x"))
    joined = diff_participants(two, three)
    assert [p.aor for p in joined.joined] == ["carol@x"] and joined.left == []
    left = diff_participants(three, back_to_two)
    assert left.joined == [] and [p.aor for p in left.left] == ["bob@x"]
    initial = diff_participants(None, two)
    assert [p.participant_id for p in initial.joined] == ["a1", "b1"]


def test_stream_for_label_compares_numbers_by_value() -> None:
    meta = parse_recording_metadata(_doc("<stream stream_id='s'><label>0016777227</label></stream>"))
    assert meta.stream_for_label(" 16777227 ") is meta.streams[0]
    assert meta.stream_for_label("16777228") is None
    assert meta.participant_sending("s") is None


@pytest.mark.parametrize(
    ("xml", "message"),
    [
        (b"", "is empty"),
        (b"<recording", "not well-formed"),
        (b"<html><body/></html>", "root element <html> is not"),
        (
            b"<recording_metadata xmlns='urn:ietf:params:xml:ns:siprec'>completeSRC</recording_metadata>",
            "markup",
        ),
        (_doc("<datamode>sometimes</datamode>"), "unknown datamode"),
        (_doc("<datamode>complete</datamode>"), "describes no session"),
        (
            _doc("<participant><nameID aor='a@b'/></participant>"),
            "<participant> element has no participant_id",
        ),
        (_doc("<participantstreamassoc><send>x</send></participantstreamassoc>"), "names no participant"),
        (_doc(f"<session session_id='{'x' * 300}'/>"), "longer than 256"),
        (
            b'<?xml version="1.0" encoding="no-such-codec"?><recording/>',
            "cannot be decoded: unknown encoding",
        ),
    ],
)
def test_refusals(xml: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_recording_metadata(xml)


def test_limits() -> None:
    five = "".join(f"<participant participant_id='p{i}'/>" for i in range(5))
    assert len(parse_recording_metadata(_doc(five), max_participants=5).participants) == 5
    with pytest.raises(ValueError, match="more than 4 participants"):
        parse_recording_metadata(_doc(five), max_participants=4)
    streams = "".join(f"<stream stream_id='s{i}'><label>{i}</label></stream>" for i in range(3))
    with pytest.raises(ValueError, match="more than 2 streams"):
        parse_recording_metadata(_doc(streams), max_streams=2)
    big = _doc("<session session_id='S'/>" + "<x/>" * 70000)
    with pytest.raises(ValueError, match="exceeds the limit of 262144"):
        parse_recording_metadata(big)
    deep = _doc("<session session_id='S'>" + "<x>" * 100 + "</x>" * 100 + "</session>")
    with pytest.raises(ValueError, match="deeper than"):
        parse_recording_metadata(deep)


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<recording xmlns="urn:ietf:params:xml:ns:recording:1"><session session_id="&lol3;"/></recording>"""
EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<recording><session session_id="&xxe;"/></recording>"""
PLAIN_DTD = b"""<?xml version="1.0"?><!DOCTYPE recording SYSTEM "http://example.com/r.dtd">
<recording><session session_id="S"/></recording>"""


@pytest.mark.parametrize("xml", [BILLION_LAUGHS, EXTERNAL_ENTITY, PLAIN_DTD])
def test_hostile_xml_is_refused(xml: bytes) -> None:
    with pytest.raises(ValueError, match="recording metadata refused: DTDForbidden"):
        parse_recording_metadata(xml)
