"""Recording metadata (RFC 7865) as session recording clients really send it.

The model is the RFC's: a recording session records one or more communication
sessions; participants send and receive media streams; each stream is tied to
an SDP media section by its ``a=label``. Vendors disagree on almost every
detail of the XML, so the parser matches local element names case-insensitively
and ignores namespaces (``urn:ietf:params:xml:ns:recording:1``, the same
without ``:1``, and the pre-RFC ``urn:ietf:params:xml:ns:siprec`` with root
``recording_metadata``), takes ids from ``*_id`` attributes, bare ``id=`` /
``session=`` attributes or child ``<id>`` elements, and accepts send/recv lists
inside ``<participant>`` (pre-RFC) as well as in ``<participantstreamassoc>``.

Untrusted XML is parsed only through :mod:`defusedxml` with DTDs forbidden, so
entity expansion and external entities are refused. Every failure is a
``ValueError`` with a precise message.
"""

from __future__ import annotations

import copy
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import defusedxml.ElementTree as DefusedET
from defusedxml import DefusedXmlException

from callvault.sip.metadata_model import (
    CommunicationSessionMeta,
    DataMode,
    ParticipantChanges,
    ParticipantMeta,
    RecordingMetadata,
    StreamMeta,
    apply_update,
    diff_participants,
    normalise_aor,
    union,
)

__all__ = [
    "MAX_METADATA_BYTES",
    "MAX_PARTICIPANTS",
    "MAX_STREAMS",
    "CommunicationSessionMeta",
    "DataMode",
    "ParticipantChanges",
    "ParticipantMeta",
    "RecordingMetadata",
    "StreamMeta",
    "apply_update",
    "diff_participants",
    "normalise_aor",
    "parse_recording_metadata",
]

MAX_METADATA_BYTES = 256 * 1024
MAX_PARTICIPANTS = 256
MAX_STREAMS = 256
MAX_SESSIONS = 64
_MAX_DEPTH = 48
_MAX_ID_LEN = 256

# Clocks of some SBCs are unset (Sonus sends 1970 dates): no SIPREC call
# happened before this, so earlier timestamps mean "unknown".
_EARLIEST_CREDIBLE = datetime(2000, 1, 1, tzinfo=UTC)

_ROOT_NAMES = frozenset({"recording", "recording_metadata"})
_ENTITY_NAMES = frozenset(
    "datamode group session participant stream sessionrecordingassoc participantsessionassoc"
    " participantstreamassoc".split()
)
_KNOWN_CHILDREN = frozenset(
    "id nameid name aor send recv label mode content-type associate-time disassociate-time start-time"
    " stop-time sipsessionid group-ref callid call-id sipcallid participant_id stream_id session_id".split()
)
_CALL_ID_NAMES = frozenset({"callid", "call-id", "sipcallid"})
_ROLE_NAMES = frozenset(
    {"role", "participantrole", "participant-role", "partyrole", "party-role", "participanttype"}
)
_EXTERNAL_ID_NAMES = {
    "ciscoguid": "cisco_guid",
    "cisco-guid": "cisco_guid",
    "x-cisco-guid": "cisco_guid",
    "callguid": "cisco_guid",
    "ucid": "ucid",
    "x-ucid": "ucid",
    "avaya-ucid": "ucid",
    "exttrackingid": "broadworks_tracking_id",
    "ext-tracking-id": "broadworks_tracking_id",
    "trackingid": "broadworks_tracking_id",
    "gcid": "sonus_gcid",
    # AudioCodes copies the UCID of an Avaya leg and the Genesys call UUID into its own elements.
    "avayaucid": "ucid",
    "genesysuuid": "genesys_uuid",
    "callid": "vendor_call_id",
    "call-id": "vendor_call_id",
}
# Avaya SBCE uses the UCID, in hex, as the communication session id; other
# vendors use base64, which is never pure upper-case hex at these lengths.
_UCID_SESSION_RE = re.compile(r"^[0-9A-F]{16,32}$")
# <sipSessionID> should hold an RFC 7989 Session-ID (32 hex digits, maybe ";remote=" another
# 32); FreeSWITCH and OpenSIPS put the recorded leg's SIP Call-ID there instead.
_RFC7989_SESSION_ID_RE = re.compile(r"^[0-9a-f]{32}(?:\s*;\s*remote=[0-9a-f]{32})?$", re.IGNORECASE)


def _local(tag: object) -> str:
    if not isinstance(tag, str):
        return ""
    return tag.rpartition("}")[2].lower()


def _attrs(elem: ET.Element) -> dict[str, str]:
    return {_local(name): value.strip() for name, value in elem.attrib.items()}


def _text(elem: ET.Element | None) -> str:
    if elem is None or elem.text is None:
        return ""
    return " ".join(elem.text.split())


def _children(elem: ET.Element, *names: str) -> Iterator[ET.Element]:
    for child in elem:
        if _local(child.tag) in names:
            yield child


def _first_text(elem: ET.Element, *names: str) -> str:
    for child in _children(elem, *names):
        value = _text(child)
        if value:
            return value
    return ""


def _check_id(value: str, what: str) -> str:
    if len(value) > _MAX_ID_LEN:
        raise ValueError(f"{what} is longer than {_MAX_ID_LEN} characters")
    return value


def _ref(elem: ET.Element, kind: str) -> str | None:
    """A reference to a ``kind`` (participant, session, stream) held by ``elem``."""
    attrs = _attrs(elem)
    for key in (f"{kind}_id", f"{kind}id", kind):
        if attrs.get(key):
            return _check_id(attrs[key], f"{kind} reference")
    value = _first_text(elem, f"{kind}_id", f"{kind}id", kind)
    return _check_id(value, f"{kind} reference") if value else None


def _own_id(elem: ET.Element, kind: str) -> str:
    attrs = _attrs(elem)
    keys = [f"{kind}_id", f"{kind}id", "id"]
    if kind == "session":
        keys.append("session")
    for key in keys:
        if attrs.get(key):
            return _check_id(attrs[key], f"<{kind}> id")
    value = _first_text(elem, "id", f"{kind}_id")
    if not value:
        raise ValueError(f"<{_local(elem.tag)}> element has no {kind}_id")
    return _check_id(value, f"<{kind}> id")


def _parse_time(text: str) -> datetime | None:
    """ISO 8601 with or without zone, ``Z`` or ``+0000``, any fraction; unknown → None."""
    text = text.strip()
    if not text or len(text) > 64:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return None
    # A time without zone is taken as UTC: that is what the SRCs seen in the
    # field mean by it, and a naive datetime cannot be compared with the rest.
    value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return value if value >= _EARLIEST_CREDIBLE else None


def _time_of(elem: ET.Element, name: str) -> datetime | None:
    return _parse_time(_first_text(elem, name))


def _stream_ref_values(elem: ET.Element, name: str) -> list[str]:
    values: list[str] = []
    for child in _children(elem, name):
        value = _text(child) or _first_text(child, "id", "stream_id")
        if not value:
            attrs = _attrs(child)
            value = attrs.get("stream_id") or attrs.get("id") or ""
        if value:
            values.append(_check_id(value, f"<{name}> stream id"))
    return values


def _serialise(elem: ET.Element) -> str:
    detached = copy.copy(elem)
    detached.tail = None
    return ET.tostring(detached, encoding="unicode")


def _unknown_children(elem: ET.Element, known: Iterable[str]) -> list[str]:
    known_set = set(known)
    return [_serialise(child) for child in elem if _local(child.tag) not in known_set]


def _check_depth(root: ET.Element) -> None:
    stack: list[tuple[ET.Element, int]] = [(root, 1)]
    while stack:
        elem, depth = stack.pop()
        if depth > _MAX_DEPTH:
            raise ValueError(f"recording metadata nests elements deeper than {_MAX_DEPTH} levels")
        stack.extend((child, depth + 1) for child in elem)


def _parse_xml(data: bytes) -> ET.Element:
    try:
        root = DefusedET.fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise ValueError(f"recording metadata refused: {type(exc).__name__} ({exc})") from None
    except ET.ParseError as exc:
        raise ValueError(f"recording metadata is not well-formed XML: {exc}") from None
    except (LookupError, UnicodeError, ValueError) as exc:
        raise ValueError(f"recording metadata cannot be decoded: {exc}") from None
    if not isinstance(root, ET.Element):
        raise ValueError("recording metadata has no root element")
    return root


@dataclass
class _Session:
    session_id: str
    call_ids: list[str] = field(default_factory=list)
    sip_session_ids: list[str] = field(default_factory=list)
    group_ref: str | None = None
    start_time: datetime | None = None
    stop_time: datetime | None = None
    extensions: list[str] = field(default_factory=list)


@dataclass
class _Participant:
    participant_id: str
    aor_raw: str | None = None
    display_name: str | None = None
    send: list[str] = field(default_factory=list)
    recv: list[str] = field(default_factory=list)
    associate_time: datetime | None = None
    disassociate_time: datetime | None = None
    role_hint: str | None = None
    session_ids: list[str] = field(default_factory=list)
    extensions: list[str] = field(default_factory=list)
    has_streams: bool = False


class _Builder:
    """Collects the entities of one metadata document, keyed by id, in document order."""

    def __init__(self, max_participants: int, max_streams: int) -> None:
        self.max_participants = max_participants
        self.max_streams = max_streams
        self.sessions: dict[str, _Session] = {}
        self.participants: dict[str, _Participant] = {}
        self.streams: dict[str, StreamMeta] = {}
        self.group_ids: list[str] = []
        self.group_call_ids: dict[str, list[str]] = {}
        self.extensions: list[str] = []

    def session(self, session_id: str) -> _Session:
        if session_id not in self.sessions:
            if len(self.sessions) >= MAX_SESSIONS:
                raise ValueError(f"recording metadata has more than {MAX_SESSIONS} communication sessions")
            self.sessions[session_id] = _Session(session_id)
        return self.sessions[session_id]

    def participant(self, participant_id: str) -> _Participant:
        if participant_id not in self.participants:
            if len(self.participants) >= self.max_participants:
                raise ValueError(f"recording metadata has more than {self.max_participants} participants")
            self.participants[participant_id] = _Participant(participant_id)
        return self.participants[participant_id]

    def add_group(self, elem: ET.Element) -> None:
        group_id = _own_id(elem, "group")
        if group_id not in self.group_ids:
            self.group_ids.append(group_id)
        for data in elem.iter():
            if _local(data.tag) in _CALL_ID_NAMES and _text(data):
                self.group_call_ids.setdefault(group_id, []).append(_text(data))
        self.extensions.extend(_unknown_children(elem, _KNOWN_CHILDREN))

    def add_session(self, elem: ET.Element) -> None:
        session = self.session(_own_id(elem, "session"))
        session_ids = [_text(c) for c in _children(elem, "sipsessionid") if _text(c)]
        session.sip_session_ids = union(session.sip_session_ids, session_ids)
        call_ids = [_text(c) for c in _children(elem, *_CALL_ID_NAMES) if _text(c)]
        call_ids += [s for s in session_ids if not _RFC7989_SESSION_ID_RE.match(s)]
        session.call_ids = union(session.call_ids, call_ids)
        session.group_ref = _first_text(elem, "group-ref") or session.group_ref
        # Pre-RFC SRCs (Oracle) only give the association time of the session.
        session.start_time = (
            _time_of(elem, "start-time") or _time_of(elem, "associate-time") or session.start_time
        )
        session.stop_time = _time_of(elem, "stop-time") or session.stop_time
        unknown = _unknown_children(elem, _KNOWN_CHILDREN | _ENTITY_NAMES)
        session.extensions.extend(unknown)
        self.extensions.extend(unknown)

    def add_participant(self, elem: ET.Element) -> None:
        participant = self.participant(_own_id(elem, "participant"))
        attrs = _attrs(elem)
        name_ids = list(_children(elem, "nameid"))
        aor = next((_attrs(n).get("aor", "") for n in name_ids if _attrs(n).get("aor")), "")
        aor = aor or _first_text(elem, "aor") or attrs.get("aor", "")
        if aor:
            participant.aor_raw = aor
        name = next((_first_text(n, "name") for n in name_ids if _first_text(n, "name")), "")
        name = name or _first_text(elem, "name") or attrs.get("name", "").strip()
        if name:
            participant.display_name = name
        session_ref = _ref(elem, "session")
        if session_ref:
            participant.session_ids = union(participant.session_ids, [session_ref])
        self._add_streams(participant, elem)
        participant.associate_time = _time_of(elem, "associate-time") or participant.associate_time
        participant.disassociate_time = _time_of(elem, "disassociate-time") or participant.disassociate_time
        participant.role_hint = _role_hint(elem) or participant.role_hint
        unknown = _unknown_children(elem, _KNOWN_CHILDREN)
        participant.extensions.extend(unknown)
        self.extensions.extend(unknown)

    def _add_streams(self, participant: _Participant, elem: ET.Element) -> None:
        send = _stream_ref_values(elem, "send")
        recv = _stream_ref_values(elem, "recv")
        if send or recv or _local(elem.tag) == "participantstreamassoc":
            participant.has_streams = True
            participant.send = union(participant.send, send)
            participant.recv = union(participant.recv, recv)

    def add_stream(self, elem: ET.Element) -> None:
        stream_id = _own_id(elem, "stream")
        if stream_id not in self.streams and len(self.streams) >= self.max_streams:
            raise ValueError(f"recording metadata has more than {self.max_streams} streams")
        label = _first_text(elem, "label") or _attrs(elem).get("label", "")
        unknown = _unknown_children(elem, _KNOWN_CHILDREN)
        self.extensions.extend(unknown)
        self.streams[stream_id] = StreamMeta(
            stream_id=stream_id,
            session_id=_ref(elem, "session"),
            label=label,
            associate_time=_time_of(elem, "associate-time"),
            disassociate_time=_time_of(elem, "disassociate-time"),
            extensions=unknown,
        )

    def add_session_recording_assoc(self, elem: ET.Element) -> None:
        session_ref = _ref(elem, "session")
        if session_ref is None:
            raise ValueError("<sessionrecordingassoc> names no session")
        session = self.session(session_ref)
        call_id = _attrs(elem).get("callid") or _attrs(elem).get("call-id")
        if call_id:
            session.call_ids = union(session.call_ids, [call_id])
        session.start_time = session.start_time or _time_of(elem, "associate-time")
        session.stop_time = session.stop_time or _time_of(elem, "disassociate-time")

    def add_participant_session_assoc(self, elem: ET.Element) -> None:
        participant_ref = _ref(elem, "participant")
        if participant_ref is None:
            raise ValueError("<participantsessionassoc> names no participant")
        participant = self.participant(participant_ref)
        session_ref = _ref(elem, "session")
        if session_ref:
            participant.session_ids = union(participant.session_ids, [session_ref])
        participant.associate_time = _time_of(elem, "associate-time") or participant.associate_time
        participant.disassociate_time = _time_of(elem, "disassociate-time") or participant.disassociate_time

    def add_participant_stream_assoc(self, elem: ET.Element) -> None:
        participant_ref = _ref(elem, "participant")
        if participant_ref is None:
            raise ValueError("<participantstreamassoc> names no participant")
        self._add_streams(self.participant(participant_ref), elem)

    def add(self, name: str, elem: ET.Element) -> None:
        handlers = {
            "group": self.add_group,
            "session": self.add_session,
            "participant": self.add_participant,
            "stream": self.add_stream,
            "sessionrecordingassoc": self.add_session_recording_assoc,
            "participantsessionassoc": self.add_participant_session_assoc,
            "participantstreamassoc": self.add_participant_stream_assoc,
        }
        handler = handlers.get(name)
        if handler is not None:
            handler(elem)
        elif name != "datamode":
            self.extensions.append(_serialise(elem))


def _role_hint(participant: ET.Element) -> str | None:
    for elem in participant.iter():
        name = _local(elem.tag)
        value = _text(elem).lower()
        if name == "callingparty" and value in ("true", "false"):
            return "calling" if value == "true" else "called"
        if name in _ROLE_NAMES and value:
            return value[:64]
    return None


def _external_ids(root: ET.Element, sessions: Iterable[_Session]) -> dict[str, str]:
    found: dict[str, str] = {}
    for elem in root.iter():
        key = _EXTERNAL_ID_NAMES.get(_local(elem.tag))
        if key is None and _local(elem.tag).startswith("ucid"):
            key = "ucid"
        value = _text(elem)
        if key is not None and value and len(value) <= _MAX_ID_LEN:
            found.setdefault(key, value)
        for attr_name, attr_value in _attrs(elem).items():
            attr_key = _EXTERNAL_ID_NAMES.get(attr_name)
            if attr_key in ("cisco_guid", "ucid", "broadworks_tracking_id") and attr_value:
                found.setdefault(attr_key, attr_value[:_MAX_ID_LEN])
    if "ucid" not in found:
        for session in sessions:
            if _UCID_SESSION_RE.match(session.session_id):
                found["ucid"] = session.session_id
                break
    return found


def _call_party_aors(root: ET.Element) -> dict[str, str]:
    """Sonus/Ribbon ``callData`` carries From/To: map their AORs to calling/called."""
    roles: dict[str, str] = {}
    for elem in root.iter():
        name = _local(elem.tag)
        if name in ("fromhdr", "tohdr") and _text(elem):
            aor = normalise_aor(_text(elem))
            if aor:
                roles.setdefault(aor, "calling" if name == "fromhdr" else "called")
    return roles


def _entity_elements(root: ET.Element) -> Iterator[tuple[str, ET.Element]]:
    for child in root:
        name = _local(child.tag)
        yield name, child
        if name == "session":
            # Non-conformant SRCs nest participants and streams inside <session>.
            for nested in child:
                nested_name = _local(nested.tag)
                if nested_name in _ENTITY_NAMES - {"session", "datamode", "group"}:
                    yield nested_name, nested


def parse_recording_metadata(
    xml: bytes | str,
    *,
    max_bytes: int = MAX_METADATA_BYTES,
    max_participants: int = MAX_PARTICIPANTS,
    max_streams: int = MAX_STREAMS,
) -> RecordingMetadata:
    """Parse an ``application/rs-metadata+xml`` document (any of the three namespaces)."""
    data = xml.encode("utf-8") if isinstance(xml, str) else bytes(xml)
    if len(data) > max_bytes:
        raise ValueError(f"recording metadata of {len(data)} bytes exceeds the limit of {max_bytes}")
    if not data.strip():
        raise ValueError("recording metadata is empty")
    root = _parse_xml(data)
    root_name = _local(root.tag)
    if root_name not in _ROOT_NAMES:
        raise ValueError(f"root element <{root_name}> is not <recording> metadata")
    _check_depth(root)
    stray = [t for t in [root.text, *(c.tail for c in root)] if t and t.strip()]
    if stray:
        # The BroadWorks capture with its markup stripped looks exactly like this.
        raise ValueError(f"<{root_name}> contains bare text {stray[0].strip()[:40]!r}: markup missing")

    mode_text = _first_text(root, "datamode").lower()
    if mode_text not in ("", "complete", "partial"):
        raise ValueError(f"unknown datamode {mode_text[:40]!r}")
    data_mode: DataMode = "partial" if mode_text == "partial" else "complete"

    builder = _Builder(max_participants, max_streams)
    for name, elem in _entity_elements(root):
        builder.add(name, elem)
    root_session = _attrs(root).get("session")
    if root_session and not builder.sessions:
        builder.session(_check_id(root_session, "recording session attribute"))
    if data_mode == "complete" and not (builder.sessions or builder.participants or builder.streams):
        raise ValueError("complete recording metadata describes no session, participant or stream")

    for session in builder.sessions.values():
        if session.group_ref in builder.group_call_ids:
            session.call_ids = union(session.call_ids, builder.group_call_ids[session.group_ref])
    party_roles = _call_party_aors(root)
    participants: list[ParticipantMeta] = []
    for p in builder.participants.values():
        aor = normalise_aor(p.aor_raw) if p.aor_raw else None
        participants.append(
            ParticipantMeta(
                participant_id=p.participant_id,
                aor=aor,
                aor_raw=p.aor_raw,
                display_name=p.display_name,
                send_stream_ids=p.send,
                recv_stream_ids=p.recv,
                associate_time=p.associate_time,
                disassociate_time=p.disassociate_time,
                role_hint=p.role_hint or (party_roles.get(aor) if aor else None),
                session_ids=p.session_ids,
                extensions=p.extensions,
                has_stream_association=p.has_streams,
            )
        )
    return RecordingMetadata(
        data_mode=data_mode,
        sessions=[
            CommunicationSessionMeta(
                session_id=s.session_id,
                sip_call_ids=s.call_ids,
                sip_session_ids=s.sip_session_ids,
                group_ref=s.group_ref,
                start_time=s.start_time,
                stop_time=s.stop_time,
                extensions=s.extensions,
            )
            for s in builder.sessions.values()
        ],
        participants=participants,
        streams=list(builder.streams.values()),
        group_ids=builder.group_ids,
        extensions=builder.extensions,
        external_ids=_external_ids(root, builder.sessions.values()),
    )
