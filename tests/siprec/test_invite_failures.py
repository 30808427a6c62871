"""An INVITE that meets an unavailable catalogue is not a lost call.

Once seen in the crash test on PostgreSQL on a loaded machine: an INVITE answered 500.
The likeliest cause there is the shared PostgreSQL refusing a connection for a moment
(max_connections, shared by every concurrent test run); whatever the cause, a moment's
failure is now tried again, and a lasting one answered 503 with Retry-After, so the SRC
retries or fails over instead of giving the call up.
"""

from __future__ import annotations

from typing import Any

import pytest

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
