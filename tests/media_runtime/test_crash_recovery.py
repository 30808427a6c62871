"""kill -9 during a call: the next start finalises the spool as an interrupted recording."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.media_runtime.conftest import archive_pcm, begin_call, wait_final
from tests.media_runtime.rtp_send import rtp_packets, send_paced, tone, tone_match

from callvault.runtime.media.engine import MediaEngine
from callvault.services.context import ServiceContext

HERE = Path(__file__).parent
SECONDS = 3.0


async def test_killed_recorder_leaves_an_interrupted_recording(services: ServiceContext) -> None:
    settings = services.settings
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([str(HERE.parents[1] / "src"), os.environ.get("PYTHONPATH", "")]),
    )
    child = subprocess.Popen(  # noqa: ASYNC220 - a long-running child, not awaited output
        [
            sys.executable,
            str(HERE / "crash_recorder.py"),
            str(settings.data_dir),
            "42000-42999",
            settings.database_url,
        ],
        stdout=subprocess.PIPE,
        env=env,
    )
    try:
        assert child.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(child.stdout.readline), 60)
        ports = json.loads(line)
        recording_id = ports["recording_id"]
        agent_tone, customer_tone = tone(440, SECONDS), tone(1000, SECONDS)
        schedule = [
            (i * 0.02, p, ("127.0.0.1", ports["agent"])) for i, p in enumerate(rtp_packets(agent_tone, 1))
        ]
        schedule += [
            (i * 0.02, p, ("127.0.0.1", ports["customer"]))
            for i, p in enumerate(rtp_packets(customer_tone, 2))
        ]
        await asyncio.to_thread(send_paced, schedule)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert child.returncode == -signal.SIGKILL
    assert (settings.spool_dir / f"{recording_id}.spool").exists()

    orphan_id = begin_call(services)  # catalogued, but its spool never existed
    engine = MediaEngine(settings, services.recordings, services.directory)
    await engine.start()
    recording = await wait_final(services, recording_id)
    orphan = await wait_final(services, orphan_id)
    await engine.stop()

    assert recording.status == "interrupted", recording.status
    assert orphan.status == "interrupted" and orphan.object_key is None
    pcm, rate = archive_pcm(services, recording)
    seconds = pcm.shape[1] / rate
    assert SECONDS - 1.0 <= seconds <= SECONDS + 0.05  # the journal lags at most one second
    assert tone_match(pcm[0], agent_tone, 440) >= 0.9
    assert tone_match(pcm[1], customer_tone, 1000) >= 0.9
    assert not (settings.spool_dir / f"{recording_id}.spool").exists()
