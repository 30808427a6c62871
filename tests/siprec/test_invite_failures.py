"""An INVITE the recorder fails to answer is a lost call: said so, counted, and never silent.

The INVITE once "answered 500" in the crash test on a loaded machine was not the
recorder's doing: the test SRC took a retransmitted refusal meant for an earlier SRC
on the same local port as its answer (see test_stray_responses.py). What stays true is
that an error while answering loses the call: it is logged with its traceback, answered
500 and counted in ``callvault_sip_calls_lost_total``. A catalogue that refuses a
connection for a moment (a PostgreSQL restart or failover, max_connections) is tried
once more, and a lasting refusal answered 503 with Retry-After, so the SRC retries or
fails over to another recorder instead of giving the call up.
"""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client import REGISTRY

from callvault.errors import CatalogUnavailable
from tests.siprec.conftest import Recorder, as_peer
from tests.siprec.test_calls import AGENT, CUSTOMER
from tests.support.test_src import Response, Stream, TestSrc, metadata_xml, multipart, sdp_offer


def _invite(recorder: Recorder) -> Response:
    streams = [Stream("1", sender_aor=AGENT), Stream("2", sender_aor=CUSTOMER)]
    content_type, body = multipart(
        sdp_offer(streams), metadata_xml([("YQ==", AGENT), ("cA==", CUSTOMER)], streams)
    )
    src = TestSrc("127.0.0.1", recorder.port)
    try:
        answer = src.invite(content_type, body)
        if answer.status == 200:
            assert src.bye().status == 200
        return answer
    finally:
        src.close()


def _refusing(recorder: Recorder, monkeypatch: pytest.MonkeyPatch, times: int) -> list[int]:
    """Make the catalogue refuse ``times`` connections when a recording begins; returns the call log."""
    begin = recorder.ctx.recordings.begin
    calls: list[int] = []

    def flaky(*args: Any, **kwargs: Any) -> str:
        calls.append(1)
        if len(calls) <= times:
            # What the catalog makes of psycopg's "sorry, too many clients already".
            raise CatalogUnavailable("the catalog database is unreachable; retry shortly")
        return begin(*args, **kwargs)

    monkeypatch.setattr(recorder.ctx.recordings, "begin", flaky)
    return calls


async def test_a_moments_catalogue_failure_is_tried_again(
    recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    attempts = _refusing(recorder, monkeypatch, times=1)
    answer = await as_peer(lambda: _invite(recorder))
    assert answer.status == 200, answer
    assert len(attempts) == 2


async def test_a_lasting_catalogue_failure_is_answered_503_with_retry_after(
    recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    _refusing(recorder, monkeypatch, times=10)
    answer = await as_peer(lambda: _invite(recorder))
    assert answer.status == 503, answer
    assert int(answer.header("retry-after") or 0) > 0
    assert recorder.server.active_calls == 0


def _lost(status: int) -> float:
    return REGISTRY.get_sample_value("callvault_sip_calls_lost_total", {"status": str(status)}) or 0.0


async def test_an_error_while_answering_is_logged_answered_500_and_counted_as_a_lost_call(
    recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    lost_before = _lost(500)

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("media session cannot open")

    monkeypatch.setattr(recorder.media, "open_session", broken)
    streams = [Stream("1", sender_aor=AGENT)]
    content_type, body = multipart(sdp_offer(streams), metadata_xml([("YQ==", AGENT)], streams))
    src = TestSrc("127.0.0.1", recorder.port)

    def call() -> Response:
        try:
            return src.invite(content_type, body)
        finally:
            src.close()

    answer = await as_peer(call)
    assert answer.status == 500, answer
    assert _lost(500) - lost_before == 1
    log = "\n".join(recorder.log_lines)
    assert f"call {src.call_id}: answering the INVITE failed" in log
    assert "Traceback (most recent call last)" in log and "media session cannot open" in log
    # Begun in the catalogue but never captured: marked interrupted at once, not left "recording".
    recording = await recorder.finished(await recorder.recording_for(src.call_id))
    assert recording.status == "interrupted"
    assert recorder.server.active_calls == 0
    assert recorder.media.ports.in_use == 0


async def test_a_lasting_catalogue_failure_counts_a_lost_call_as_503(
    recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    lost_before = _lost(503)
    _refusing(recorder, monkeypatch, times=10)
    assert (await as_peer(lambda: _invite(recorder))).status == 503
    assert _lost(503) - lost_before == 1
