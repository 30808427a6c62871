"""Every SRC dialect the README names, from the project's own fixtures (tests/fixtures/siprec).

Each fixture was written for this project to show what one vendor's recording
client really sends (namespaces, element order, id styles, multipart framing,
vendor call ids); tests/fixtures/siprec/README.md says which quirk is where.
These run everywhere; the same checks over a third-party corpus are an extra
(test_reference_corpus.py).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest
from tests.support.siprec_samples import (
    MESSAGES,
    METADATA,
    OFFERS,
    PLAIN_SDPS,
    SIPREC_FIXTURES,
    first_boundary,
    mutate,
    offer,
    split_sip_message,
)

from callvault.sip.metadata import apply_update, parse_recording_metadata
from callvault.sip.multipart import parse_multipart
from callvault.sip.siprec_body import is_metadata_part, is_recording_session, parse_siprec_body

README = Path(__file__).resolve().parents[2] / "README.md"


@dataclass(frozen=True)
class Expected:
    boundary: str
    labels: list[str]
    # label -> AOR (display form) of the participant sending on it; absent when the dialect gives no mapping
    senders: dict[str, str]
    aors: list[str]
    names: list[str | None]
    external_ids: dict[str, str] = field(default_factory=dict)
    ignored: list[str] = field(default_factory=list)
    roles: list[str | None] = field(default_factory=lambda: [None, None])
    call_ids: list[str] = field(default_factory=list)


VENDOR_OFFERS = {
    "oracle-acme.txt": Expected(
        boundary="acme-rec-7f3a",
        labels=["33554433", "33554434"],
        senders={"33554433": "+14155550142@carrier.example.net", "33554434": "1002@pbx.example"},
        aors=["+14155550142@carrier.example.net", "1002@pbx.example"],
        names=["+14155550142", "1002"],
        external_ids={"ucid": "00FA08000C2A67D5E1F3"},
        roles=["calling", "called"],
    ),
    "cisco-cube.txt": Expected(
        boundary="uniqueBoundary",
        labels=["1", "2"],
        senders={"1": "+13125550177@203.0.113.40", "2": "2407@203.0.113.40"},
        aors=["+13125550177@203.0.113.40", "2407@203.0.113.40"],
        names=[None, "2407"],
        external_ids={"cisco_guid": "7d41c2a0f85e11ef8a3bd0ff56c3c6a1"},
        ignored=["application/gtd"],
    ),
    "cisco-cube-inactive.txt": Expected(
        boundary="uniqueBoundary",
        labels=["1", "2"],
        senders={},
        aors=["0205550134@10.44.0.21", "+447700900123@10.44.0.30"],
        names=[None, None],
    ),
    "ribbon-sonus.txt": Expected(
        boundary="sonus-content-delim",
        labels=["1", "2"],
        senders={"2": "6175554410@10.60.7.2", "1": "6175550188@10.60.9.4"},
        aors=["6175554410@10.60.7.2", "6175550188@10.60.9.4"],
        names=["Front Desk 4410", None],
        external_ids={"vendor_call_id": "c3f0b1e2-7d54-11ef-9a01-525400aa10bc", "sonus_gcid": "508812093"},
        roles=["calling", "called"],
        call_ids=["c3f0b1e2-7d54-11ef-9a01-525400aa10bc"],
    ),
    "avaya-sbce.txt": Expected(
        boundary="sbce-7731",
        labels=["10", "20"],
        senders={"10": "+4930555019@192.0.2.60", "20": "2150@cm.example.org"},
        aors=["+4930555019@192.0.2.60", "2150@cm.example.org"],
        names=[None, None],
        external_ids={"ucid": "00FA080033A1C4E29B7D05"},
    ),
    "broadworks.txt": Expected(
        boundary="BWRecBoundary",
        labels=["1"],
        # One mixed stream that both parties send on: the first listed is reported.
        senders={"1": "+16465550123@sbc.example.com"},
        aors=["+16465550123@sbc.example.com", "+16465550990@sbc.example.com"],
        names=["Riverside Pharmacy", None],
        external_ids={"broadworks_tracking_id": "4471902:1"},
    ),
    "opensips.txt": Expected(
        boundary="OSS-unique-boundary-42",
        labels=["1", "2"],
        senders={},
        aors=["0612345678@192.0.2.77", "0687654321@trunk.example.nl"],
        names=["queue_sales;lang=nl-NL;id=31", None],
        call_ids=["41c9e07d2ab35f8816c0d7e2a94b3f15@192.0.2.77"],
    ),
    "sems.txt": Expected(
        boundary="5B1E0C77",
        labels=["a_leg", "b_leg"],
        senders={"a_leg": "035550112@203.0.113.7", "b_leg": "Hotline-035550190@voice.example.org"},
        aors=["035550112@203.0.113.7", "Hotline-035550190@voice.example.org"],
        names=["035550112", "Support Hotline 035550190"],
    ),
    "audiocodes.txt": Expected(
        boundary="boundary_ac17d3e0a2",
        labels=["1", "2"],
        senders={"1": "+14155550123@trunk.example.com", "2": "1002@pbx.example"},
        aors=["+14155550123@trunk.example.com", "1002@pbx.example"],
        names=["+14155550123", "Bob 1002"],
        external_ids={"ucid": "FA080019002C51E3A9D044", "genesys_uuid": "7QK2M4N6P8R0T2V4X6Z8B0D2F4H6J8L"},
    ),
    "freeswitch.txt": Expected(
        boundary="uniqueBoundary",
        labels=["inbound", "outbound"],
        senders={},
        aors=["+14155550199@carrier.example", "1001@pbx.example"],
        names=[None, None],
        call_ids=["3b8e1f60-52a4-11f0-8c1d-0242ac120004"],
    ),
}
BROKEN_OFFERS = ["broadworks-stripped.txt"]
# README "Recording calls from an SBC or PBX": every dialect it names has its fixture.
DIALECTS = {
    "Oracle/Acme": ["oracle-acme.txt"],
    "Cisco CUBE": ["cisco-cube.txt", "cisco-cube-inactive.txt"],
    "AudioCodes": ["audiocodes.txt"],
    "Ribbon/Sonus": ["ribbon-sonus.txt"],
    "Avaya SBCE": ["avaya-sbce.txt"],
    "BroadWorks": ["broadworks.txt", "broadworks-stripped.txt"],
    "OpenSIPS": ["opensips.txt"],
    "FreeSWITCH": ["freeswitch.txt"],
}
EXTRA_OFFERS = ["sems.txt"]  # SEMS is not in the README's list; its quirks are kept all the same
PLAIN_SDP_FILES = sorted(p.name for p in PLAIN_SDPS.glob("*.sdp"))


def test_every_readme_dialect_has_a_fixture_and_every_fixture_a_test() -> None:
    match = re.search(r"from any vendor dialect\s*\(([^)]*)\)", README.read_text())
    assert match is not None, "README no longer lists the SRC dialects"
    listed = [name.strip() for name in " ".join(match.group(1).split()).split(",")]
    assert listed == list(DIALECTS)
    covered = {name for names in DIALECTS.values() for name in names} | set(EXTRA_OFFERS)
    assert covered == set(VENDOR_OFFERS) | set(BROKEN_OFFERS)
    assert {p.name for p in OFFERS.iterdir()} == covered
    described = (SIPREC_FIXTURES / "README.md").read_text()
    every_file = [p for p in SIPREC_FIXTURES.rglob("*") if p.is_file() and p.name != "README.md"]
    assert len(every_file) == 22
    missing = [p.name for p in every_file if f"`{p.name}`" not in described]
    assert missing == [], "tests/fixtures/siprec/README.md does not describe these"


@pytest.mark.parametrize("name", sorted(VENDOR_OFFERS))
def test_vendor_offer(name: str) -> None:
    expected = VENDOR_OFFERS[name]
    body = offer(name)
    content_type = f"multipart/mixed;boundary={expected.boundary}"
    assert first_boundary(body) == expected.boundary
    assert is_recording_session(content_type, body)
    parsed = parse_siprec_body(content_type, body)
    assert parsed.metadata_error is None
    assert parsed.ignored_parts == expected.ignored
    assert parsed.sdp is not None and parsed.sdp.startswith("v=0\r\n" if b"\r\n" in body else "v=0\n")
    assert re.findall(r"^a=label:(\S+)\r?$", parsed.sdp, re.MULTILINE) == expected.labels
    meta = parsed.metadata
    assert meta is not None and meta.data_mode == "complete"
    assert len(meta.sessions) == 1
    assert [s.label for s in meta.streams] == expected.labels
    assert all(s.session_id == meta.sessions[0].session_id for s in meta.streams)
    assert [p.aor for p in meta.participants] == expected.aors
    assert [p.display_name for p in meta.participants] == expected.names
    assert [p.role_hint for p in meta.participants] == expected.roles
    for label in expected.labels:
        stream = meta.stream_for_label(label)
        assert stream is not None
        sender = meta.participant_sending(stream.stream_id)
        assert (sender.aor if sender else None) == expected.senders.get(label)
    assert parsed.external_ids == expected.external_ids
    assert meta.sessions[0].sip_call_ids == expected.call_ids
    # The same boundary is found when the Content-Type forgets it.
    assert parse_siprec_body("multipart/mixed", body) == parsed


def test_cisco_cube_session_ids_times_and_gtd_guid() -> None:
    parsed = parse_siprec_body("multipart/mixed;boundary=uniqueBoundary", offer("cisco-cube.txt"))
    assert parsed.metadata is not None
    (session,) = parsed.metadata.sessions
    # An RFC 7989 Session-ID stays a Session-ID; the Call-ID list is not polluted with it.
    assert session.sip_session_ids == [
        "5b0c1f2e3d4c5b6a79880a1b2c3d4e5f;remote=0f1e2d3c4b5a69788796a5b4c3d2e1f0"
    ]
    assert session.sip_call_ids == []
    assert session.start_time == datetime(2025, 3, 3, 17, 42, 9, 512000, tzinfo=UTC)
    first, second = parsed.metadata.participants
    assert first.send_stream_ids == second.recv_stream_ids == ["3q2+7wAAEe+ABND/VsPGWA=="]
    assert first.recv_stream_ids == second.send_stream_ids == ["3q2+7wAAEe+ABdD/VsPGWA=="]
    parts = parse_multipart("multipart/mixed;boundary=uniqueBoundary", offer("cisco-cube.txt"))
    assert [p.disposition for p in parts] == ["session", "recording-session", "signal"]


def test_cisco_cube_inactive_offer_has_empty_stream_associations() -> None:
    parsed = parse_siprec_body("multipart/mixed;boundary=uniqueBoundary", offer("cisco-cube-inactive.txt"))
    assert parsed.sdp is not None and parsed.sdp.count("a=inactive") == 2
    assert parsed.sdp.count("a=rtpmap:19 CN/8000") == 2
    assert parsed.metadata is not None
    for participant in parsed.metadata.participants:
        assert participant.has_stream_association
        assert participant.send_stream_ids == participant.recv_stream_ids == []


def test_oracle_old_namespace_id_attributes_and_trailing_space_after_closing_delimiter() -> None:
    body = offer("oracle-acme.txt")
    assert body.endswith(b"--acme-rec-7f3a-- \n")
    parts = parse_multipart("multipart/mixed;boundary=acme-rec-7f3a", body)
    assert [p.essence for p in parts] == ["application/sdp", "application/rs-metadata+xml"]
    assert b"xmlns='urn:ietf:params:xml:ns:recording'>" in parts[1].body
    parsed = parse_siprec_body("multipart/mixed;boundary=acme-rec-7f3a", body)
    assert parsed.metadata is not None
    (session,) = parsed.metadata.sessions
    assert session.session_id == "Xc3tLkq0RZy8aW1nVQ2e7A=="
    # Only the association time is given, without a zone: taken as UTC.
    assert session.start_time == datetime(2025, 2, 14, 8, 5, 11, tzinfo=UTC)
    assert parsed.metadata.participants[0].session_ids == ["Xc3tLkq0RZy8aW1nVQ2e7A=="]
    assert [s.associate_time for s in parsed.metadata.streams][1] == datetime(
        2025, 2, 14, 8, 5, 19, tzinfo=UTC
    )
    assert len(parsed.metadata.extensions) == 2 and "callingParty" in parsed.metadata.extensions[0]


def test_ribbon_sonus_prefix_1970_times_and_call_data() -> None:
    body = offer("ribbon-sonus.txt")
    assert b"--sonus-content-delim--" not in body  # no closing delimiter at all
    parsed = parse_siprec_body("multipart/mixed;boundary=sonus-content-delim", body)
    assert parsed.sdp is not None and "\nc=" not in parsed.sdp.split("m=audio")[0]
    assert parsed.metadata is not None
    (session,) = parsed.metadata.sessions
    assert session.start_time is None  # 1970: the SBC's clock was unset
    assert session.group_ref == "OGIxZDAwZTAtMmFhMy0xMQ=="
    assert parsed.metadata.participants[0].aor_raw == "6175554410@10.60.7.2"  # no sip: scheme
    assert all(s.associate_time is None for s in parsed.metadata.streams)


def test_avaya_sbce_camel_case_datamode_and_ucid_session_id() -> None:
    body = offer("avaya-sbce.txt")
    assert b"<dataMode>complete</dataMode>" in body
    parsed = parse_siprec_body("multipart/mixed;boundary=sbce-7731", body)
    assert parsed.metadata is not None
    assert parsed.metadata.sessions[0].session_id == parsed.external_ids["ucid"]
    assert parsed.sdp is not None and "a=rtpmap:97 telephone-event/8000" in parsed.sdp


def test_broadworks_pre_rfc_namespace_metadata_first_and_one_mixed_stream() -> None:
    body = offer("broadworks.txt")
    assert body.startswith(b"  \n--BWRecBoundary\nContent-Type:application/rs-metadata+xml\n")
    meta_part, sdp_part = parse_multipart("multipart/mixed;boundary=BWRecBoundary", body)
    assert is_metadata_part(meta_part) and sdp_part.essence == "application/sdp"
    assert int(meta_part.headers["content-length"]) == len(meta_part.body)
    assert int(sdp_part.headers["content-length"]) == len(sdp_part.body)
    parsed = parse_siprec_body("multipart/mixed;boundary=BWRecBoundary", body)
    assert parsed.metadata is not None
    (stream,) = parsed.metadata.streams
    assert [p.send_stream_ids for p in parsed.metadata.participants] == [[stream.stream_id]] * 2
    assert parsed.metadata.participants[0].aor_raw == "sip:+16465550123@sbc.example.com;user=phone"
    # Offset -04:00 normalised to UTC.
    assert parsed.metadata.sessions[0].start_time == datetime(2025, 6, 2, 20, 20, 5, tzinfo=UTC)


def test_broadworks_stripped_markup_is_a_metadata_error_not_a_crash() -> None:
    body = offer("broadworks-stripped.txt")
    content_type = "multipart/mixed;boundary=BWRecBoundary"
    # "Content-Type:application/ +xml" is garbled, but Content-Disposition says recording-session.
    assert is_recording_session(content_type, body)
    garbled, sdp_part = parse_multipart(content_type, body)
    assert garbled.essence == "application/+xml" and is_metadata_part(garbled)
    assert sdp_part.headers["content-length"] == "285" and not is_metadata_part(sdp_part)
    parsed = parse_siprec_body(content_type, body)
    assert parsed.metadata is None
    assert parsed.metadata_error is not None and "markup missing" in parsed.metadata_error
    assert parsed.sdp is not None and "a=label:1" in parsed.sdp and parsed.sdp.startswith("v=0\n")
    assert parsed.ignored_parts == []


@pytest.mark.parametrize("name", ["queue_sales;lang=nl-NL;id=31", "queue_sales;lang=nl-NL", "queue_sales"])
def test_opensips_no_connection_line_no_mapping_and_names_with_parameters(name: str) -> None:
    body = offer("opensips.txt").replace(b"queue_sales;lang=nl-NL;id=31", name.encode())
    parsed = parse_siprec_body("multipart/mixed;boundary=OSS-unique-boundary-42", body)
    assert parsed.sdp is not None and "\nc=" not in parsed.sdp and "IN IP4 0.0.0.0" in parsed.sdp
    assert parsed.metadata is not None
    assert [p.display_name for p in parsed.metadata.participants] == [name, None]
    assert all(not p.has_stream_association for p in parsed.metadata.participants)


def test_sems_no_xml_suffix_no_closing_delimiter_and_split_attributes() -> None:
    body = offer("sems.txt")
    assert b"--5B1E0C77--" not in body
    parts = parse_multipart("multipart/mixed;boundary=5B1E0C77", body)
    assert parts[1].essence == "application/rs-metadata"
    assert parts[1].body.rstrip().endswith(b"</recording>")
    assert parts[0].body.count(b"a=direction:both\na=sendonly") == 2


def test_audiocodes_vendor_ids_group_and_default_namespace_on_prefixed_elements() -> None:
    body = offer("audiocodes.txt")
    assert b'<ac:AvayaUCID xmlns="urn:ietf:params:xml:ns:Avaya">' in body
    parsed = parse_siprec_body("multipart/mixed;boundary=boundary_ac17d3e0a2", body)
    assert parsed.metadata is not None
    assert parsed.metadata.group_ids == ["00000000-0000-0000-0000-0000b41c77e2"]
    (session,) = parsed.metadata.sessions
    assert session.group_ref == "00000000-0000-0000-0000-0000b41c77e2"
    assert session.sip_call_ids == []  # its sipSessionID is an RFC 7989 one
    # The vendor elements are kept, opaque, with the session.
    assert any("AvayaUCID" in ext for ext in session.extensions)
    assert any("GenesysUUID" in ext for ext in session.extensions)


def test_freeswitch_crlf_no_datamode_call_id_in_session_id_and_offset_without_colon() -> None:
    body = offer("freeswitch.txt")
    assert b"\r\n" in body and b"\n" not in body.replace(b"\r\n", b"")
    assert b"datamode" not in body.lower() and b"participantstreamassoc" not in body
    parsed = parse_siprec_body("multipart/mixed;boundary=uniqueBoundary", body)
    assert parsed.metadata is not None and parsed.metadata.data_mode == "complete"
    (session,) = parsed.metadata.sessions
    assert session.sip_session_ids == session.sip_call_ids == ["3b8e1f60-52a4-11f0-8c1d-0242ac120004"]
    # From <sessionrecordingassoc>, "+0200" without a colon.
    assert session.start_time == datetime(2025, 6, 30, 12, 48, 35, tzinfo=UTC)
    assert all(not p.has_stream_association for p in parsed.metadata.participants)


@pytest.mark.parametrize("name", PLAIN_SDP_FILES)
def test_plain_sdp_is_not_a_recording_session(name: str) -> None:
    body = (PLAIN_SDPS / name).read_bytes()
    assert not is_recording_session("application/sdp", body)
    parsed = parse_siprec_body("application/sdp", body)
    assert parsed.metadata is None and parsed.metadata_error is None
    assert parsed.sdp is not None and "v=0" in parsed.sdp
    assert not is_recording_session("multipart/mixed;boundary=x", body)
    with pytest.raises(ValueError, match="no delimiter line for boundary 'x'"):
        parse_siprec_body("multipart/mixed;boundary=x", body)


def test_bare_metadata_body_is_a_metadata_only_update() -> None:
    xml = (METADATA / "partial-hold.xml").read_bytes()
    assert is_recording_session("application/rs-metadata+xml", xml)
    assert not is_recording_session("application/rs-metadata+xml", b"  ")
    parsed = parse_siprec_body("application/rs-metadata+xml", xml)
    assert parsed.sdp is None and parsed.metadata is not None and parsed.metadata.data_mode == "partial"
    broken = parse_siprec_body("application/rs-metadata", b"<recording")
    assert broken.metadata is None and broken.metadata_error is not None


def test_other_bodies() -> None:
    assert parse_siprec_body("", b"") == parse_siprec_body("application/sdp", b"\r\n")
    assert parse_siprec_body("", b"").sdp is None
    with pytest.raises(ValueError, match="unsupported body Content-Type 'text/plain'"):
        parse_siprec_body("text/plain", b"hello")
    assert parse_siprec_body("application/sdp", b"v=0\r\ns=\xe9\r\n").sdp == "v=0\r\ns=\xe9\r\n"


def test_metadata_alone() -> None:
    complete = parse_recording_metadata((METADATA / "complete-4streams.xml").read_bytes())
    assert [s.label for s in complete.streams] == ["96", "97", "98", "99"]
    for label, sender_index in (("96", 0), ("97", 0), ("98", 1), ("99", 1)):
        stream = complete.stream_for_label(label)
        assert stream is not None
        assert complete.participant_sending(stream.stream_id) == complete.participants[sender_index]
    for name in ("partial-hold.xml", "partial-resume.xml"):
        partial = parse_recording_metadata((METADATA / name).read_bytes())
        assert partial.data_mode == "partial" and partial.streams == [] and partial.sessions == []
        assert [p.participant_id for p in partial.participants] == [
            p.participant_id for p in complete.participants
        ]
        assert apply_update(complete, partial).participants[0].aor == "nora@contact.example.com"
    with pytest.raises(ValueError, match="mismatched tag"):
        parse_recording_metadata((METADATA / "complete-4streams-malformed.xml").read_bytes())


HANDWRITTEN = {
    "attribute-style-invite.sip": (
        "hand-session-88021",
        ["hand-call-88021@pbx.example.com"],
        [
            ("agent", "agent2210@pbx.example.com", "Agent 2210"),
            ("customer", "caller@outside.example.net", "Walk-in Customer"),
        ],
        [("mixed-1", "1")],
    ),
    "nested-session-invite.sip": (
        "hand-session-90177",
        ["hand-call-90177"],
        [("u1", "priya@example.com", "Priya"), ("u2", "marek@example.com", "Marek")],
        [("only-stream", "main")],
    ),
    "child-element-ids-invite.sip": (
        "sess_31415",
        [],
        [("pa", "hana@example.com", "Hana Ito"), ("pb", "leo@example.com", "Leo Brandt")],
        [("s1", "1"), ("s2", "2")],
    ),
}


@pytest.mark.parametrize("name", sorted(HANDWRITTEN))
def test_handwritten_metadata_is_read_tolerantly(name: str) -> None:
    content_type, body = split_sip_message((MESSAGES / name).read_bytes())
    assert content_type.startswith("multipart/mixed;boundary=")
    assert is_recording_session(content_type, body)
    parsed = parse_siprec_body(content_type, body)
    session_id, call_ids, participants, streams = HANDWRITTEN[name]
    assert parsed.sdp is not None and parsed.sdp.startswith("v=0")
    assert parsed.metadata is not None, parsed.metadata_error
    assert [(s.session_id, s.sip_call_ids) for s in parsed.metadata.sessions] == [(session_id, call_ids)]
    assert [(p.participant_id, p.aor, p.display_name) for p in parsed.metadata.participants] == participants
    assert [(s.stream_id, s.label) for s in parsed.metadata.streams] == streams
    # None of them says who sends what in a form the RFC defines.
    assert all(not p.send_stream_ids for p in parsed.metadata.participants)


def test_options_ping_has_no_body() -> None:
    content_type, body = split_sip_message((MESSAGES / "options-ping.sip").read_bytes())
    assert content_type == "" and body == b""
    assert not is_recording_session(content_type, body)
    empty = parse_siprec_body(content_type, body)
    assert empty.sdp is None and empty.metadata is None and empty.metadata_error is None


def _content_type_and_body(path: Path) -> tuple[str, bytes]:
    data = path.read_bytes()
    if path.parent == MESSAGES:
        return split_sip_message(data)
    if path.parent == PLAIN_SDPS:
        return "application/sdp", data
    if path.parent == METADATA:
        return "application/rs-metadata+xml", data
    return f"multipart/mixed;boundary={first_boundary(data)}", data


ALL_FIXTURES = sorted(
    str(p.relative_to(SIPREC_FIXTURES)) for p in SIPREC_FIXTURES.rglob("*") if p.suffix != ".md"
)


@pytest.mark.parametrize("name", [n for n in ALL_FIXTURES if "." in n])
def test_mutated_fixtures_only_ever_raise_value_error(name: str) -> None:
    path = SIPREC_FIXTURES / name
    rng = random.Random(f"callvault-{path.name}")
    content_type, data = _content_type_and_body(path)
    outcomes = {"ok": 0, "metadata_error": 0, "value_error": 0}
    for _ in range(200):
        mutated = mutate(data, rng)
        try:
            if path.suffix == ".xml":
                parse_recording_metadata(mutated)
                outcomes["ok"] += 1
                continue
            is_recording_session(content_type, mutated)
            parsed = parse_siprec_body(content_type, mutated)
            outcomes["metadata_error" if parsed.metadata_error else "ok"] += 1
        except ValueError:
            outcomes["value_error"] += 1
    # Anything but ValueError fails the test above; this checks the mutations reached the error paths.
    assert outcomes["metadata_error"] + outcomes["value_error"] > 0 or content_type in ("application/sdp", "")
    assert outcomes["ok"] > 0 or "malformed" in path.name
