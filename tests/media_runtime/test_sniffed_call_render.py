"""A live sniffed call is rendered while it lasts, as a SIPREC call is: its BYE leaves only the tail."""

from __future__ import annotations

import time

from tests.media_runtime.conftest import archive_pcm, wait_final
from tests.support.audio import voice
from tests.support.wire import CallPlan, Party, call_frames

from callvault.runtime.media.engine import MediaEngine
from callvault.runtime.media.renderer import HOLDBACK_SECONDS
from callvault.runtime.passive.recorder import Finished, PassiveRecorder
from callvault.services.call_record import IngestSource
from callvault.services.context import ServiceContext
from callvault.wire.packets import LINKTYPE_ETHERNET

CALL_SECONDS = 40


async def test_a_long_sniffed_call_is_rendered_before_its_bye(services: ServiceContext) -> None:
    engine = MediaEngine(services.settings, services.recordings, render_step=0.2)
    await engine.start()
    sealing = []

    def finished(call: Finished) -> None:
        sealing.append(engine.seal_followed(call.recording_id, call.journal, call.ended_at, call.status))

    recorder = PassiveRecorder(
        services.recordings,
        services.directory.agent_for,
        services.keys,
        services.settings.spool_dir,
        IngestSource("capture", address="capture:test"),
        finished,
        on_started=engine.follow_journal,
    )
    # The call happened in the last minute: its packets are fed at once, BYE held back.
    plan = CallPlan(
        Party("+14155550100", "10.0.0.1", 5060, 40000, voice(CALL_SECONDS, 8000, 150, 4)),
        Party("1001", "10.0.0.2", 5062, 16000, voice(CALL_SECONDS, 8000, 220, 5)),
        start=time.time() - CALL_SECONDS - 10,
    )
    frames = call_frames(plan)
    bye_at = next(at for at, frame in frames if b"BYE sip:" in frame)
    try:
        for at, frame in frames:
            if at < bye_at:
                recorder.frame(at, LINKTYPE_ETHERNET, frame)
        recorder.tick(time.time())  # journals what is buffered, as the capture thread does each second
        (recording_id,) = recorder.recording_ids
        await engine.render_due()
        # Rendered up to the hold-back before the newest packet, with the call still open.
        assert engine.rendered_seconds(recording_id) > CALL_SECONDS - HOLDBACK_SECONDS - 2
        for at, frame in frames:
            if at >= bye_at:
                recorder.frame(at, LINKTYPE_ETHERNET, frame)
        assert len(sealing) == 1 and await sealing[0] is True
        assert engine.rendered_seconds(recording_id) == 0.0  # no longer followed
    finally:
        await engine.stop()
    recording = await wait_final(services, recording_id)
    assert recording.status == "complete"
    pcm, rate = archive_pcm(services, recording)
    assert abs(pcm.shape[1] / rate - CALL_SECONDS) < 0.5
