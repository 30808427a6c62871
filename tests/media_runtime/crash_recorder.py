"""A recorder process for the crash test: `callvault serve`'s composition root on uvloop, with
one media session open; prints its ports and records until killed."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import uvloop

from callvault.cli.serve import running_server
from callvault.media.codec_spec import CodecSpec
from callvault.services.call_record import CallRecord
from callvault.settings import load_settings


async def main(data_dir: str, ports: str, database_url: str) -> None:
    settings = load_settings(
        env={},
        data_dir=data_dir,
        rtp_ports=ports,
        sip_host="127.0.0.1",
        sip_port="0",
        http_host="127.0.0.1",
        http_port="0",
        database_url=database_url,
        job_workers="0",  # no transcription worker competing with the call's audio (tests/asr has it)
    )
    async with running_server(settings, first_admin=False) as server:
        # Begun after start: recovery at start flags what was unfinished *before* it.
        recording = CallRecord(started_at=datetime.now(UTC), source="siprec")
        recording_id = await asyncio.to_thread(server.ctx.recordings.begin, recording)
        started = time.time()
        session = server.media.open_session(recording_id, started)
        pcmu = CodecSpec(0, "PCMU", 8000)
        agent = server.media.add_stream(session.recording_id, "agent", [pcmu], 0, "sip:1001@pbx", None)
        customer = server.media.add_stream(session.recording_id, "customer", [pcmu], 1, None, None)
        print(
            json.dumps(
                {"recording_id": recording_id, "agent": agent, "customer": customer, "started": started}
            ),
            flush=True,
        )
        await asyncio.Event().wait()  # until kill -9


if __name__ == "__main__":
    Path(sys.argv[1]).mkdir(parents=True, exist_ok=True)
    uvloop.run(main(sys.argv[1], sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else ""))
