"""The live calls page's packet loss: two sequence numbers per flush, against known gaps."""

from __future__ import annotations

import struct

from callvault.rtp.live_loss import LiveLoss


def _rtp(seq: int, ssrc: int = 0x1234) -> bytes:
    return struct.pack("!BBHII", 0x80, 0, seq & 0xFFFF, 160 * seq, ssrc) + b"\xff" * 160


def _flush(loss: LiveLoss, seqs: list[int], ssrc: int = 0x1234) -> None:
    loss.add(_rtp(seqs[0], ssrc), _rtp(seqs[-1], ssrc), len(seqs))


def test_a_gap_inside_a_flush_and_between_flushes_is_counted_as_lost() -> None:
    loss = LiveLoss()
    _flush(loss, [100, 101, 103, 104])  # 102 missing
    assert loss.figures() == {"received": 4, "expected": 5, "lost": 1}
    _flush(loss, [108, 109])  # 105-107 missing
    assert loss.figures() == {"received": 6, "expected": 10, "lost": 4}


def test_the_sequence_wraps_without_a_jump() -> None:
    loss = LiveLoss()
    _flush(loss, [65534, 65535])
    _flush(loss, [0, 1, 2])
    assert loss.figures() == {"received": 5, "expected": 5, "lost": 0}


def test_a_late_packet_after_the_flush_of_its_gap_repairs_the_loss() -> None:
    loss = LiveLoss()
    _flush(loss, [10, 12])
    assert loss.lost == 1
    _flush(loss, [11])  # arrives late: older than the last one seen
    assert loss.figures() == {"received": 3, "expected": 3, "lost": 0}
    _flush(loss, [13, 14])
    assert loss.figures() == {"received": 5, "expected": 5, "lost": 0}


def test_a_new_ssrc_restarts_the_sequence_without_counting_the_jump() -> None:
    loss = LiveLoss()
    _flush(loss, [100, 101])
    _flush(loss, [40000, 40001, 40002], ssrc=0x9999)
    assert loss.figures() == {"received": 5, "expected": 5, "lost": 0}
    _flush(loss, [40005], ssrc=0x9999)
    assert loss.figures() == {"received": 6, "expected": 8, "lost": 2}


def test_datagrams_that_are_not_rtp_move_only_the_received_count() -> None:
    loss = LiveLoss()
    loss.add(b"\x00" * 4, b"junk", 2)
    assert loss.figures() == {"received": 2, "expected": 2, "lost": 0}
    _flush(loss, [7, 9])
    assert loss.figures() == {"received": 4, "expected": 5, "lost": 1}
