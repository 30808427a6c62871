"""kill -9 during a call: the next start finalises the spool as an interrupted recording."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.media_runtime.conftest import archive_pcm, begin_call, wait_final
from tests.media_runtime.rtp_send import rtp_packets, send_paced, tone, tone_match
from tests.support.ports import rtp_range
from tests.support.processes import alive, descendants, wait_for

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
            rtp_range(200),
            settings.database_url,
        ],
        stdout=subprocess.PIPE,
        env=env,
    )
    try:
        assert child.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(child.stdout.readline), 180)
        ports = json.loads(line)
        # Capture thread here; render workers, their fork server and the resource tracker.
        children = descendants(child.pid)
        recording_id = ports["recording_id"]
        agent_tone, customer_tone = tone(440, SECONDS), tone(1000, SECONDS)
        schedule = [
            (i * 0.02, p, ("127.0.0.1", ports["agent"])) for i, p in enumerate(rtp_packets(agent_tone, 1))
        ]
        schedule += [
            (i * 0.02, p, ("127.0.0.1", ports["customer"]))
            for i, p in enumerate(rtp_packets(customer_tone, 2))
        ]

        def send() -> float:
            first = time.time()  # the first packet leaves now (offset 0)
            send_paced(schedule)
            return first

        lead_in = await asyncio.to_thread(send) - ports["started"]
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert child.returncode == -signal.SIGKILL
    assert children, "the recorder started no worker process"
    # Every process the killed recorder started dies with it (each one ~100-300 MB otherwise).
    try:
        await asyncio.to_thread(
            wait_for,
            lambda: not [pid for pid, started in children.items() if alive(pid, started)],
            10,
            "every process of the killed recorder to exit",
        )
    finally:
        for pid, started in children.items():
            if alive(pid, started):
                os.kill(pid, signal.SIGKILL)
    assert (settings.spool_dir / f"{recording_id}.spool").exists()

    orphan_id = begin_call(services)  # catalogued, but its spool never existed
    engine = MediaEngine(settings, services.recordings)
    await engine.start()
    recording = await wait_final(services, recording_id)
    orphan = await wait_final(services, orphan_id)
    await engine.stop()

    assert recording.status == "interrupted", recording.status
    assert orphan.status == "interrupted" and orphan.object_key is None
    pcm, rate = archive_pcm(services, recording)
    seconds = pcm.shape[1] / rate
    # The journal lags one flush period (1 s), plus the capture thread's scheduling delay on a
    # loaded host (1.978 s seen at load 15); the recording starts when the session opened.
    assert SECONDS - 1.25 <= seconds <= lead_in + SECONDS + 0.05, (seconds, lead_in)
    assert tone_match(pcm[0], agent_tone, 440) >= 0.9
    assert tone_match(pcm[1], customer_tone, 1000) >= 0.9
    assert not (settings.spool_dir / f"{recording_id}.spool").exists()
