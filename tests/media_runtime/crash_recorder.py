"""A recorder process for the crash test: opens one session, prints its ports, records until killed."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from callvault.media.codec_spec import CodecSpec
from callvault.runtime.media.engine import MediaEngine
from callvault.services.call_record import CallRecord
from callvault.services.context import open_context
from callvault.settings import load_settings


async def main(data_dir: str, ports: str, database_url: str) -> None:
    settings = load_settings(
        env={}, data_dir=data_dir, rtp_ports=ports, sip_host="127.0.0.1", database_url=database_url
    )
    ctx = open_context(settings)
    engine = MediaEngine(settings, ctx.recordings, ctx.directory)
    await engine.start()
    # Begun after start: recovery at start flags what was unfinished *before* it.
    recording_id = ctx.recordings.begin(CallRecord(started_at=datetime.now(UTC), source="siprec"))
    session = engine.open_session(recording_id, time.time())
    pcmu = CodecSpec(0, "PCMU", 8000)
    agent = session.add_stream("agent", [pcmu], 0, "sip:1001@pbx", None)
    customer = session.add_stream("customer", [pcmu], 1, None, None)
    print(json.dumps({"recording_id": recording_id, "agent": agent, "customer": customer}), flush=True)
    await asyncio.Event().wait()  # until kill -9


if __name__ == "__main__":
    Path(sys.argv[1]).mkdir(parents=True, exist_ok=True)
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else ""))
