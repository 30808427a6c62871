"""What the SRC and the keypad send about consent, including hostile input: the metadata
extension (parsed with defusedxml) and the consent digit among RFC 4733 events."""

from __future__ import annotations

import struct

import pytest

from callvault.runtime.media.digit_watch import DigitWatch, consent_event_code
from callvault.services.consent import parse_party, summary
from callvault.sip.consent_extension import consent_in

NS = "urn:callvault:params:xml:ns:consent"


@pytest.mark.parametrize(
    ("blobs", "state", "error"),
    [
        ([f'<cv:consent xmlns:cv="{NS}" state="objected"/>'], "objected", None),
        ([f'<consent xmlns="{NS}">consented</consent>'], "consented", None),
        ([f'<c:consent xmlns:c="{NS}" state=" Notified "/>'], "notified", None),
        # The last one wins (a snapshot listing the participant's history).
        (
            [f'<consent xmlns="{NS}" state="notified"/>', f'<consent xmlns="{NS}" state="objected"/>'],
            "objected",
            None,
        ),
        ([f'<consent xmlns="{NS}" state="maybe"/>'], None, "consent state must be one of"),
        ([f'<consent xmlns="{NS}" state="objected">'], None, "not well-formed"),
        (
            [f'<!DOCTYPE x [<!ENTITY a "objected">]><consent xmlns="{NS}">&a;</consent>'],
            None,
            "not well-formed XML: DTDForbidden",
        ),
        ([f'<consent xmlns="{NS}" state="objected" pad="{"x" * 5000}"/>'], None, "over 4096"),
    ],
)
def test_the_consent_extension_is_read_strictly(
    blobs: list[str], state: str | None, error: str | None
) -> None:
    mark = consent_in(blobs)
    assert mark is not None
    assert mark.state == state
    assert (mark.error is None) if error is None else (error in (mark.error or ""))


@pytest.mark.parametrize(
    "blobs",
    [
        [],
        ['<consent state="objected"/>'],  # not our namespace: another vendor's element
        ['<ucid xmlns="urn:x-avaya">00001</ucid>'],
        [f'<other xmlns="{NS}" state="objected"/>'],
    ],
)
def test_other_extensions_say_nothing_about_consent(blobs: list[str]) -> None:
    assert consent_in(blobs) is None


def _event(code: int, stamp: int, end: bool = False, extension: bool = False, seq: int = 1) -> bytes:
    first = 0x90 if extension else 0x80
    header = struct.pack("!BBHII", first, 101, seq, stamp, 0x1234)
    if extension:
        header += struct.pack("!HH", 0xBEDE, 1) + b"\x00" * 4
    return header + struct.pack("!BBH", code, (0x80 if end else 0) | 10, 160)


def _audio(seq: int) -> bytes:
    return struct.pack("!BBHII", 0x80, 0, seq, 16000 + 160 * seq, 0x1234) + b"\xff" * 160


def test_one_press_of_the_consent_digit_is_noted_once_and_no_other_key() -> None:
    watch = DigitWatch(bytes([101]), pauses=False, consent_event=consent_event_code("9"))
    # Key 1 (not the consent digit), then 9 repeated in five packets and its end packets.
    packets = [_event(1, 1000, seq=1), _event(1, 1000, True, seq=2), _audio(3)]
    packets += [_event(9, 2000, seq=4 + i) for i in range(5)] + [_event(9, 2000, True, seq=9)]
    arrivals = [0.02 * i for i in range(len(packets))]
    assert watch.scan(arrivals, packets) is None  # not pausing: no activity span
    assert watch.pressed == arrivals[3]
    watch.pressed = None
    # The end packets retransmitted in the next flush: the same event, no second press.
    watch.scan([1.0, 1.02], [_event(9, 2000, True, seq=10), _event(9, 2000, True, seq=11)])
    assert watch.pressed is None
    # A new press (a new event timestamp), behind a header extension.
    watch.scan([2.0], [_event(9, 3000, extension=True, seq=12)])
    assert watch.pressed == 2.0


def test_runts_and_truncated_events_are_skipped() -> None:
    watch = DigitWatch(bytes([101]), pauses=False, consent_event=9)
    runt = _event(9, 5000)[:14]  # a header and half an event payload
    extension_cut = _event(9, 5000, extension=True)[:18]  # the extension says more than there is
    watch.scan([0.0, 0.02, 0.04], [b"\x80\x65", runt, extension_cut])
    assert watch.pressed is None
    pausing = DigitWatch(bytes([101]), consent_event=9)
    span = pausing.scan([0.0], [_event(9, 6000)])
    assert span is not None and pausing.pressed == 0.0  # a PCI watch pauses and notes the press too


def test_keypad_event_codes() -> None:
    assert [consent_event_code(d) for d in ("0", "9", "*", "#", "", "A")] == [0, 9, 10, 11, -1, -1]


def test_a_calls_consent_sums_up_its_parties() -> None:
    assert summary([]) == "unknown"
    assert summary(["consented", "consented"]) == "consented"
    assert summary(["consented", "notified"]) == "notified"
    assert summary(["consented", "unknown"]) == "unknown"
    assert summary(["consented", "objected", "notified"]) == "objected"
    assert parse_party(None) == "customer" and parse_party(" Agent ") == "agent"
    assert parse_party("+14155550100") == "+14155550100"
