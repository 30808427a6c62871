"""Transcribing sealed recordings with the real recogniser (Whisper tiny.en, CPU)."""

from __future__ import annotations

from pathlib import Path

import httpx
import numpy as np
import pytest

from callvault.asr.port import ModelUnavailable, Transcriber, TranscriberConfig
from callvault.jobs.port import JobFailed
from callvault.runtime.jobs.transcribe import transcribe_handler
from callvault.services.access import Principal
from callvault.services.context import ServiceContext
from callvault.services.importer import ImportRequest
from callvault.services.search import RecordingQuery
from callvault.services.transcription import (
    RecordingGone,
    TranscriptionService,
    shared_transcriber,
    transcriber_config,
)
from callvault.speech.transcript import Speaker
from callvault.speech.wer import word_error_rate
from tests.api.conftest import auth
from tests.support.audio import stereo_wav
from tests.support.people import Staff
from tests.support.speech_calls import spoken_call
from tests.support.vault_calls import seal_call

ADMIN = Principal.system()
# tiny.en on clean espeak speech through the archive measures 0-15 % (bench/transcription.py).
MAX_WER = 0.3


class Progress:
    def __init__(self) -> None:
        self.fractions: list[float] = []

    def __call__(self, fraction: float) -> None:
        self.fractions.append(fraction)

    def cancelled(self) -> bool:
        return False


def test_each_channel_is_transcribed_alone_and_stored_once(ctx: ServiceContext) -> None:
    call = spoken_call()
    rid = ctx.importer.import_bytes(ADMIN, call.wav(), ImportRequest())
    outcome = ctx.transcription.transcribe(rid)
    assert outcome.stored and outcome.words > 10
    transcript = ctx.transcripts.get(rid)
    assert transcript is not None and transcript.model == "tiny.en"
    agent, customer = transcript.channel("agent"), transcript.channel("customer")
    assert word_error_rate(call.agent_text, agent.text) <= MAX_WER, agent.text
    assert word_error_rate(call.customer_text, customer.text) <= MAX_WER, customer.text
    # Nothing of one side leaks into the other's words.
    assert "kettle" not in agent.text.lower() and "kettle" in customer.text.lower()
    # Word times are player positions: each word lies in (or within 0.5 s of) a line of its side.
    for channel, spans in ((agent, call.agent_spans), (customer, call.customer_spans)):
        for word in channel.words:
            assert any(start - 0.5 <= word.start <= end + 0.5 for start, end in spans), word
    # Voice activity detection: less speech decoded than the two channels' length.
    assert outcome.speech_seconds < 2 * outcome.audio_seconds * 0.8
    # A retried job writes nothing more.
    assert ctx.transcription.transcribe(rid).stored is False


def test_silence_gives_an_empty_transcript(ctx: ServiceContext) -> None:
    silent = np.zeros(16000 * 4, dtype=np.int16)
    rid = ctx.importer.import_bytes(ADMIN, stereo_wav(silent, silent, 16000), ImportRequest())
    progress = Progress()
    transcribe_handler(ctx)({"recording_id": rid}, progress)
    transcript = ctx.transcripts.get(rid)
    assert transcript is not None
    assert [channel.words for channel in transcript.channels] == [(), ()]
    assert progress.fractions[-1] == 1.0


def test_music_gives_an_empty_transcript(ctx: ServiceContext) -> None:
    t = np.arange(16000 * 6) / 16000
    notes = sum(
        np.sin(2 * np.pi * f * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 0.5 * t)) for f in (262, 330, 392)
    )
    music = (notes / 3 * 12000).astype(np.int16)
    rid = ctx.importer.import_bytes(ADMIN, stereo_wav(music, music, 16000), ImportRequest())
    ctx.transcription.transcribe(rid)
    transcript = ctx.transcripts.get(rid)
    assert transcript is not None
    assert [channel.text for channel in transcript.channels] == ["", ""]


@pytest.mark.parametrize("broken", ["missing", "corrupt"])
def test_a_broken_model_fails_the_job_with_its_reason(
    ctx: ServiceContext, tmp_path: Path, broken: str
) -> None:
    model = tmp_path / "model"
    if broken == "corrupt":
        model.mkdir()
        (model / "model.bin").write_bytes(b"not a model" * 100)
        (model / "config.json").write_text("{}")
    config = TranscriberConfig("faster-whisper", model, "cpu", 1, "en")
    service = TranscriptionService(ctx.catalog, ctx.playback, ctx.transcripts, lambda: config)
    ctx.transcription = service
    rid = ctx.importer.import_bytes(ADMIN, spoken_call().wav(), ImportRequest())
    with pytest.raises(JobFailed, match=str(model)):
        transcribe_handler(ctx)({"recording_id": rid}, Progress())
    assert not ctx.transcripts.exists(rid)


def test_a_recording_deleted_while_it_is_transcribed_gets_nothing(ctx: ServiceContext) -> None:
    real = shared_transcriber(transcriber_config(ctx.settings))
    rid = ctx.importer.import_bytes(ADMIN, spoken_call().wav(), ImportRequest())

    class DeletedMeanwhile:
        engine, model = real.engine, real.model

        def transcribe(self, audio: np.ndarray, speaker: Speaker):  # type: ignore[no-untyped-def]
            if speaker == "customer":
                ctx.deletion.delete(ADMIN, [rid], "erasure", "request 7")
            return real.transcribe(audio, speaker)

    def loader(config: TranscriberConfig) -> Transcriber:
        return DeletedMeanwhile()

    ctx.transcription = TranscriptionService(
        ctx.catalog, ctx.playback, ctx.transcripts, lambda: transcriber_config(ctx.settings), loader
    )
    with pytest.raises(JobFailed, match="deleted while it was transcribed"):
        transcribe_handler(ctx)({"recording_id": rid}, Progress())
    assert not ctx.transcripts.exists(rid)
    with pytest.raises(RecordingGone):
        ctx.transcription.transcribe(rid)


@pytest.mark.parametrize("payload", [{}, {"recording_id": 7}, {"recording_id": "x" * 37}])
def test_a_bad_payload_fails_without_retry(ctx: ServiceContext, payload: dict[str, object]) -> None:
    with pytest.raises(JobFailed, match="recording_id"):
        transcribe_handler(ctx)(payload, Progress())


def test_an_undecodable_archive_fails_without_retry(ctx: ServiceContext) -> None:
    rid = seal_call(ctx)  # sealed properly, but its "archive" is random bytes
    with pytest.raises(JobFailed, match="archive cannot be decoded"):
        transcribe_handler(ctx)({"recording_id": rid}, Progress())
    assert not ctx.transcripts.exists(rid)


def test_an_unknown_recording_fails_without_retry(ctx: ServiceContext) -> None:
    with pytest.raises(JobFailed, match="does not exist"):
        transcribe_handler(ctx)({"recording_id": "0" * 36}, Progress())


def test_missing_model_path_is_named(tmp_path: Path) -> None:
    with pytest.raises(ModelUnavailable, match="does not exist"):
        shared_transcriber(TranscriberConfig("faster-whisper", tmp_path / "none", "cpu", 1, "en"))


GERMAN = (
    "Guten Tag, ich möchte eine Rückerstattung für meinen kaputten Wasserkocher.",
    "Die Bestellung wurde vor zwei Wochen auf der Webseite aufgegeben.",
    "Können Sie mir bitte sagen, wann das Geld auf meinem Konto ist?",
)


def test_a_customer_speaking_german_is_not_recognised_as_english(
    ctx: ServiceContext, client: httpx.Client, staff: Staff
) -> None:
    english = (
        "Hello, thank you for calling, how can I help you today?",
        "I can arrange a refund for that order right away.",
        "It will be on your account within five days.",
    )
    call = spoken_call(english, GERMAN, agent_voice="en-us", customer_voice="de")
    rid = ctx.importer.import_bytes(ADMIN, call.wav(), ImportRequest(agent="alice"))
    ctx.transcription.transcribe(rid)
    transcript = ctx.transcripts.get(rid)
    assert transcript is not None
    agent, customer = transcript.channel("agent"), transcript.channel("customer")
    assert agent.unrecognised is None and word_error_rate(" ".join(english), agent.text) <= MAX_WER
    # No invented English words for the customer: none stored, the reason instead.
    assert customer.words == () and customer.unrecognised is not None
    assert customer.unrecognised.startswith("speech not recognised as English (en): "), customer.unrecognised
    # Not searchable, no sentiment or category for words nobody said.
    ctx.transcript_index.index(rid, transcript)
    carol = staff.principals["carol"]
    assert ctx.search.search(carol, RecordingQuery(text="refund", speaker="agent")).total == 1
    assert ctx.search.search(carol, RecordingQuery(text="the", speaker="customer")).total == 0
    ctx.insights.analyse(rid, transcript)
    # Visible in the API, per channel.
    body = client.get(f"/api/v1/recordings/{rid}/transcript", headers=auth(staff.tokens["carol"])).json()
    sides = {channel["speaker"]: channel for channel in body["channels"]}
    assert sides["agent"]["unrecognised"] is None
    assert sides["customer"]["unrecognised"] == customer.unrecognised
    assert sides["customer"]["segments"] == []
    detail = client.get(f"/api/v1/recordings/{rid}", headers=auth(staff.tokens["carol"])).json()
    sentiment = detail["analytics"]["sentiment"]
    assert sentiment["customer"]["score"] is None and sentiment["agent"]["score"] is not None


def test_a_call_heard_in_windows_keeps_its_words_and_times(ctx: ServiceContext) -> None:
    # Windows of 4 s instead of 5 minutes: the cuts fall between this short call's turns.
    call = spoken_call()
    rid = ctx.importer.import_bytes(ADMIN, call.wav(), ImportRequest())
    config = transcriber_config(ctx.settings)
    service = TranscriptionService(
        ctx.catalog, ctx.playback, ctx.transcripts, lambda: config, shared_transcriber, window_s=4.0
    )
    progress = Progress()
    outcome = service.transcribe(rid, progress)
    assert outcome.audio_seconds == pytest.approx(call.left.size / 16000, abs=0.1)
    assert len(progress.fractions) >= 2 and progress.fractions == sorted(progress.fractions)
    transcript = ctx.transcripts.get(rid)
    assert transcript is not None
    agent, customer = transcript.channel("agent"), transcript.channel("customer")
    assert word_error_rate(call.agent_text, agent.text) <= MAX_WER, agent.text
    assert word_error_rate(call.customer_text, customer.text) <= MAX_WER, customer.text
    for channel, spans in ((agent, call.agent_spans), (customer, call.customer_spans)):
        for word in channel.words:
            assert any(start - 0.5 <= word.start <= end + 0.5 for start, end in spans), word
