"""What the recording server says it can do, and how it says no.

OPTIONS and every 2xx carry the same capabilities (Allow, Supported,
Accept). A request we will not serve raises :class:`Refusal` anywhere below
the router; the router answers it with the status, the refusal's headers and
a ``Warning`` carrying the reason, so an SRC's logs show why.

The checks here are the ones a new or changed recording session can fail:
unsupported ``Require`` (420), capacity, low disk or a render backlog (503,
Retry-After), a duplicate
dialog (482), a body we cannot read (415/400), a plain call sent to the
recorder or an SDP we cannot parse (488), an offer with more streams than
``max_streams_per_invite`` (488), no free RTP port (503, Retry-After).
A request from a source outside the allow-list gets 403 before any of these.
"""

from __future__ import annotations

import logging
import socket

from callvault.errors import Overloaded
from callvault.runtime.media.admission import Admission
from callvault.runtime.sip.core import RecordingCall, ServerCore
from callvault.runtime.sip.metrics import count_response
from callvault.runtime.sip.sources import SourcePolicy
from callvault.runtime.sip.transport import Peer
from callvault.sip.dialog import new_tag
from callvault.sip.message import SipRequest, make_response
from callvault.sip.sdp import SessionDescription
from callvault.sip.siprec_body import SiprecOffer, is_recording_session, parse_siprec_body
from callvault.sip.transaction import NonInviteServerTransaction, ServerTransaction

log = logging.getLogger(__name__)

SUPPORTED_OPTIONS = frozenset({"siprec", "timer"})
ALLOW = "INVITE, ACK, BYE, CANCEL, OPTIONS, UPDATE"
ACCEPT = "application/sdp, application/rs-metadata+xml, multipart/mixed"
SERVER_NAME = "callvault-srs"
# Methods RFC 3261 and its extensions define, which we deliberately do not allow (405, not 501).
KNOWN_METHODS = frozenset({"REGISTER", "PRACK", "SUBSCRIBE", "NOTIFY", "PUBLISH", "INFO", "REFER", "MESSAGE"})
RETRY_AFTER_SECONDS = 30


class Refusal(Exception):
    """A request we answer with an error status and a reason (never escapes the server)."""

    def __init__(self, status: int, reason: str, headers: list[tuple[str, str]] | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.headers = headers or []


def capabilities() -> list[tuple[str, str]]:
    return [
        ("Allow", ALLOW),
        ("Supported", "siprec, timer"),
        ("Accept", ACCEPT),
        ("Server", SERVER_NAME),
    ]


def method_refusal(method: str) -> Refusal:
    if method in KNOWN_METHODS:
        return Refusal(405, f"{method} is not used by a recording server", [("Allow", ALLOW)])
    return Refusal(501, f"{method} is not implemented", [("Allow", ALLOW)])


def check_new_session(
    request: SipRequest, calls: dict[tuple[str, str], RecordingCall], max_calls: int
) -> None:
    """Refuse an initial INVITE we cannot take whatever its body says: 420, 503, 482."""
    unsupported = request.headers.tokens("Require") - SUPPORTED_OPTIONS
    if unsupported:
        raise Refusal(420, "unsupported extension", [("Unsupported", ", ".join(sorted(unsupported)))])
    if len(calls) >= max_calls:
        raise Refusal(503, "recorder at capacity", [("Retry-After", str(RETRY_AFTER_SECONDS))])
    if (request.call_id, request.from_addr.tag or "") in calls:
        raise Refusal(482, "a recording session with this Call-ID and From tag exists")


def check_disk_reserve(low: str | None) -> None:
    """Refuse a new session while free disk space is below the reserve (503): it could not be recorded whole."""
    if low:
        # The SRC learns only that much; the figures are in the log and /healthz.
        raise Refusal(503, "recorder low on disk space", [("Retry-After", str(RETRY_AFTER_SECONDS))])


def check_admission(admission: Admission) -> None:
    """Refuse a new session while the renderer is too far behind to record it whole (503, see
    :mod:`callvault.runtime.media.admission`); Retry-After says when the backlog may have drained."""
    retry_after = admission.refuse()
    if retry_after is not None:
        raise Refusal(503, "recorder overloaded: render backlog", [("Retry-After", str(retry_after))])


def check_recording_request(request: SipRequest) -> None:
    """A body without any recording marker is a normal call sent here by mistake (488)."""
    if request.body.strip() and not is_recording_request(request):
        raise Refusal(488, "not a recording session: no rs-metadata part, no siprec option tag, no +sip.src")


def is_recording_request(request: SipRequest) -> bool:
    if is_recording_session(request.content_type or "", request.body):
        return True
    if "siprec" in request.headers.tokens("Require") | request.headers.tokens("Supported"):
        return True
    for contact in request.headers.get_all("Contact"):
        lowered = contact.lower()
        if "+sip.src" in lowered or ";src" in lowered:
            return True
    return False


def check_stream_count(streams: int, limit: int) -> None:
    """An offer with more recordable streams than ``max_streams_per_invite`` is refused whole (488).

    488, not 503: retrying the same offer will never fit, so Retry-After would
    only invite the SRC to hammer us; and not a partial answer (the first
    ``limit`` streams, the rest port 0), because the participants of the
    rejected streams would silently go unrecorded. The Warning names the limit.
    """
    if streams > limit:
        raise Refusal(
            488,
            f"offer has {streams} streams to record; this recorder takes at most {limit} per session",
        )


def reserve_ports(core: ServerCore, count: int) -> list[socket.socket]:
    """Bind the RTP ports a session needs before anything is catalogued: all of them, or 503."""
    try:
        return core.media.ports.bind_many(count)
    except Overloaded as exc:
        log.warning("refusing a recording session: %s", exc.message)
        raise Refusal(
            503, "no free RTP port: recorder at capacity", [("Retry-After", str(RETRY_AFTER_SECONDS))]
        ) from None


def release_ports(core: ServerCore, sockets: list[socket.socket]) -> None:
    for sock in sockets:
        core.media.ports.release(sock)
    sockets.clear()


def parse_body(request: SipRequest) -> SiprecOffer:
    content_type = request.content_type or ("application/sdp" if request.body.strip() else "")
    try:
        return parse_siprec_body(content_type, request.body)
    except ValueError as exc:
        raise Refusal(415 if "Content-Type" in str(exc) else 400, str(exc), [("Accept", ACCEPT)]) from None


def parse_sdp(offer: SiprecOffer) -> SessionDescription | None:
    """The offer's SDP; None when there is none (delayed offer, metadata-only update)."""
    if offer.sdp is None:
        return None
    try:
        return SessionDescription.parse(offer.sdp)
    except ValueError as exc:
        raise Refusal(488, f"SDP refused: {exc}") from None


def refuse(core: ServerCore, transaction: ServerTransaction, refusal: Refusal) -> None:
    log.info(
        "%s %s refused with %d: %s",
        transaction.request.method,
        transaction.request.call_id,
        refusal.status,
        refusal.reason,
    )
    warning = refusal.reason.replace('"', "'")[:200]
    headers = [*refusal.headers, ("Warning", f'399 callvault "{warning}"')]
    # An INVITE already answered (2xx sent from another task) cannot take a final response any more.
    if isinstance(transaction, NonInviteServerTransaction) or transaction.state == "proceeding":
        core.final(transaction, refusal.status, headers=headers)


def refuse_source(policy: SourcePolicy, request: SipRequest, peer: Peer) -> None:
    """403 to a request from an address outside ``CALLVAULT_SIP_ALLOWED_SOURCES`` (no transaction, no state).

    Answered statelessly: a retransmission gets another 403, and nothing about
    the source is kept but the counter (and one log line per address).
    """
    policy.refused(peer.host, request.method)
    if request.method == "ACK":
        return
    try:
        request.validate()
        response = make_response(
            request,
            403,
            to_tag=new_tag(),
            headers=[("Warning", '399 callvault "source address not allowed"')],
        )
    except ValueError:
        return  # not even answerable; nothing more is owed to a stranger
    count_response(403)
    peer.send(response.serialise())
