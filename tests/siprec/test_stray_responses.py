"""A response is an SRC's answer only if it answers that SRC's request; refusals are ACKed.

The cause of the INVITE once "answered 500" in the crash test on a loaded machine was
on the test side: the test SRC never ACKed a refusal, so the recorder retransmitted it
(RFC 3261 Timer G, for 32 s) to that SRC's address, and it took any response whose CSeq
matched as its answer, whatever its Call-ID. The next SRC given the same local port
read an earlier call's refusal as the answer to its own first INVITE. A real SRC (and
now the test SRC) matches a response to its transaction by the Via branch and Call-ID,
and ACKs every non-2xx final response to an INVITE, retransmissions included.
"""

from __future__ import annotations

import asyncio
import secrets
import socket
import threading
import time

from callvault.sip.message import SipRequest, parse_message
from tests.siprec.conftest import Recorder, as_peer
from tests.siprec.test_calls import AGENT, CUSTOMER
from tests.support.test_src import (
    CRLF,
    Response,
    Stream,
    TestSrc,
    metadata_xml,
    multipart,
    parse_response,
    sdp_offer,
)


def _stray(status: int, reason: str, cseq: str, call_id: str | None = None) -> bytes:
    """A response as an earlier recorder run would retransmit it: another call, another branch."""
    lines = [
        f"SIP/2.0 {status} {reason}",
        f"Via: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bK{secrets.token_hex(6)};rport=5999",
        f"From: <sip:src@127.0.0.1>;tag={secrets.token_hex(4)}",
        f"To: <sip:srs@127.0.0.1>;tag={secrets.token_hex(4)}",
        f"Call-ID: {call_id or f'{secrets.token_hex(8)}@earlier-run'}",
        f"CSeq: {cseq}",
        "Content-Length: 0",
    ]
    return (CRLF.join(lines) + CRLF + CRLF).encode()


def _send_to(port: int, *messages: bytes) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for message in messages:
            sock.sendto(message, ("127.0.0.1", port))


def _offer() -> tuple[str, bytes]:
    streams = [Stream("1", sender_aor=AGENT), Stream("2", sender_aor=CUSTOMER)]
    return multipart(sdp_offer(streams), metadata_xml([("YQ==", AGENT), ("cA==", CUSTOMER)], streams))


async def test_stray_responses_before_and_during_a_call_are_not_its_answers(recorder: Recorder) -> None:
    src = TestSrc("127.0.0.1", recorder.port)
    content_type, body = _offer()

    def call() -> tuple[int, int]:
        try:
            # Queued in the SRC's socket before the INVITE goes out, so read before the real answer:
            # a refusal of an earlier call, and one with this call's Call-ID but another branch.
            _send_to(
                src.local_port,
                _stray(500, "Server Internal Error", "1 INVITE"),
                _stray(503, "Service Unavailable", "1 INVITE", call_id=src.call_id),
            )
            answer = src.invite(content_type, body)
            if answer.status != 200:
                return answer.status, 0
            _send_to(src.local_port, _stray(481, "Call Does Not Exist", f"{src.cseq + 1} BYE"))
            return answer.status, src.bye().status
        finally:
            src.close()

    assert await as_peer(call) == (200, 200)
    assert sorted(r.status for r in src.strays) == [481, 500, 503]
    assert src.acks_sent == 0  # strays are not ours to ACK
    recording = await recorder.finished(await recorder.recording_for(src.call_id))
    assert recording.status == "complete"


async def test_the_recorder_s_refusal_is_acked_and_its_transaction_confirmed(recorder: Recorder) -> None:
    src = TestSrc("127.0.0.1", recorder.port)
    # Plain SDP without the SIPREC option tag or +sip.src: not a recording session, refused 488.
    invite, branch = src.request_text(
        "INVITE", body=sdp_offer([Stream("1")]).encode(), content_type="application/sdp"
    )
    invite = invite.replace(b";+sip.src", b"")

    def call() -> Response:
        try:
            src.send_raw(invite)
            return src.final_response()
        finally:
            src.close()

    refusal = await as_peer(call)
    assert refusal.status == 488
    assert src.acks_sent == 1
    # The ACK reached the recorder's INVITE transaction: it stops retransmitting the 488.
    cancel, _ = src.request_text("CANCEL", branch=branch)
    key = parse_message(cancel)
    assert isinstance(key, SipRequest)
    deadline = time.monotonic() + 5.0
    while (transaction := recorder.server.transactions.find_invite(key)) is not None:
        if transaction.state != "completed":
            break
        assert time.monotonic() < deadline, "the recorder never saw the SRC's ACK of its refusal"
        await asyncio.sleep(0.01)
    assert transaction is None or transaction.state in ("confirmed", "terminated")
    assert transaction is None or not transaction.ack_timed_out


def test_every_retransmission_of_a_refusal_is_acked_like_rfc_3261_17_1_1_3() -> None:
    """Against a bare UDP socket standing in for a recorder: a 486, retransmitted once."""
    uas = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    uas.bind(("127.0.0.1", 0))
    uas.settimeout(5.0)
    src = TestSrc("127.0.0.1", uas.getsockname()[1])
    acks: list[bytes] = []
    received: list[bytes] = []

    def recorder_standin() -> None:
        invite, where = uas.recvfrom(65535)
        received.append(invite)
        head = invite.split(b"\r\n\r\n", 1)[0].decode().split(CRLF)
        copied = [line for line in head[1:] if line.split(":")[0] in ("Via", "From", "Call-ID", "CSeq")]
        to = next(line for line in head if line.startswith("To:"))
        busy = CRLF.join(["SIP/2.0 486 Busy Here", *copied, f"{to};tag=uas1", "Content-Length: 0"])
        for _ in range(2):  # the refusal, then its retransmission (as if the first ACK was lost)
            uas.sendto((busy + CRLF + CRLF).encode(), where)
            acks.append(uas.recvfrom(65535)[0])

    standin = threading.Thread(target=recorder_standin)
    standin.start()
    try:
        answer = src.invite(*_offer())
        assert answer.status == 486
        # The retransmission comes after the answer was taken: read, it is ACKed again.
        assert src.receive(timeout=5.0).status == 486
    finally:
        standin.join(10)
        src.close()
        uas.close()
    assert len(acks) == 2, acks
    invite = parse_message(received[0])
    assert isinstance(invite, SipRequest)
    for data in acks:
        ack = parse_message(data)
        assert isinstance(ack, SipRequest) and ack.method == "ACK"
        assert ack.uri == invite.uri
        assert ack.top_via.branch == invite.top_via.branch  # same transaction as the INVITE
        assert ack.call_id == invite.call_id
        assert ack.cseq.number == invite.cseq.number and ack.cseq.method == "ACK"
        assert ack.to_addr.tag == "uas1"
        assert ack.from_addr.tag == invite.from_addr.tag
    assert parse_response(acks[0]) is None
