"""A packet capture of a whole call, uploaded to a running server, becomes a stereo recording.

The capture is written by tests.support.wire (independent of callvault's
parsers): SIP over UDP, G.711 both ways with known audio on each side.
"""

from __future__ import annotations

import gzip
import io

import av
import httpx
import numpy as np
import numpy.typing as npt
import pytest
import scipy.signal

from callvault.services.context import ServiceContext
from tests.api.conftest import auth
from tests.support.audio import correlation, voice
from tests.support.people import Staff
from tests.support.wire import CallPlan, Party, call_frames, pcap, pcapng

RATE = 8000
SECONDS = 6
LAG = 400  # samples


def decode_ogg(data: bytes) -> npt.NDArray[np.int16]:
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.audio[0]
        frames = [f.to_ndarray() for f in container.decode(stream)]
        rate = stream.codec_context.sample_rate
    pcm = np.concatenate(frames, axis=1)
    if pcm.dtype != np.int16:
        pcm = (np.clip(pcm, -1, 1) * 32767).astype(np.int16)
    if rate != RATE:
        pcm = np.stack(
            [scipy.signal.resample_poly(ch.astype(float), RATE, rate).astype(np.int16) for ch in pcm]
        )
    return pcm


def loose_correlation(a: npt.NDArray[np.int16], b: npt.NDArray[np.int16], max_lag: int) -> float:
    """Peak normalised cross-correlation within ±max_lag samples, by FFT (a wide search in
    tests.support.audio.correlation's per-lag loop takes minutes on a loaded machine)."""
    n = min(a.size, b.size)
    x = a[:n].astype(np.float64) - a[:n].mean()
    y = b[:n].astype(np.float64) - b[:n].mean()
    full = scipy.signal.correlate(x, y, mode="full", method="fft")
    centre = n - 1
    window = full[max(0, centre - max_lag) : centre + max_lag + 1]
    return float(np.max(window) / np.sqrt(np.dot(x, x) * np.dot(y, y)))


def customer_calls_alice(
    call_id: str = "pcap-call-1@test",
) -> tuple[CallPlan, npt.NDArray[np.int16], npt.NDArray[np.int16]]:
    """+1 415 555 0100 calls extension 1001 (alice's): the customer is the caller."""
    customer_voice, agent_voice = voice(SECONDS, RATE, 210, 2), voice(SECONDS, RATE, 120, 1)
    plan = CallPlan(
        caller=Party("+14155550100", "203.0.113.7", 5060, 40000, customer_voice),
        callee=Party("1001", "10.20.0.15", 5060, 16000, agent_voice),
        call_id=call_id,
    )
    return plan, agent_voice, customer_voice


def upload(client: httpx.Client, token: str, name: str, data: bytes) -> httpx.Response:
    return client.post(
        "/api/v1/captures",
        headers=auth(token),
        files={"file": (name, data, "application/vnd.tcpdump.pcap")},
        data={"tag": "mirrored"},
    )


def recording(
    client: httpx.Client, token: str, recording_id: str
) -> tuple[dict[str, object], npt.NDArray[np.int16]]:
    detail = client.get(f"/api/v1/recordings/{recording_id}", headers=auth(token))
    assert detail.status_code == 200, detail.text
    audio = client.get(f"/api/v1/recordings/{recording_id}/audio", headers=auth(token))
    assert audio.status_code == 200
    return detail.json(), decode_ogg(audio.content)


def test_a_captured_call_is_a_stereo_recording_agent_left_customer_right(
    client: httpx.Client, staff: Staff, ctx: ServiceContext
) -> None:
    plan, agent_voice, customer_voice = customer_calls_alice()
    response = upload(client, staff.tokens["carol"], "call.pcap", pcap(call_frames(plan)))
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["calls"] == 1 and body["sealed"] == 1, body
    assert body["error"] is None and body["damage"] == {} and body["unsignalled_packets"] == 0
    assert body["rtp_packets"] == 2 * SECONDS * 50

    detail, pcm = recording(client, staff.tokens["carol"], body["recording_ids"][0])
    assert detail["status"] == "complete"
    assert abs(float(detail["duration"]) - SECONDS) < 0.1, detail["duration"]
    assert detail["direction"] == "inbound"
    assert detail["started_at"].startswith("2025-10-09T08:53:21")  # the 200 OK's packet time
    roles = {p["aor"]: p["role"] for p in detail["participants"]}  # type: ignore[union-attr]
    assert roles == {"sip:+14155550100@203.0.113.7": "customer", "sip:1001@10.20.0.15": "agent"}
    assert "mirrored" in detail["tags"]  # type: ignore[operator]
    assert pcm.shape[0] == 2
    # The recording keeps wall-clock time from the answer; RTP starts 20 ms after it.
    assert correlation(pcm[0], agent_voice, LAG) >= 0.9
    assert correlation(pcm[1], customer_voice, LAG) >= 0.9
    assert correlation(pcm[0], customer_voice, LAG) < 0.5


def test_the_same_call_as_gzipped_pcapng_gives_the_same_recording(
    client: httpx.Client, staff: Staff, ctx: ServiceContext
) -> None:
    plan, agent_voice, customer_voice = customer_calls_alice("pcapng-call@test")
    frames = call_frames(plan)
    first = upload(client, staff.tokens["carol"], "call.pcap", pcap(frames)).json()
    plan.call_id = "pcapng-call-2@test"
    second = upload(
        client, staff.tokens["carol"], "call.pcapng.gz", gzip.compress(pcapng(call_frames(plan)))
    ).json()
    assert first["sealed"] == second["sealed"] == 1
    a_detail, a_pcm = recording(client, staff.tokens["carol"], first["recording_ids"][0])
    b_detail, b_pcm = recording(client, staff.tokens["carol"], second["recording_ids"][0])
    assert a_detail["duration"] == b_detail["duration"]
    assert a_pcm.shape == b_pcm.shape
    assert correlation(b_pcm[0], a_pcm[0]) >= 0.99 and correlation(b_pcm[1], a_pcm[1]) >= 0.99


def test_not_a_capture_is_refused_and_nothing_is_recorded(
    client: httpx.Client, staff: Staff, ctx: ServiceContext
) -> None:
    response = upload(client, staff.tokens["carol"], "notes.txt", b"hello, this is not a capture")
    assert response.status_code == 415
    assert "not a pcap or pcapng capture" in response.json()["detail"]
    listing = client.get("/api/v1/recordings", headers=auth(staff.tokens["carol"])).json()
    assert listing["total"] == 0


def test_a_team_supervisor_and_an_agent_may_not_import_captures(
    client: httpx.Client, staff: Staff, ctx: ServiceContext
) -> None:
    plan, _, _ = customer_calls_alice()
    for name in ("sam", "alice"):
        response = upload(client, staff.tokens[name], "call.pcap", pcap(call_frames(plan)))
        assert response.status_code == 403, (name, response.text)
    assert client.get("/api/v1/recordings", headers=auth(staff.tokens["carol"])).json()["total"] == 0


def _variant(name: str, plan: CallPlan) -> None:
    if name == "tcp":
        plan.transport = "TCP"
    elif name == "fragmented_invite":
        plan.padding_header_bytes, plan.fragment_invite_mtu = 3000, 1500
    elif name == "vlan":
        plan.vlan = 42
    elif name == "cooked":
        plan.cooked = True
    elif name == "srtp":
        plan.caller.srtp_key, plan.callee.srtp_key = bytes(range(30)), bytes(range(100, 130))
    elif name == "hold":
        plan.hold_at, plan.resume_after = 2.0, 1.0


@pytest.mark.parametrize("variant", ["tcp", "fragmented_invite", "vlan", "cooked", "srtp", "hold"])
def test_captured_call_variants_keep_both_voices_on_their_side(
    client: httpx.Client, staff: Staff, ctx: ServiceContext, variant: str
) -> None:
    plan, agent_voice, customer_voice = customer_calls_alice(f"{variant}@test")
    _variant(variant, plan)
    body = upload(client, staff.tokens["carol"], f"{variant}.pcap", plan.capture()).json()
    assert body["sealed"] == 1 and body["damage"] == {}, body
    detail, pcm = recording(client, staff.tokens["carol"], body["recording_ids"][0])
    assert detail["status"] == "complete"
    assert abs(float(detail["duration"]) - SECONDS) < 0.1
    assert correlation(pcm[0], agent_voice, LAG) >= 0.9
    assert correlation(pcm[1], customer_voice, LAG) >= 0.9
    if variant == "hold":
        kinds = [e["kind"] for e in detail["events"]]  # type: ignore[union-attr]
        assert kinds.count("hold") == 1 and kinds.count("resume") == 1, kinds
