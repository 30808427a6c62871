"""UAS dialogs (RFC 3261 §12): identity, remote CSeq ordering, local CSeq for our requests.

The recorder never routes requests through proxies of its own, so the route
set is not kept; requests we send (BYE on RTP timeout) go to the remote
target and the transport address the dialog was created from.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from callvault.sip.message import NameAddr, SipRequest, SipResponse

DialogId = tuple[str, str, str]  # (Call-ID, local tag, remote tag)


def new_tag() -> str:
    return secrets.token_hex(6)


def new_branch() -> str:
    return "z9hG4bK" + secrets.token_hex(8)


@dataclass
class Dialog:
    call_id: str
    local_tag: str
    remote_tag: str
    local_uri: str  # our To URI from the INVITE
    remote_uri: str  # their From URI
    remote_target: str  # their Contact URI
    remote_cseq: int
    local_cseq: int = field(default_factory=lambda: secrets.randbelow(2**16) + 1)
    confirmed: bool = False

    @property
    def id(self) -> DialogId:
        return (self.call_id, self.local_tag, self.remote_tag)

    @classmethod
    def from_invite(cls, invite: SipRequest, local_tag: str) -> Dialog:
        """The dialog a 2xx to ``invite`` establishes, seen from the UAS."""
        from_addr = invite.from_addr
        contacts = invite.headers.get_all("Contact")
        target = NameAddr.parse(contacts[0]).uri if contacts else from_addr.uri
        return cls(
            call_id=invite.call_id,
            local_tag=local_tag,
            remote_tag=from_addr.tag or "",
            local_uri=invite.to_addr.uri,
            remote_uri=from_addr.uri,
            remote_target=target,
            remote_cseq=invite.cseq.number,
        )

    def accept_cseq(self, request: SipRequest) -> bool:
        """RFC 3261 §12.2.2: a lower CSeq than the last one is out of order (answer 500).

        ACK and CANCEL reuse the INVITE's number and are always accepted.
        """
        if request.method in ("ACK", "CANCEL"):
            return True
        number = request.cseq.number
        if number < self.remote_cseq:
            return False
        self.remote_cseq = number
        return True

    def refresh_target(self, request: SipRequest) -> None:
        """A re-INVITE or UPDATE may carry a new Contact (target refresh)."""
        contacts = request.headers.get_all("Contact")
        if contacts:
            self.remote_target = NameAddr.parse(contacts[0]).uri

    def make_request(self, method: str, *, via_host: str, via_port: int, transport: str) -> SipRequest:
        """A new in-dialog request from us (BYE when the recording ends on our side)."""
        self.local_cseq += 1
        request = SipRequest(method=method, uri=self.remote_target)
        request.headers.add("Via", f"SIP/2.0/{transport} {via_host}:{via_port};branch={new_branch()};rport")
        request.headers.add("Max-Forwards", "70")
        request.headers.add("From", f"<{self.local_uri}>;tag={self.local_tag}")
        request.headers.add("To", f"<{self.remote_uri}>;tag={self.remote_tag}")
        request.headers.add("Call-ID", self.call_id)
        request.headers.add("CSeq", f"{self.local_cseq} {method}")
        return request


def dialog_id_of(request: SipRequest) -> DialogId | None:
    """(Call-ID, local tag, remote tag) for an in-dialog request, None without To tag."""
    to_tag = request.to_addr.tag
    if not to_tag:
        return None
    return (request.call_id, to_tag, request.from_addr.tag or "")


def matches_response(dialog: Dialog, response: SipResponse) -> bool:
    return response.call_id == dialog.call_id and response.from_addr.tag == dialog.local_tag
