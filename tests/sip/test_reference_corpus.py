"""The reference corpus (an extra, see tests.support.reference): every SIPREC sample in it.

Vendor offers, metadata alone, broken and hand-written ones, read in place from
``$CALLVAULT_REFERENCE_DIR`` (default ``<repo>/../shared/reference``); the
expectations were written by reading each file. The project's own fixtures for
the same dialects are tested in test_vendor_bodies.py and always run; these
are skipped where the corpus is absent, and fail then on CI.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from tests.support.reference import REFERENCE_DIR, corpus_names
from tests.support.siprec_samples import mutate, split_sip_message

from callvault.sip.metadata import apply_update, diff_participants, parse_recording_metadata
from callvault.sip.multipart import parse_multipart
from callvault.sip.sdp import SessionDescription
from callvault.sip.siprec_body import is_metadata_part, is_recording_session, parse_siprec_body

SIPREC = REFERENCE_DIR / "siprec"
OFFERS = SIPREC / "drachtio-vendor-offers"
LORESTE = SIPREC / "loreste-handwritten"
ALL_FILES = corpus_names("siprec")
METADATA_FILES = corpus_names("siprec/metadata", "*.xml")
RFC_EXAMPLES = SIPREC / "metadata" / "rfc7865-examples"
S96, S97, S98, S99 = (
    "UAAMm5GRQKSCMVvLyl4rFw==",
    "i1Pz3to5hGk8fuXl+PbwCw==",
    "8zc6e0lYTlWIINA6GR+3ag==",
    "EiXGlc+4TruqqoDaNE76ag==",
)


@dataclass(frozen=True)
class Expected:
    boundary: str
    labels: list[str]
    # label -> AOR (display form) of the participant sending on it; absent when the sample has no mapping
    senders: dict[str, str]
    aors: list[str]
    names: list[str | None]
    external_ids: dict[str, str] = field(default_factory=dict)
    ignored: list[str] = field(default_factory=list)
    roles: list[str | None] = field(default_factory=lambda: [None, None])


CONNECTEL_AORS = ["0771121212@52.57.92.239", "0760516936@sip-cust1.connectel.io"]
VENDOR_OFFERS = {
    "acme-siprec-offer.txt": Expected(
        boundary="unique-boundary-1",
        labels=["16777227", "16777228"],
        senders={"16777227": "9000@192.168.50.102", "16777228": "1002@192.168.50.10"},
        aors=["9000@192.168.50.102", "1002@192.168.50.10"],
        names=["9000", "1002"],
        roles=["calling", "called"],
    ),
    "cisco-siprec-offer.txt": Expected(
        boundary="uniqueBoundary",
        labels=["1", "2"],
        senders={"1": "7301@35.162.237.204", "2": "7300@35.162.237.204"},
        aors=["7301@35.162.237.204", "7300@35.162.237.204"],
        names=[None, "7300"],
        external_ids={"cisco_guid": "91036128574411e789f9d0ff56c3c658"},
        ignored=["application/gtd"],
    ),
    "inactive-sdp-offer.txt": Expected(
        boundary="uniqueBoundary",
        labels=["1", "2"],
        senders={},
        aors=["0733165805@192.168.40.34", "+972546136443@192.168.10.140"],
        names=[None, None],
    ),
    "sonus-siprec-offer.txt": Expected(
        boundary="sonus-content-delim",
        labels=["1", "2"],
        senders={"2": "2249888500@172.16.198.55", "1": "2249888012@172.16.195.72"},
        aors=["2249888500@172.16.198.55", "2249888012@172.16.195.72"],
        names=["Extension 8500", None],
        external_ids={"vendor_call_id": "2da553f7-a48b-1235-d6a2-5254003a4988", "sonus_gcid": "241205267"},
        roles=["calling", "called"],
    ),
    "broadworks-offer-2.txt": Expected(
        boundary="foobar",
        labels=["10", "20"],
        senders={"10": "9878942259@212.188.68.145", "20": "ASBCE@asbce.com"},
        aors=["9878942259@212.188.68.145", "ASBCE@asbce.com"],
        names=[None, None],
        external_ids={"ucid": "00FA0800705D4C5DCAAC41"},
    ),
    "connectel-offer.txt": Expected(
        boundary="OSS-unique-boundary-42",
        labels=["1", "2"],
        senders={},
        aors=CONNECTEL_AORS,
        names=["test_user;lang=en-US;id=22", None],
    ),
    "connectel-offer2.txt": Expected(
        boundary="OSS-unique-boundary-42",
        labels=["1", "2"],
        senders={},
        aors=CONNECTEL_AORS,
        names=["test_user;lang=en-US", None],
    ),
    "connectel-offer3.txt": Expected(
        boundary="OSS-unique-boundary-42",
        labels=["1", "2"],
        senders={},
        aors=CONNECTEL_AORS,
        names=["test_user", None],
    ),
    "procomm-siprec-offer.txt": Expected(
        boundary="2CD2A2E9",
        labels=["a_leg", "b_leg"],
        senders={"a_leg": "016190200@87.252.209.116", "b_leg": "Extension-016190619@speechpath.ie"},
        aors=["016190200@87.252.209.116", "Extension-016190619@speechpath.ie"],
        names=["016190200", "Speechpath-Main-Line 016190619"],
    ),
}
NOT_SIPREC = ["non-siprec-payload.txt", "sample-sdp2.txt", "sample-sdp3.txt", "sample-sdps.txt"]


def test_reference_samples_are_all_covered(reference_dir: Path) -> None:
    assert SIPREC.is_dir(), f"reference data missing at {SIPREC} (set CALLVAULT_REFERENCE_DIR)"
    offers = {p.name for p in OFFERS.glob("*.txt")}
    assert offers == set(VENDOR_OFFERS) | set(NOT_SIPREC) | {"broadworks-offer.txt"}
    assert len(ALL_FILES) == 34


@pytest.mark.parametrize("name", sorted(VENDOR_OFFERS))
def test_vendor_offer(reference_dir: Path, name: str) -> None:
    expected = VENDOR_OFFERS[name]
    body = (OFFERS / name).read_bytes()
    content_type = f"multipart/mixed;boundary={expected.boundary}"
    assert is_recording_session(content_type, body)
    offer = parse_siprec_body(content_type, body)
    assert offer.metadata_error is None
    assert offer.ignored_parts == expected.ignored
    assert offer.sdp is not None and offer.sdp.startswith("v=0\n")
    assert re.findall(r"^a=label:(\S+)$", offer.sdp, re.MULTILINE) == expected.labels
    meta = offer.metadata
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
    assert offer.external_ids == expected.external_ids
    # The same boundary is found when the Content-Type forgets it.
    assert parse_siprec_body("multipart/mixed", body) == offer


def test_cisco_offer_details(reference_dir: Path) -> None:
    offer = parse_siprec_body(
        "multipart/mixed;boundary=uniqueBoundary", (OFFERS / "cisco-siprec-offer.txt").read_bytes()
    )
    assert offer.metadata is not None
    (session,) = offer.metadata.sessions
    assert session.sip_session_ids == [
        "e9fffff2020a598b86962867715db0cf;remote=cd0f7093d62c5f0697098fd69a4aa57b"
    ]
    assert (
        session.start_time is not None
        and session.start_time.isoformat() == "2017-06-23T12:16:06.040000+00:00"
    )
    first, second = offer.metadata.participants
    assert first.send_stream_ids == second.recv_stream_ids == ["kQOH5VdEEeeJ/ND/VsPGWA=="]
    assert first.recv_stream_ids == second.send_stream_ids == ["kQOH5VdEEeeJ/dD/VsPGWA=="]


def test_acme_old_namespace_and_trailing_space_after_closing_delimiter(reference_dir: Path) -> None:
    body = (OFFERS / "acme-siprec-offer.txt").read_bytes()
    assert body.endswith(b"--unique-boundary-1-- \n")
    parts = parse_multipart("multipart/mixed;boundary=unique-boundary-1", body)
    assert [p.essence for p in parts] == ["application/sdp", "application/rs-metadata+xml"]
    offer = parse_siprec_body("multipart/mixed;boundary=unique-boundary-1", body)
    assert offer.metadata is not None
    assert offer.metadata.sessions[0].session_id == "AavRXwIIQj1Q39eJulTipQ=="
    assert offer.metadata.participants[0].session_ids == ["AavRXwIIQj1Q39eJulTipQ=="]
    assert len(offer.metadata.extensions) == 2 and "callingParty" in offer.metadata.extensions[0]


def test_sonus_1970_times_are_unknown_and_call_data_gives_the_call_id(reference_dir: Path) -> None:
    offer = parse_siprec_body(
        "multipart/mixed;boundary=sonus-content-delim", (OFFERS / "sonus-siprec-offer.txt").read_bytes()
    )
    assert offer.metadata is not None
    (session,) = offer.metadata.sessions
    assert session.start_time is None
    assert session.group_ref == "MTQ3YzA3YzAtNjdkNy0xMA=="
    assert session.sip_call_ids == ["2da553f7-a48b-1235-d6a2-5254003a4988"]
    assert offer.metadata.participants[0].aor_raw == "2249888500@172.16.198.55"
    assert all(s.associate_time is None for s in offer.metadata.streams)


def test_inactive_offer_has_empty_stream_associations(reference_dir: Path) -> None:
    offer = parse_siprec_body(
        "multipart/mixed;boundary=uniqueBoundary", (OFFERS / "inactive-sdp-offer.txt").read_bytes()
    )
    assert offer.sdp is not None and offer.sdp.count("a=inactive") == 2
    assert offer.metadata is not None
    for participant in offer.metadata.participants:
        assert participant.has_stream_association
        assert participant.send_stream_ids == participant.recv_stream_ids == []


def test_procomm_metadata_without_xml_suffix_and_without_closing_delimiter(reference_dir: Path) -> None:
    body = (OFFERS / "procomm-siprec-offer.txt").read_bytes()
    assert b"--2CD2A2E9--" not in body
    parts = parse_multipart("multipart/mixed;boundary=2CD2A2E9", body)
    assert parts[1].essence == "application/rs-metadata"
    assert parts[1].body.rstrip().endswith(b"</recording>")


def test_broadworks_stripped_markup_is_a_metadata_error_not_a_crash(reference_dir: Path) -> None:
    body = (OFFERS / "broadworks-offer.txt").read_bytes()
    content_type = "multipart/mixed;boundary=UniqueBroadWorksBoundary"
    # "Content-Type:application/ +xml" is garbled, but Content-Disposition says recording-session.
    assert is_recording_session(content_type, body)
    garbled, sdp_part = parse_multipart(content_type, body)
    assert garbled.essence == "application/+xml" and is_metadata_part(garbled)
    assert sdp_part.headers["content-length"] == "300" and not is_metadata_part(sdp_part)
    offer = parse_siprec_body(content_type, body)
    assert offer.metadata is None
    assert offer.metadata_error is not None and "markup missing" in offer.metadata_error
    assert offer.sdp is not None and "a=label:1" in offer.sdp and offer.sdp.startswith("v=0\n")
    assert offer.ignored_parts == []


@pytest.mark.parametrize("name", NOT_SIPREC)
def test_plain_sdp_is_not_a_recording_session(reference_dir: Path, name: str) -> None:
    body = (OFFERS / name).read_bytes()
    assert not is_recording_session("application/sdp", body)
    offer = parse_siprec_body("application/sdp", body)
    assert offer.metadata is None and offer.metadata_error is None
    assert offer.sdp is not None and "v=0" in offer.sdp
    assert not is_recording_session("multipart/mixed;boundary=x", body)
    with pytest.raises(ValueError, match="no delimiter line for boundary 'x'"):
        parse_siprec_body("multipart/mixed;boundary=x", body)


def test_bare_metadata_body_is_a_metadata_only_update(reference_dir: Path) -> None:
    xml = (SIPREC / "metadata" / "rfc7865-examples" / "03_partial_hold.xml").read_bytes()
    assert is_recording_session("application/rs-metadata+xml", xml)
    assert not is_recording_session("application/rs-metadata+xml", b"  ")
    offer = parse_siprec_body("application/rs-metadata+xml", xml)
    assert offer.sdp is None and offer.metadata is not None and offer.metadata.data_mode == "partial"
    broken = parse_siprec_body("application/rs-metadata", b"<recording")
    assert broken.metadata is None and broken.metadata_error is not None


@pytest.mark.parametrize("name", METADATA_FILES)
def test_metadata_alone(reference_dir: Path, name: str) -> None:
    path = reference_dir / name
    xml = path.read_bytes()
    if path.name.startswith("01_"):
        with pytest.raises(ValueError, match="mismatched tag"):
            parse_recording_metadata(xml)
        return
    meta = parse_recording_metadata(xml)
    if path.parent.name == "drachtio":
        # Same document as the part inside the matching vendor offer.
        offer_name = path.name.removesuffix("_0.xml") + ".txt"
        offer = parse_siprec_body(
            f"multipart/mixed;boundary={VENDOR_OFFERS[offer_name].boundary}",
            (OFFERS / offer_name).read_bytes(),
        )
        assert offer.metadata == meta
    elif path.name.startswith("0") and "partial" in path.name:
        assert meta.data_mode == "partial"
        assert [p.participant_id for p in meta.participants] == [
            "srfBElmCRp2QB23b7Mpk0w==",
            "zSfPoSvdSDCmU3A3TRDxAw==",
        ]
        assert meta.streams == [] and meta.sessions == []
    else:
        assert [s.label for s in meta.streams] == ["96", "97", "98", "99"]
        assert len(meta.participants) == 2
        for label, sender_index in (("96", 0), ("97", 0), ("98", 1), ("99", 1)):
            stream = meta.stream_for_label(label)
            assert stream is not None
            assert meta.participant_sending(stream.stream_id) == meta.participants[sender_index]


LORESTE_EXPECTED = {
    "loreste_avaya_siprec_invite.txt": (
        "avaya-session-12345",
        ["avaya-call-12345@pbx.company.com"],
        [
            ("agent", "agent1234@pbx.company.com", "Agent 1234"),
            ("customer", "customer@external.com", "External Customer"),
        ],
        [("audio-stream-1", "1")],
    ),
    "loreste_cisco_siprec_invite.txt": (
        "cisco-session-54321",
        ["cisco-call-54321@cube.company.com"],
        [
            ("caller", "+19995551234@cube.company.com", "External Caller"),
            ("agent", "agent5678@ucm.company.com", "Agent 5678"),
        ],
        [("audio-stream-1", "1")],
    ),
    "loreste_siprec_invite.txt": (
        "test-session-1747936322",
        ["test-call-1747936322"],
        [("p1", "alice@example.com", "Alice"), ("p2", "bob@example.com", "Bob")],
        [("audio-stream", "stream1")],
    ),
    "loreste_siprec_invite_full.txt": (
        "sess_1748528060",
        [],
        [("part1", "alice@example.com", "Alice Smith"), ("part2", "bob@example.com", "Bob Johnson")],
        [("stream1", "1"), ("stream2", "2")],
    ),
}


@pytest.mark.parametrize("name", sorted(LORESTE_EXPECTED))
def test_loreste_handwritten_metadata_is_read_tolerantly(reference_dir: Path, name: str) -> None:
    content_type, body = split_sip_message((LORESTE / name).read_bytes())
    assert content_type.startswith("multipart/mixed;boundary=")
    assert is_recording_session(content_type, body)
    offer = parse_siprec_body(content_type, body)
    session_id, call_ids, participants, streams = LORESTE_EXPECTED[name]
    assert offer.sdp is not None and offer.sdp.startswith("v=0")
    assert offer.metadata is not None, offer.metadata_error
    assert [(s.session_id, s.sip_call_ids) for s in offer.metadata.sessions] == [(session_id, call_ids)]
    assert [(p.participant_id, p.aor, p.display_name) for p in offer.metadata.participants] == participants
    assert [(s.stream_id, s.label) for s in offer.metadata.streams] == streams
    # None of them says who sends what in a form the RFC defines.
    assert all(not p.send_stream_ids for p in offer.metadata.participants)


def test_loreste_body_alone_and_options_without_body(reference_dir: Path) -> None:
    body = (LORESTE / "loreste_siprec_body.txt").read_bytes()
    offer = parse_siprec_body("multipart/mixed;boundary=boundary1", body)
    assert offer.metadata is not None and [p.aor for p in offer.metadata.participants] == [
        "alice@example.com",
        "bob@example.com",
    ]
    content_type, options_body = split_sip_message((LORESTE / "loreste_simple_options.txt").read_bytes())
    assert content_type == "" and options_body == b""
    assert not is_recording_session(content_type, options_body)
    empty = parse_siprec_body(content_type, options_body)
    assert empty.sdp is None and empty.metadata is None and empty.metadata_error is None


def _content_type_and_body(path: Path) -> tuple[str, bytes]:
    data = path.read_bytes()
    if path.parent == LORESTE and not path.name.endswith("_body.txt"):
        return split_sip_message(data)
    if path.name in NOT_SIPREC:
        return "application/sdp", data
    boundary = data.split(b"\n--", 1)[1].split(b"\n", 1)[0].decode() if b"\n--" in data else "boundary1"
    return f"multipart/mixed;boundary={boundary}", data


@pytest.mark.parametrize("name", ALL_FILES)
def test_mutated_samples_only_ever_raise_value_error(reference_dir: Path, name: str) -> None:
    path = reference_dir / name
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
            offer = parse_siprec_body(content_type, mutated)
            outcomes["metadata_error" if offer.metadata_error else "ok"] += 1
        except ValueError:
            outcomes["value_error"] += 1
    # Anything but ValueError fails the test above; this checks the mutations reached the error paths.
    assert outcomes["metadata_error"] + outcomes["value_error"] > 0 or content_type == "application/sdp"
    assert outcomes["ok"] > 0 or path.name.startswith("01_")


def test_rfc7865_example_from_the_corpus_with_extensions(reference_dir: Path) -> None:
    meta = parse_recording_metadata((RFC_EXAMPLES / "02_complete_4streams_typo_fixed.xml").read_bytes())
    assert meta.group_ids == ["7+OTCyoxTmqmqyA/1weDAg=="]
    (session,) = meta.sessions
    assert session.group_ref == "7+OTCyoxTmqmqyA/1weDAg=="
    assert session.sip_session_ids == [
        "ab30317f1a784dc48ff824d0d3715d86; remote=47755a9de7794ba387653f2099600ef2"
    ]
    assert [p.aor for p in meta.participants] == ["alice@atlanta.com", "bob@biloxy.com"]
    assert [s.label for s in meta.streams] == ["96", "97", "98", "99"]
    assert meta.participants[0].send_stream_ids == [S97, S96]
    # call-center and two mydata in <group>, one mydata each in session and participants.
    assert len(meta.extensions) == 5
    assert "urn:ietf:params:xml:ns:callcenter" in meta.extensions[0]


def test_rfc7865_as_published_is_malformed(reference_dir: Path) -> None:
    with pytest.raises(ValueError, match="not well-formed XML: mismatched tag"):
        parse_recording_metadata(
            (RFC_EXAMPLES / "01_complete_4streams_AS_PUBLISHED_malformed.xml").read_bytes()
        )


def test_rfc7865_partial_hold_and_resume_apply_on_the_snapshot(reference_dir: Path) -> None:
    base = parse_recording_metadata((RFC_EXAMPLES / "02_complete_4streams_typo_fixed.xml").read_bytes())
    hold = parse_recording_metadata((RFC_EXAMPLES / "03_partial_hold.xml").read_bytes())
    resume = parse_recording_metadata((RFC_EXAMPLES / "04_partial_resume.xml").read_bytes())
    assert hold.data_mode == resume.data_mode == "partial"

    held = apply_update(base, hold)
    assert held.data_mode == "complete"
    alice, bob = held.participants
    # Alice is on hold: she no longer sends; Bob's media no longer reaches her.
    assert alice.send_stream_ids == [] and alice.recv_stream_ids == [S98, S99]
    assert bob.send_stream_ids == [S98, S99] and bob.recv_stream_ids == []
    # What the partial update did not mention is kept.
    assert alice.aor == "alice@atlanta.com" and alice.display_name == "Alice"
    assert [s.label for s in held.streams] == ["96", "97", "98", "99"]
    assert held.participant_sending(S96) is None
    assert diff_participants(base, held) == diff_participants(base, base)

    resumed = apply_update(held, resume)
    alice, bob = resumed.participants
    assert alice.send_stream_ids == [S97, S96] and alice.recv_stream_ids == [S98, S99]
    assert bob.send_stream_ids == [S98, S99] and bob.recv_stream_ids == [S97, S96]
    sender = resumed.participant_sending(S96)
    assert sender is not None and sender.aor == "alice@atlanta.com"


def test_vendor_sdps_from_the_corpus_parse(reference_dir: Path) -> None:
    folder = reference_dir / "siprec" / "drachtio-vendor-offers"
    boundaries = {"acme": "unique-boundary-1"}
    parsed = 0
    for path in sorted(folder.glob("*offer*.txt")):
        text = path.read_bytes()
        boundary = text.lstrip().split(b"\n", 1)[0].strip()[2:].decode()
        boundary = boundaries.get(path.stem.split("-")[0], boundary)
        try:
            offer = parse_siprec_body(f"multipart/mixed;boundary={boundary}", text)
        except ValueError:
            continue
        if offer.sdp:
            sdp = SessionDescription.parse(offer.sdp)
            assert sdp.media and all(m.codecs() for m in sdp.media)
            parsed += 1
    assert parsed >= 6
