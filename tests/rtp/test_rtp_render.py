from __future__ import annotations

import numpy as np
import pytest
from rtp_streams import UlawDecoder, make_stream, marker_payload, value_of

from callvault.rtp.render import decoders_for, render_placements, render_stream, resample_linear
from callvault.rtp.timeline import Placement, StreamTimeline


def timeline_of(count: int, **kwargs: object) -> StreamTimeline:
    timeline = StreamTimeline(8000, {0})
    for arrival, packet in make_stream(count, **kwargs):
        timeline.add(arrival, packet)
    return timeline


def test_every_packet_lands_at_its_offset_with_one_batch_decode() -> None:
    timeline = timeline_of(50, jitter=0.01)
    decoder = UlawDecoder()
    pcm = render_stream(timeline, {0: decoder}, 8000, None, timeline.anchor_wall)
    assert len(pcm) == 50 * 160
    for i in range(50):
        assert (pcm[i * 160 : (i + 1) * 160] == value_of(i)).all()
    assert decoder.batch_calls == 1


def test_start_before_anchor_pads_and_total_truncates_or_extends() -> None:
    timeline = timeline_of(10)
    pcm = render_stream(timeline, {0: UlawDecoder()}, 8000, 1.0, timeline.anchor_wall - 0.5)
    assert len(pcm) == 8000
    assert not pcm[:4000].any()
    assert (pcm[4000:4160] == value_of(0)).all()
    assert not pcm[4000 + 1600 :].any()
    later = render_stream(timeline, {0: UlawDecoder()}, 8000, 0.1, timeline.anchor_wall + 0.04)
    assert (later[:160] == value_of(2)).all()


def test_resampling_to_output_rate_keeps_positions() -> None:
    timeline = timeline_of(20)
    pcm16 = render_stream(timeline, {0: UlawDecoder()}, 16000, None, timeline.anchor_wall)
    assert len(pcm16) == 20 * 320
    assert (pcm16[5 * 320 + 2 : 6 * 320 - 2] == value_of(5)).all()
    wide = render_stream(timeline, {0: UlawDecoder(16000)}, 8000, None, timeline.anchor_wall)
    assert len(wide) == 20 * 160
    assert (wide[7 * 160 + 1 : 8 * 160 - 1] == value_of(7)).all()


def test_missing_decoder_and_corrupt_payloads_render_silence() -> None:
    class Strict(UlawDecoder):
        def decode(self, payload: bytes) -> np.ndarray:  # type: ignore[override]
            if 4 in payload:
                raise ValueError("corrupt")
            return super().decode(payload)

    placements = [Placement(160 * i, 0, marker_payload(i)) for i in range(6)] + [
        Placement(960, 8, b"\x00" * 160)
    ]
    pcm = render_placements(placements, 10.0, 8000, {0: Strict()}, 8000, None, 10.0)
    assert (pcm[:160] == value_of(0)).all()
    assert not pcm[3 * 160 : 4 * 160].any()  # packet 3 carries code 4: rejected, the rest survive
    assert (pcm[4 * 160 : 5 * 160] == value_of(4)).all()
    assert len(pcm) == 6 * 160


def test_overlap_later_packet_overwrites_tail() -> None:
    placements = [Placement(0, 0, marker_payload(0)), Placement(100, 0, marker_payload(1))]
    pcm = render_placements(placements, 0.0, 8000, {0: UlawDecoder()}, 8000, None, 0.0)
    assert len(pcm) == 260
    assert (pcm[:100] == value_of(0)).all() and (pcm[100:] == value_of(1)).all()


def test_decoders_for_uses_the_injected_factory() -> None:
    made: list[tuple[str, int, int]] = []

    def factory(encoding: str, clock_rate: int, channels: int = 1) -> UlawDecoder:
        made.append((encoding, clock_rate, channels))
        return UlawDecoder()

    decoders = decoders_for({0: ("PCMU", 8000, 1)}, factory)
    assert isinstance(decoders[0], UlawDecoder)
    assert made == [("PCMU", 8000, 1)]


def test_resample_linear_and_argument_checks() -> None:
    ramp = np.arange(0, 800, 100, dtype=np.int16)
    up = resample_linear(ramp, 8000, 16000)
    assert len(up) == 16 and up[1] == 50 and up[2] == 100
    with pytest.raises(ValueError, match="output rate"):
        render_placements([], 0.0, 8000, {}, 0, None, 0.0)
    with pytest.raises(ValueError, match="must not be negative"):
        render_placements([], 0.0, 8000, {}, 8000, -1.0, 0.0)
