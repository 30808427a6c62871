"""A clip's WAV is the very span of the recording's WAV rendition, however it is cut: from the
start (no seek), mid-call (decoded from a page before it), and any byte range of it."""

from __future__ import annotations

import pytest

from callvault.db.models import Recording
from callvault.services.context import ServiceContext
from callvault.services.importer import ImportRequest
from tests.support.audio import stereo_wav, voice
from tests.support.people import ADMIN

RATE = 8000


@pytest.fixture
def recording(ctx: ServiceContext) -> Recording:
    ctx.users.create_user(ADMIN, "alice", "agent", team="red")
    wav = stereo_wav(voice(40.0, RATE, 150.0, 7), voice(40.0, RATE, 260.0, 8), RATE)
    recording_id = ctx.importer.import_bytes(ADMIN, wav, ImportRequest(agent="alice"))
    with ctx.catalog.read() as session:
        found = session.get(Recording, recording_id)
        assert found is not None
        return found


def test_spans_and_ranges_match_the_whole_rendition(ctx: ServiceContext, recording: Recording) -> None:
    whole = b"".join(ctx.playback.open_audio(ADMIN, recording.id, "wav").iter_range())
    frame = 4  # stereo, 16-bit
    for start, end in ((0.0, 6.0), (0.3, 2.0), (17.25, 37.25), (33.0, 40.0)):
        clip = ctx.playback.open_span(recording, start, end)
        data = clip.read()
        first, last = round(start * RATE), round(end * RATE)
        assert clip.size == len(data) == 44 + (last - first) * frame
        assert data[44:] == whole[44 + first * frame : 44 + last * frame], (start, end)
        # Byte ranges across the header, starting and ending inside a sample frame.
        for lo, hi in ((0, 50), (45, 8003), (len(data) - 7, len(data)), (20_001, 20_001 + 70_000)):
            assert clip.read(lo, hi) == data[lo:hi], (start, end, lo, hi)
