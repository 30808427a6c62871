"""A coaching clip never lets an agent hear what the redacted rendition silences.

A 30 s call with voice on both channels; its transcript (stored as the transcription job stores
it) has the customer read a card number at 11.6-13.2 s. Agents and QA evaluators (no
``transcript.original``) get the clip's span of the redacted rendition, nothing before the call
is transcribed; the supervisor and the compliance officer the original.
"""

from __future__ import annotations

import numpy as np
import pytest

from callvault.db.models import AccessEvent, Recording
from callvault.errors import Conflict
from callvault.services.access import Principal
from callvault.services.context import ServiceContext
from callvault.services.importer import ImportRequest
from callvault.services.playback import SILENCE_PAD_S
from callvault.services.redaction import RedactedAudio
from callvault.services.transcript_view import pii_spans
from callvault.speech.transcript import Transcript
from tests.qa.conftest import Api
from tests.speech.pii_helpers import channel
from tests.support.audio import read_wav, stereo_wav, voice
from tests.support.people import ADMIN

RATE = 8000
CARD_AT = 10.0  # "my card number is" from 10.0 s, the digits from 11.6 s (0.4 s a word)


def card_transcript() -> Transcript:
    return Transcript(
        (
            channel("thank you can I have the card number please", "agent", start=6.0),
            channel("my card number is 4111 1111 1111 1111 thanks", "customer", start=CARD_AT),
        ),
        "test",
        "test",
    )


@pytest.fixture
def call(ctx: ServiceContext, qa_api: Api) -> str:
    """alice's call, imported (its transcription job queued: no worker runs in these tests)."""
    wav = stereo_wav(voice(30.0, RATE, 150.0, 3), voice(30.0, RATE, 260.0, 4), RATE)
    return ctx.importer.import_bytes(ADMIN, wav, ImportRequest(agent="alice"))


def pcm(body: bytes) -> np.ndarray:
    samples, rate = read_wav(body)
    assert rate == RATE
    return samples


def test_the_agent_hears_the_card_number_silenced_in_a_clip(
    ctx: ServiceContext, qa_api: Api, call: str
) -> None:
    sam, alice, rita, carol, bob = (qa_api.as_(n) for n in ("sam", "alice", "rita", "carol", "bob"))
    share = {"teams": ["red"]}
    clip = sam(
        "POST",
        "/qa/clips",
        json={"recording_id": call, "start": 5.0, "end": 25.0, "title": "Taking a payment", "share": share},
    ).json()
    inside = sam(
        "POST",
        "/qa/clips",
        json={"recording_id": call, "start": 12.0, "end": 13.0, "title": "The digits", "share": share},
    ).json()
    audio, inside_audio = f"/qa/clips/{clip['id']}/audio", f"/qa/clips/{inside['id']}/audio"

    # Not transcribed yet: what the redacted rendition will silence is not known, so the agent
    # hears nothing; the supervisor (transcript.original over the team) hears the original.
    assert alice("GET", f"/qa/clips/{clip['id']}").json()["rendition"] == "pending"
    assert sam("GET", f"/qa/clips/{clip['id']}").json()["rendition"] == "original"
    early = alice("GET", audio)
    assert early.status_code == 409 and "transcription job: queued" in early.json()["detail"], early.text
    assert rita("GET", audio).status_code == 409
    original = pcm(sam("GET", audio).content)
    whole = pcm(carol("GET", f"/recordings/{call}/audio", params={"format": "wav"}).content)
    assert np.array_equal(original, whole[:, 5 * RATE : 25 * RATE])

    assert ctx.transcripts.store(call, card_transcript(), 8.0)
    [span] = pii_spans(card_transcript())
    assert span.speaker == "customer" and abs(span.start - 11.6) < 0.01 and abs(span.end - 13.15) < 0.01
    assert [c["rendition"] for c in alice("GET", "/qa/clips").json()["items"]] == ["redacted", "redacted"]
    heard = alice("GET", audio)
    assert heard.status_code == 200 and heard.headers["content-type"] == "audio/wav"
    redacted = pcm(heard.content)
    assert redacted.shape == original.shape == (2, 20 * RATE)
    # The silenced samples as playback computes them (the span widened by the pad), from 5 s.
    lo = int((span.start - SILENCE_PAD_S) * RATE) - 5 * RATE
    hi = int(np.ceil((span.end + SILENCE_PAD_S) * RATE)) - 5 * RATE
    assert np.abs(original[1, lo:hi]).mean() > 1000  # the digits are loud in the original
    assert not redacted[1, lo:hi].any()  # and silent for the agent
    assert np.array_equal(redacted[1, :lo], original[1, :lo])  # the rest of the customer's side
    assert np.array_equal(redacted[1, hi:], original[1, hi:])
    assert np.array_equal(redacted[0], original[0])  # and the agent's side untouched
    assert rita("GET", audio).content == heard.content  # QA evaluators: redacted too
    assert pcm(sam("GET", audio).content).tolist() == original.tolist()
    tail = qa_api.http.get(
        f"/api/v1{audio}",
        headers={"Authorization": f"Bearer {qa_api.tokens['alice']}", "Range": "bytes=40000-120000"},
    )
    assert tail.status_code == 206 and tail.content == heard.content[40000:120001]

    # A clip wholly inside the silenced span is silent on the customer's side, for the agent only.
    assert not pcm(alice("GET", inside_audio).content)[1].any()
    assert np.abs(pcm(sam("GET", inside_audio).content)[1]).mean() > 1000
    # The compliance officer's export under a policy is the original.
    exported = carol("GET", f"/qa/clips/{clip['id']}/export", params={"basis": "policy TL-3"})
    assert pcm(exported.content).tolist() == original.tolist()
    assert bob("GET", audio).status_code == 404  # another team's agent: no clip at all

    with ctx.catalog.read() as session:
        plays = {
            (e.username, e.detail)
            for e in session.query(AccessEvent).filter_by(action="clip_play", recording_id=call)
        }
    assert (
        ("alice", f"clip {clip['id']} redacted=1") in plays
        and ("sam", f"clip {clip['id']}") in plays
        and ("rita", f"clip {inside['id']}") not in plays
    )

    # A deleted recording: its clips are gone with it (410), and no new one is cut (410).
    ctx.deletion.delete(Principal.system(), [call], "retention", "test")
    gone = alice("GET", audio)
    assert gone.status_code == 410 and "destroyed" in gone.json()["detail"]
    assert sam("GET", audio).status_code == 410
    again = sam("POST", "/qa/clips", json={"recording_id": call, "start": 1, "end": 3, "title": "x"})
    assert again.status_code == 410 and "destroyed" in again.json()["detail"]


def test_a_call_never_to_be_transcribed_plays_its_original(
    ctx: ServiceContext, qa_api: Api, call: str
) -> None:
    agent = ctx.users.authenticate_token(qa_api.tokens["dana"])  # alice's teammate
    with ctx.catalog.read() as session:
        recording = session.get(Recording, call)
        assert recording is not None
    with pytest.raises(Conflict, match="transcription job: queued"):
        ctx.redacted_audio.clip_silence(agent, recording)
    # With transcription off (no job, ever) there is nothing that will be known to redact.
    untranscribed = RedactedAudio(ctx.catalog, ctx.playback, ctx.transcripts, lambda recording_id: None)
    assert untranscribed.clip_silence(agent, recording) is None
    ctx.transcripts.store(call, card_transcript(), 8.0)
    spans = untranscribed.clip_silence(agent, recording) or []
    assert [(s.channel, round(s.start, 2)) for s in spans] == [(1, 11.6)]
    assert ctx.redacted_audio.clip_silence(ADMIN, recording) is None  # admins hear originals
