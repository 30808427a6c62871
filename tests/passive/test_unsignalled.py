"""A capture that starts mid-call (its SIP never seen): RTP counted, or recorded as an unsignalled
stream pair with CALLVAULT_CAPTURE_UNSIGNALLED."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from callvault.runtime.passive.pcap_import import CaptureImport, OfflineSealing, import_capture
from callvault.services.call_record import IngestSource
from callvault.services.context import ServiceContext, open_context
from tests.conftest import make_settings
from tests.support.audio import voice
from tests.support.people import ADMIN
from tests.support.wire import CallPlan, Party, call_frames, pcap


def _import(ctx: ServiceContext, data: bytes) -> CaptureImport:
    async def run() -> CaptureImport:
        with ThreadPoolExecutor(1) as renders:
            sealing = OfflineSealing(ctx, renders)
            try:
                return await import_capture(
                    ctx, data, "mid-call.pcap", IngestSource("import", user="t"), sealing.seal
                )
            finally:
                sealing.close()

    return asyncio.run(run())


@pytest.mark.parametrize("record", [False, True])
def test_rtp_without_its_sip(data_dir: Path, database_url: str, record: bool) -> None:
    audio = voice(3, 8000, 150, 9)
    plan = CallPlan(
        Party("1001", "10.0.0.1", 5060, 4000, audio), Party("2002", "10.0.0.2", 5060, 6000, audio), bye=False
    )
    mid_call = [f for f in call_frames(plan) if f[0] > plan.start + 1.5]  # after INVITE, 200 and ACK
    settings = make_settings(data_dir, database_url, capture_unsignalled=str(record).lower())
    ctx = open_context(settings)
    try:
        result = _import(ctx, pcap(mid_call))
        if not record:
            assert result.recording_ids == [] and result.unsignalled_packets == len(mid_call)
            return
        assert len(result.recording_ids) == 1 and result.sealed == 1, result
        detail = ctx.search.get(ADMIN, result.recording_ids[0])
        assert (
            "unsignalled" in detail["tags"] and detail["status"] == "interrupted"
        )  # no BYE: the capture ended
        assert abs(float(detail["duration"]) - 2.5) < 0.1, detail["duration"]  # the part captured
        received = [s["stats"]["received"] for s in detail["streams"]]
        assert sum(received) == len(mid_call) and min(received) >= len(mid_call) // 2 - 1, received
        assert result.unsignalled_packets == 1  # the first packet, which the pair was adopted on
    finally:
        ctx.close()
