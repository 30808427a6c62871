"""Disclosure detection: true- and false-positive rates through each codec, and its cost per call.

Run: ``python bench/disclosure.py [--calls 12] [--window 30] [--codecs PCMU,...] [--seed 1]``

For each codec (G.711 µ-law and A-law, G.722, G.729, Opus) it makes
``--calls`` calls with the recording announcement and ``--calls`` without,
each a stereo opening of ``--window`` seconds as the recorder's renderer
sees it:

- both channels carry conversation: espeak-ng sentences in five voices at
  varied speeds and levels, with pauses;
- a call *with* the announcement plays it, whole, in one channel (agent or
  customer, at random) at a random offset, in a pause cleared for it;
- a call *without* it plays nothing more (a third of them), another
  announcement of the same kind and length (a third), or the same words
  spoken by another voice (a third): none of these may pass;
- the announcement channel's level is changed by -20, -10, 0, +10 or +20 dB
  (+20 dB clips), and line noise (hiss and mains hum) is added to both
  channels at no noise, 20 dB or 10 dB under the announcement's level;
- each channel is encoded in 20 ms packets by an encoder independent of
  callvault (the test SRC's G.711/G.722/Opus, bcg729 for G.729) and decoded
  by callvault's payload decoders, at the rate the recorder renders.

The detector then runs as the recorder runs it: the render worker's
envelope follower over the decoded PCM, then the check's match of every
announcement in every channel (here one announcement, plus a variant with
three to show how matching grows). Printed per codec: calls, true-positive
rate, false-positive rate, the lowest score of a played announcement and the
highest of a call without it (the margin around the threshold), and the
largest error of the offset found. The cost per call is printed next to a
baseline from the same run: Opus-encoding the same seconds of stereo into
the archive, which the render worker does for every call anyway.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from tests.support.phone_line import (
    ANNOUNCEMENT,
    CODECS,
    RATE,
    SIMILAR_ANNOUNCEMENT,
    Pcm,
    conversation,
    gain,
    line_noise,
    place,
    speak,
    through,
)

from callvault.media.announcement_match import fingerprint
from callvault.media.archive import ArchiveEncoder
from callvault.media.band_envelope import EnvelopeFollower
from callvault.services.call_record import CallOpening
from callvault.services.disclosure_check import MATCH_THRESHOLD, Template, listen

LEVELS = (-20.0, -10.0, 0.0, 10.0, 20.0)
NOISE = (None, 20.0, 10.0)
ABSENT_KINDS = ("conversation", "another announcement", "same words, other voice")


@dataclass
class Call:
    codec: str
    played: bool
    kind: str
    channels: list[Pcm]  # decoded, at ``rate``
    rate: int
    offset: float | None  # where the announcement's first sound starts


@dataclass
class Outcome:
    call: Call
    score: float
    offset_found: float
    seconds_envelope: float
    seconds_match: float
    seconds_match_three: float
    seconds_archive: float


def make_call(
    codec: str, played: bool, index: int, window: float, announcement: Pcm, lead: float, seed: int
) -> Call:
    rng = np.random.default_rng(zlib.crc32(f"{seed}/{codec}/{played}/{index}".encode()))
    sides = [conversation(window, int(rng.integers(1 << 30))) for _ in range(2)]
    kind = "announcement" if played else ABSENT_KINDS[index % 3]
    sound = {
        "announcement": announcement,
        "conversation": None,
        "another announcement": speak(SIMILAR_ANNOUNCEMENT),
        "same words, other voice": speak(ANNOUNCEMENT, voice="en-gb+m3", speed=150),
    }[kind]
    level = LEVELS[int(rng.integers(len(LEVELS)))]
    noise = NOISE[int(rng.integers(len(NOISE)))]
    offset = None
    if sound is not None:
        loud = gain(sound, level)
        start = float(rng.uniform(0.0, window - loud.size / RATE - 0.5))
        side = int(rng.integers(2))
        first, last = round((start - 0.3) * RATE), round((start + 0.3) * RATE) + loud.size
        sides[side][max(0, first) : last] = 0
        sides[side] = place(window, [(0.0, sides[side]), (start, loud)])
        offset = start + lead
    if noise is not None:
        reference = gain(announcement, level)
        sides = [line_noise(s, noise, reference, seed=int(rng.integers(1 << 30))) for s in sides]
    decoded = [through(codec, s) for s in sides]
    rate = decoded[0][1]
    length = min(d[0].size for d in decoded)
    return Call(codec, played, kind, [d[0][:length] for d in decoded], rate, offset)


def detect(call: Call, templates: list[Template], window: float) -> Outcome:
    block = np.stack(call.channels)
    began = time.process_time()
    follower = EnvelopeFollower(call.rate, 2, window)
    for start in range(0, block.shape[1], call.rate * 5):  # in render-sized pieces
        follower.feed(block[:, start : start + call.rate * 5])
    opening = CallOpening(follower.envelopes(), ("agent", "customer"), window)
    enveloped = time.process_time()
    heard = listen(opening, templates[:1])
    matched = time.process_time()
    listen(opening, templates)
    matched_three = time.process_time()
    encoder = ArchiveEncoder(call.rate, 2)
    encoder.write(block)
    encoder.finish()
    archived = time.process_time()
    assert heard is not None
    return Outcome(
        call,
        heard.score,
        heard.offset_seconds,
        enveloped - began,
        matched - enveloped,
        matched_three - matched,
        archived - matched_three,
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=12, help="calls with and calls without, per codec")
    parser.add_argument("--window", type=float, default=30.0, help="seconds of each call's opening")
    parser.add_argument("--codecs", default=",".join(CODECS))
    parser.add_argument("--seed", type=int, default=1, help="another seed makes other calls")
    options = parser.parse_args()
    announcement = speak(ANNOUNCEMENT)
    made = fingerprint(announcement, RATE)
    others = [
        fingerprint(speak(s), RATE)
        for s in (SIMILAR_ANNOUNCEMENT, "Please hold, an agent will be with you shortly.")
    ]
    templates = [Template(1, "announcement", made)] + [
        Template(i + 2, f"other {i}", f) for i, f in enumerate(others)
    ]
    print(
        f"announcement: {made.duration_seconds:.2f} s of sound; window {options.window:.0f} s; "
        f"threshold {MATCH_THRESHOLD}; {options.calls} calls with and {options.calls} without per codec"
    )
    outcomes: list[Outcome] = []
    for codec in options.codecs.split(","):
        for played in (True, False):
            for index in range(options.calls):
                call = make_call(
                    codec, played, index, options.window, announcement, made.lead_seconds, options.seed
                )
                outcomes.append(detect(call, templates, options.window))
        print(f"  {codec}: done", file=sys.stderr, flush=True)
    print_table(outcomes)
    print_costs(outcomes, options.window)
    return 0


def print_table(outcomes: list[Outcome]) -> None:
    header = f"{'codec':<6} {'calls':>5} {'TPR':>7} {'FPR':>7} {'min score, played':>18} {'max score, not':>15} {'offset err':>11}"
    print(header)
    print("-" * len(header))
    for codec in dict.fromkeys(o.call.codec for o in outcomes):
        rows = [o for o in outcomes if o.call.codec == codec]
        print(_row(codec, rows))
    print("-" * len(header))
    print(_row("all", outcomes))
    worst = max((o for o in outcomes if not o.call.played), key=lambda o: o.score)
    print(
        f"highest score of a call without the announcement: {worst.score:.3f} ({worst.call.kind}, {worst.call.codec})"
    )


def _row(label: str, rows: list[Outcome]) -> str:
    played = [o for o in rows if o.call.played]
    absent = [o for o in rows if not o.call.played]
    tpr = sum(o.score >= MATCH_THRESHOLD for o in played) / max(1, len(played))
    fpr = sum(o.score >= MATCH_THRESHOLD for o in absent) / max(1, len(absent))
    errors = [
        abs(o.offset_found - o.call.offset)
        for o in played
        if o.call.offset is not None and o.score >= MATCH_THRESHOLD
    ]
    error = f"{max(errors) * 1000:.0f} ms" if errors else "-"
    return (
        f"{label:<6} {len(rows):>5} {tpr:>7.1%} {fpr:>7.1%} {min(o.score for o in played):>18.3f} "
        f"{max(o.score for o in absent):>15.3f} {error:>11}"
    )


def print_costs(outcomes: list[Outcome], window: float) -> None:
    def median_ms(values: list[float]) -> float:
        return statistics.median(values) * 1000

    for rate in sorted({o.call.rate for o in outcomes}):
        rows = [o for o in outcomes if o.call.rate == rate]
        envelope = median_ms([o.seconds_envelope for o in rows])
        match = median_ms([o.seconds_match for o in rows])
        three = median_ms([o.seconds_match_three for o in rows])
        archive = median_ms([o.seconds_archive for o in rows])
        print(
            f"cost per call, {window:.0f} s stereo at {rate // 1000} kHz (median CPU ms): envelopes {envelope:.1f} "
            f"(render worker) + match {match:.1f} (1 announcement; {three:.1f} for 3) "
            f"= {envelope + match:.1f}; baseline, Opus archive of the same audio: {archive:.1f} "
            f"({(envelope + match) / archive:.1%} of it)"
        )


if __name__ == "__main__":
    sys.exit(main())
