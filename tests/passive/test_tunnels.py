"""Remote mirroring: a call whose frames arrive inside ERSPAN, GRE, IP-in-IP or VXLAN is recorded as
if it had been mirrored to the recorder's own port; broken or hostile tunnels are refused precisely."""

from __future__ import annotations

import struct
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from callvault.crypto.keyring import LocalKeyring
from callvault.runtime.media.spool_key import journal_reader
from callvault.runtime.passive.recorder import Finished, PassiveRecorder
from callvault.services.call_record import IngestSource
from callvault.storage.spool import read_spool
from callvault.wire.packets import LINKTYPE_ETHERNET, decode_frame
from tests.support.audio import voice
from tests.support.wire import CallPlan, Party, call_frames, ethernet, fragments, ipv4, udp

SENSOR, COLLECTOR = "192.0.2.10", "192.0.2.20"  # the mirroring switch and the recorder


def _gre(kind: int, body: bytes, *, sequence: bool = False) -> bytes:
    flags = 0x1000 if sequence else 0
    return struct.pack("!HH", flags, kind) + (struct.pack("!I", 7) if sequence else b"") + body


def erspan2(frame: bytes) -> bytes:
    header = struct.pack("!HHI", 0x1000 | 12, 0x0001, 0)  # version 1 (type II), VLAN 12, session 1
    return ethernet(ipv4(SENSOR, COLLECTOR, 47, _gre(0x88BE, header + frame, sequence=True)))


def erspan3(frame: bytes) -> bytes:
    header = struct.pack("!HHIHH", 0x2000, 0x0001, 123456, 0, 0x0001)  # O flag: a subheader follows
    return ethernet(ipv4(SENSOR, COLLECTOR, 47, _gre(0x22EB, header + b"\0" * 8 + frame, sequence=True)))


def gre_bridged(frame: bytes) -> bytes:
    return ethernet(ipv4(SENSOR, COLLECTOR, 47, _gre(0x6558, frame)))


def gre_ip(frame: bytes) -> bytes:
    return ethernet(ipv4(SENSOR, COLLECTOR, 47, _gre(0x0800, frame[14:])))


def ip_in_ip(frame: bytes) -> bytes:
    return ethernet(ipv4(SENSOR, COLLECTOR, 4, frame[14:]))


def vxlan(frame: bytes) -> bytes:
    header = struct.pack("!BBHI", 0x08, 0, 0, 5001 << 8)
    return ethernet(ipv4(SENSOR, COLLECTOR, 17, udp(49152, 4789, header + frame)))


def fragmented_erspan(frame: bytes) -> list[bytes]:
    """ERSPAN whose outer IP packet is cut into fragments by a small MTU on the way."""
    header = struct.pack("!HHI", 0x1000 | 12, 0x0001, 0)
    gre = _gre(0x88BE, header + frame, sequence=True)
    # wire.fragments cuts a UDP datagram; the bytes are what matter: re-label the protocol as GRE.
    return [ethernet(p[:9] + bytes([47]) + p[10:]) for p in fragments(SENSOR, COLLECTOR, gre, 200, 77)]


WRAPS: dict[str, Callable[[bytes], bytes]] = {
    "erspan-ii": erspan2,
    "erspan-iii": erspan3,
    "gre-bridged": gre_bridged,
    "gre-ip": gre_ip,
    "ip-in-ip": ip_in_ip,
    "vxlan": vxlan,
}


def _plan() -> CallPlan:
    return CallPlan(
        Party("+14155550100", "10.0.0.1", 5060, 40000, voice(3, 8000, 150, 4)),
        Party("1001", "10.0.0.2", 5062, 16000, voice(3, 8000, 220, 5)),
    )


@pytest.mark.parametrize("wrap", sorted(WRAPS))
def test_a_tunnelled_frame_decodes_as_the_frame_inside(wrap: str) -> None:
    for _, frame in call_frames(_plan())[:20]:
        assert decode_frame(LINKTYPE_ETHERNET, WRAPS[wrap](frame)) == decode_frame(LINKTYPE_ETHERNET, frame)


class _Catalog:
    def begin(self, *_: Any) -> str:
        return str(uuid.uuid4())


def _journalled(tmp_path: Path, frames: list[tuple[float, bytes]]) -> list[dict[str, list[bytes]]]:
    finished: list[Finished] = []
    spool = tmp_path / uuid.uuid4().hex[:6]
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
    assert recorder.damage() == {}
    out = []
    for call in finished:
        contents = read_spool(call.journal, journal_reader(call.key))
        out.append({s.label: contents.packets_of(i)[1] for i, s in contents.streams.items()})
    return out


@pytest.mark.parametrize("wrap", ["erspan-iii", "vxlan", "fragmented-erspan"])
def test_a_call_mirrored_through_a_tunnel_is_recorded_as_the_call_itself(tmp_path: Path, wrap: str) -> None:
    frames = call_frames(_plan())
    if wrap == "fragmented-erspan":
        wrapped = [(at, piece) for at, frame in frames for piece in fragmented_erspan(frame)]
    else:
        wrapped = [(at, WRAPS[wrap](frame)) for at, frame in frames]
    direct = _journalled(tmp_path, frames)
    through = _journalled(tmp_path, wrapped)
    assert len(direct) == 1 and through == direct
    assert all(len(packets) > 100 for packets in through[0].values())


def test_broken_and_hostile_tunnels_are_refused_by_name() -> None:
    frame = call_frames(_plan())[-1][1]
    nested = frame
    for _ in range(5):
        nested = gre_bridged(nested)
    cases = {
        "tunnels nested more than 3 deep": nested,
        "GRE header cut short": ethernet(ipv4(SENSOR, COLLECTOR, 47, b"\x00\x00")),
        "GRE header with its options needs 8 bytes": ethernet(ipv4(SENSOR, COLLECTOR, 47, b"\x10\x00\x88\xbe")),
        "ERSPAN type II header cut short": ethernet(ipv4(SENSOR, COLLECTOR, 47, _gre(0x88BE, b"\0" * 4, sequence=True))),
        "ERSPAN type III header cut short": ethernet(ipv4(SENSOR, COLLECTOR, 47, _gre(0x22EB, b"\0" * 6))),
    }  # fmt: skip
    for message, data in cases.items():
        with pytest.raises(ValueError, match=message):
            decode_frame(LINKTYPE_ETHERNET, data)
    # PPTP's enhanced GRE (version 1) carries no mirrored frames: not an error, nothing decoded.
    assert (
        decode_frame(
            LINKTYPE_ETHERNET, ethernet(ipv4(SENSOR, COLLECTOR, 47, b"\x30\x01\x88\x0b" + b"\0" * 8))
        )
        is None
    )
    # Not VXLAN although to its port (flags without a VNI): an ordinary datagram.
    plain = decode_frame(LINKTYPE_ETHERNET, ethernet(ipv4(SENSOR, COLLECTOR, 17, udp(1, 4789, b"\x80" * 20))))
    assert plain is not None and plain.dst == (COLLECTOR, 4789)
