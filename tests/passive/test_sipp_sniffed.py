"""Two real SIP peers on this machine, sipp as caller and as callee (each playing known G.711
audio with ``play_pcap_audio``), sniffed on loopback by `serve`'s composition root."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.api.conftest import auth
from tests.passive.test_import_api import RATE, decode_ogg, loose_correlation
from tests.support.audio import voice
from tests.support.people import Staff
from tests.support.ports import free_port
from tests.support.wire import ethernet, ipv4, pcap, rtp_packets, udp

SIPP = shutil.which("sipp")
SCENARIOS = Path(__file__).parent / "scenarios"
SECONDS = 3
pytestmark = pytest.mark.skipif(SIPP is None, reason="sipp (sip-tester) is not installed")


def _audio_capture(path: Path, audio: object, ssrc: int) -> None:
    """The RTP sipp plays: one G.711 packet per 20 ms (addresses are rewritten by sipp)."""
    packets = rtp_packets(audio, "PCMU", ssrc)  # type: ignore[arg-type]
    frames = [
        (1_700_000_000 + i * 0.02, ethernet(ipv4("192.0.2.1", "192.0.2.2", 17, udp(6000, 6002, p))))
        for i, p in enumerate(packets)
    ]
    path.write_bytes(pcap(frames))


def _scenario(tmp: Path, name: str, audio: Path) -> Path:
    text = (
        (SCENARIOS / name)
        .read_text()
        .replace("[field0]", str(audio))
        .replace("[field1]", str(SECONDS * 1000 + 200))
    )
    out = tmp / name
    out.write_text(text)
    return out


def test_sipp_call_sniffed_on_loopback(sniffing: tuple[httpx.Client, Staff], tmp_path: Path) -> None:
    client, staff = sniffing
    assert SIPP is not None
    net = f"127.{os.getpid() % 200 + 20}.77"
    customer_voice, agent_voice = voice(SECONDS, RATE, 210, 6), voice(SECONDS, RATE, 120, 7)
    _audio_capture(tmp_path / "customer.pcap", customer_voice, 0x0C0C0C0C)
    _audio_capture(tmp_path / "agent.pcap", agent_voice, 0x0A0A0A0A)
    uas_port = free_port()
    common = ["-m", "1", "-timeout", "30s", "-nostdin", "-trace_err"]
    callee = subprocess.Popen(
        [SIPP, "-sf", str(_scenario(tmp_path, "callee.xml", tmp_path / "agent.pcap")), "-i", f"{net}.2",
         "-mi", f"{net}.2", "-mp", "16000", "-p", str(uas_port), *common],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        caller = subprocess.run(
            [SIPP, f"{net}.2:{uas_port}", "-sf", str(_scenario(tmp_path, "caller.xml", tmp_path / "customer.pcap")),
             "-s", "1001", "-i", f"{net}.1", "-mi", f"{net}.1", "-mp", "40000", "-p", str(free_port()), *common],
            cwd=tmp_path, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        bye_done = time.monotonic()
        assert caller.returncode == 0, caller.stdout[-2000:] + caller.stderr[-2000:]
        out, _ = callee.communicate(timeout=30)
        assert callee.returncode == 0, out[-2000:]
    finally:
        if callee.poll() is None:
            callee.kill()
            callee.wait()
    token = staff.tokens["carol"]
    listing: dict[str, object] = {}
    while time.monotonic() < bye_done + 10:
        listing = client.get("/api/v1/recordings", headers=auth(token)).json()
        if listing["total"] and listing["items"][0]["status"] != "recording":  # type: ignore[index]
            break
        threading.Event().wait(0.05)  # polling the API for the condition
    assert listing.get("total") == 1, listing
    recording_id = listing["items"][0]["id"]  # type: ignore[index]
    detail = client.get(f"/api/v1/recordings/{recording_id}", headers=auth(token)).json()
    assert detail["status"] == "complete" and detail["direction"] == "inbound"
    roles = {p["number"] or p["aor"]: p["role"] for p in detail["participants"]}
    assert roles["+14155550100"] == "customer" and "agent" in roles.values(), roles
    # The call lasts from the 200 OK to the BYE: the audio plus sipp's pause margin.
    assert SECONDS - 0.1 < float(detail["duration"]) < SECONDS + 1.0, detail["duration"]
    pcm = decode_ogg(client.get(f"/api/v1/recordings/{recording_id}/audio", headers=auth(token)).content)
    slack = RATE // 2  # where the audio starts depends on how late a loaded machine delivers it
    assert loose_correlation(pcm[0], agent_voice, slack) >= 0.9
    assert loose_correlation(pcm[1], customer_voice, slack) >= 0.9
    assert loose_correlation(pcm[0], customer_voice, slack) < 0.5
