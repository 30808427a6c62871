"""The capture fast path: a plain IPv4 UDP frame's flow read from its bytes, and RTP of known flows
journalled without the full decoder, exactly as the full decoder would have."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from callvault.crypto.keyring import LocalKeyring
from callvault.runtime.media.spool_key import journal_reader
from callvault.runtime.passive import recorder as recorder_module
from callvault.runtime.passive.recorder import Finished, PassiveRecorder
from callvault.services.call_record import IngestSource
from callvault.storage.spool import read_spool
from callvault.wire.flows import flow_ports, udp_flow
from callvault.wire.packets import LINKTYPE_ETHERNET, LINKTYPE_LINUX_SLL, Datagram, decode_frame
from tests.support.audio import voice
from tests.support.wire import CallPlan, Party, call_frames, ethernet, ipv4, ipv6, tcp, udp

AUDIO = voice(3, 8000, 150, 4)


def _plan(**options: Any) -> CallPlan:
    caller = Party("+14155550100", "10.0.0.1", 5060, 40000, AUDIO)
    callee = Party("1001", "10.0.0.2", 5062, 16000, voice(3, 8000, 220, 5))
    return CallPlan(caller, callee, **options)


@pytest.mark.parametrize("options", [{}, {"vlan": 42}, {"hold_at": 0.5}])
def test_the_flow_of_every_udp_frame_matches_the_full_decoder(options: dict[str, Any]) -> None:
    checked = 0
    for _, frame in call_frames(_plan(**options)):
        decoded = decode_frame(LINKTYPE_ETHERNET, frame)
        assert isinstance(decoded, Datagram) and decoded.protocol == 17
        flow = udp_flow(LINKTYPE_ETHERNET, frame)
        assert flow is not None
        key, start, end = flow
        assert frame[start:end] == decoded.payload
        assert flow_ports(key) == (decoded.src[1], decoded.dst[1])
        assert key[:8] == bytes(int(x) for x in decoded.src[0].split(".")) + bytes(
            int(x) for x in decoded.dst[0].split(".")
        )
        checked += 1
    assert checked > 200


def test_what_the_fast_path_leaves_to_the_full_decoder() -> None:
    datagram = udp(4000, 6000, b"\x80" + b"x" * 171)
    plain = ethernet(ipv4("10.0.0.1", "10.0.0.2", 17, datagram))
    assert udp_flow(LINKTYPE_ETHERNET, plain) is not None
    # Ethernet padding after the IP packet is not payload.
    key, start, end = udp_flow(LINKTYPE_ETHERNET, plain + b"\0" * 20) or (b"", 0, 0)
    assert end - start == 172
    leave = {
        "fragment": ethernet(ipv4("10.0.0.1", "10.0.0.2", 17, datagram, frag=0x2000)),
        "later fragment": ethernet(ipv4("10.0.0.1", "10.0.0.2", 17, datagram, frag=0x0010)),
        "IPv6": ethernet(ipv6("2001:db8::1", "2001:db8::2", 17, datagram), v6=True),
        "TCP": ethernet(ipv4("10.0.0.1", "10.0.0.2", 6, tcp(4000, 6000, 1, b"hello"))),
        "cut short": plain[:-10],
        "UDP length beyond the IP packet": plain[:38] + b"\xff\xff" + plain[40:],
        "UDP length below its header": plain[:38] + b"\x00\x04" + plain[40:],
        "runt": plain[:30],
    }
    for why, frame in leave.items():
        assert udp_flow(LINKTYPE_ETHERNET, frame) is None, why
    assert udp_flow(LINKTYPE_LINUX_SLL, plain) is None  # another link layer


class _Catalog:
    def begin(self, *_: Any) -> str:
        return str(uuid.uuid4())


def _journalled(tmp_path: Path, frames: list[tuple[float, bytes]]) -> list[dict[str, list[bytes]]]:
    """Per recording (in call order), the packets journalled for each stream label."""
    finished: list[Finished] = []
    spool = tmp_path / f"spool-{uuid.uuid4().hex[:6]}"
    spool.mkdir()
    recorder = PassiveRecorder(
        _Catalog(),  # type: ignore[arg-type]
        lambda _: None,
        LocalKeyring(tmp_path / "keyring.json"),
        spool,
        IngestSource("capture"),
        finished.append,
    )
    for at, frame in frames:
        recorder.frame(at, LINKTYPE_ETHERNET, frame)
    recorder.finish()
    result = []
    for call in finished:
        contents = read_spool(call.journal, journal_reader(call.key))
        result.append(
            {stream.label: contents.packets_of(index)[1] for index, stream in contents.streams.items()}
        )
    return result


def _nat_rewritten(frames: list[tuple[float, bytes]], sender: tuple[str, int]) -> list[tuple[float, bytes]]:
    """The RTP ``sender`` sends, as seen through a NAT: from an unknown address, to the signalled
    port of the other party at an address SDP never named (matched by port alone)."""
    out = []
    for at, frame in frames:
        decoded = decode_frame(LINKTYPE_ETHERNET, frame)
        assert isinstance(decoded, Datagram)
        if decoded.src == sender and decoded.payload[:1] == b"\x80":
            frame = ethernet(
                ipv4("10.0.0.99", "192.168.1.20", 17, udp(17000, decoded.dst[1], decoded.payload))
            )
        out.append((at, frame))
    return out


def test_the_fast_path_journals_what_the_full_decoder_would(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Call 1 (a hold re-INVITE in it) has its callee's RTP matched by the caller's port alone (NAT);
    # call 2 starts half-way through on that same port elsewhere, which makes those packets
    # ambiguous, and runs on after call 1's BYE while late copies of call 1's packets arrive:
    # every change of mapping must reach the fast path.
    first = _nat_rewritten(call_frames(_plan(hold_at=0.5)), ("10.0.0.2", 16000))
    start = first[0][0] + 2.0
    caller = Party("+14155550111", "10.0.1.1", 5060, 40000, AUDIO)
    second = call_frames(
        CallPlan(
            caller, Party("1002", "10.0.1.2", 5062, 18000, AUDIO), call_id="passive-call-2@test", start=start
        )
    )
    stray = [(first[-1][0] + 0.1, frame) for _, frame in first[-40:-20]]  # late copies after the BYE
    frames = sorted(first + stray + second, key=lambda f: f[0])
    fast = _journalled(tmp_path, frames)
    monkeypatch.setattr(recorder_module, "udp_flow", lambda *_: None)
    full = _journalled(tmp_path, frames)
    assert len(fast) == 2
    assert fast == full
    sent_by_callee = sum(1 for _, f in first if f[26:30] == bytes([10, 0, 0, 99]))
    # The scenario bites: call 2 made some of call 1's NAT-matched packets ambiguous (not recorded).
    assert 20 < len(full[0]["callee"]) < sent_by_callee - 20, (len(full[0]["callee"]), sent_by_callee)
    assert all(len(packets) > 100 for packets in full[1].values())


class _CatalogDownOnce:
    """The catalogue refuses the first call (database down), then recovers."""

    def __init__(self) -> None:
        self.calls = 0

    def begin(self, *_: Any) -> str:
        self.calls += 1
        if self.calls == 1:
            raise ConnectionRefusedError("connection to the catalogue refused")
        return str(uuid.uuid4())


def test_a_call_the_catalogue_refuses_is_counted_and_the_capture_goes_on(tmp_path: Path) -> None:
    first = call_frames(_plan())
    second = call_frames(_plan(call_id="passive-call-2@test", start=first[-1][0] + 1))
    finished: list[Finished] = []
    recorder = PassiveRecorder(
        _CatalogDownOnce(),  # type: ignore[arg-type]
        lambda _: None,
        LocalKeyring(tmp_path / "keyring.json"),
        tmp_path,
        IngestSource("capture"),
        finished.append,
    )
    for at, frame in first + second:
        recorder.frame(at, LINKTYPE_ETHERNET, frame)
    recorder.finish()
    assert recorder.counts["calls_lost"] == 1 and recorder.counts["calls"] == 1
    assert len(finished) == 1 and finished[0].status == "complete"
    contents = read_spool(finished[0].journal, journal_reader(finished[0].key))
    assert all(len(contents.packets_of(i)[1]) > 100 for i in contents.streams)
