"""Server transactions (RFC 3261 §17.2, RFC 6026) on a fake clock."""

from __future__ import annotations

from callvault.sip.dialog import Dialog
from callvault.sip.message import SipRequest, make_response, parse_message
from callvault.sip.transaction import (
    T1,
    T2,
    T4,
    InviteServerTransaction,
    NonInviteServerTransaction,
    OkRetransmitter,
    TransactionTable,
    transaction_key,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def request(
    method: str = "INVITE", branch: str = "z9hG4bKabc", cseq: int = 1, to_tag: str = ""
) -> SipRequest:
    to = "<sip:srs@h>" + (f";tag={to_tag}" if to_tag else "")
    text = (
        f"{method} sip:srs@h SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.2:5060;branch={branch}\r\n"
        f"From: <sip:src@h>;tag=f1\r\nTo: {to}\r\nCall-ID: c1\r\nCSeq: {cseq} {method}\r\nContent-Length: 0\r\n\r\n"
    )
    parsed = parse_message(text.encode())
    assert isinstance(parsed, SipRequest)
    return parsed


def test_keys_match_ack_to_invite_and_keep_cancel_apart() -> None:
    assert transaction_key(request("ACK")) == transaction_key(request("INVITE"))
    assert transaction_key(request("CANCEL")) != transaction_key(request("INVITE"))
    legacy = request(branch="1234")
    assert transaction_key(legacy)[0] == "2543"


def test_invite_error_retransmitted_on_timer_g_until_ack_then_timer_i() -> None:
    clock = FakeClock()
    invite = request()
    transaction = InviteServerTransaction(invite, reliable=False, clock=clock)
    assert transaction.respond(make_response(invite, 100)) and transaction.state == "proceeding"
    # A retransmitted INVITE gets the last provisional response again.
    assert [r.status for r in transaction.receive(invite)] == [100]
    transaction.respond(make_response(invite, 486, to_tag="t"))
    assert transaction.state == "completed"
    sent_at: list[float] = []
    for _ in range(400):
        clock.now += 0.05
        if transaction.poll():
            sent_at.append(clock.now)
        if len(sent_at) == 5:
            break
    gaps = [round(b - a, 1) for a, b in zip(sent_at, sent_at[1:], strict=False)]
    assert gaps == [2 * T1, 4 * T1, min(8 * T1, T2), T2]
    assert [r.status for r in transaction.receive(invite)] == [486]
    transaction.receive(request("ACK"))
    assert transaction.state == "confirmed" and not transaction.poll()
    clock.now += T4
    transaction.poll()
    assert transaction.state == "terminated" and not transaction.ack_timed_out


def test_invite_timer_h_without_ack() -> None:
    clock = FakeClock()
    transaction = InviteServerTransaction(request(), reliable=True, clock=clock)
    transaction.respond(make_response(request(), 488, to_tag="t"))
    clock.now += 64 * T1 - 0.01
    assert not transaction.poll()  # reliable transport: no Timer G
    clock.now += 0.02
    transaction.poll()
    assert transaction.state == "terminated" and transaction.ack_timed_out


def test_2xx_moves_to_accepted_and_absorbs_retransmissions_for_timer_l() -> None:
    clock = FakeClock()
    invite = request()
    transaction = InviteServerTransaction(invite, reliable=False, clock=clock)
    transaction.respond(make_response(invite, 200, to_tag="t"))
    assert transaction.state == "accepted"
    assert [r.status for r in transaction.receive(invite)] == [200]
    clock.now += 64 * T1
    transaction.poll()
    assert transaction.state == "terminated"


def test_ok_retransmitted_by_the_core_until_ack() -> None:
    clock = FakeClock()
    ok = OkRetransmitter(make_response(request(), 200, to_tag="t"), reliable=False, clock=clock)
    times = []
    while clock.now < 1000 + 10:
        clock.now += 0.01
        if ok.poll():
            times.append(round(clock.now - 1000, 1))
    assert times[:4] == [0.5, 1.5, 3.5, 7.5]
    ok.acknowledge()
    clock.now += 1
    assert not ok.poll() and ok.next_deadline is None
    lost = OkRetransmitter(make_response(request(), 200, to_tag="t"), reliable=True, clock=clock)
    clock.now += 64 * T1
    lost.poll()
    assert lost.gave_up


def test_non_invite_resends_last_response_until_timer_j() -> None:
    clock = FakeClock()
    bye = request("BYE", cseq=2, to_tag="t")
    transaction = NonInviteServerTransaction(bye, reliable=False, clock=clock)
    transaction.respond(make_response(bye, 200))
    assert [r.status for r in transaction.receive(bye)] == [200]
    clock.now += 64 * T1
    transaction.poll()
    assert transaction.state == "terminated"


def test_table_matches_retransmissions_and_finds_cancelled_invite() -> None:
    clock = FakeClock()
    table = TransactionTable(clock)
    invite = request()
    created = table.create(invite, reliable=False)
    assert table.match(request()) is created
    assert table.find_invite(request("CANCEL")) is created
    created.respond(make_response(invite, 487, to_tag="t"))
    clock.now += 64 * T1
    table.poll()
    assert len(table) == 0 and table.match(invite) is None


def test_dialog_cseq_ordering() -> None:
    dialog = Dialog.from_invite(request(cseq=5), "local")
    assert dialog.accept_cseq(request("UPDATE", cseq=6, to_tag="local"))
    assert not dialog.accept_cseq(request("UPDATE", cseq=4, to_tag="local"))
    assert dialog.accept_cseq(request("ACK", cseq=5, to_tag="local"))
    bye = dialog.make_request("BYE", via_host="10.0.0.1", via_port=5060, transport="UDP")
    assert bye.to_addr.tag == "f1" and bye.from_addr.tag == "local" and bye.cseq.method == "BYE"
