"""The reference corpus (an extra, see tests.support.reference): its vendor offers sent to the recorder.

The project's own fixtures for the same dialects go through the recorder in
test_vendor_dialects.py and always run; these are skipped where the corpus is
absent, and fail then on CI.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.siprec.conftest import Recorder, as_peer
from tests.support.test_src import TestSrc

VENDOR_BODIES = {
    "acme-siprec-offer.txt": 200,
    "cisco-siprec-offer.txt": 200,
    "inactive-sdp-offer.txt": 200,
    "sonus-siprec-offer.txt": 200,
    "broadworks-offer-2.txt": 200,
    "connectel-offer.txt": 200,
    "connectel-offer2.txt": 200,
    "connectel-offer3.txt": 200,
    "procomm-siprec-offer.txt": 200,
    "broadworks-offer.txt": None,  # broken: recorded without metadata or refused, never a crash
}


@pytest.mark.parametrize("name", sorted(VENDOR_BODIES))
async def test_corpus_vendor_offer_bodies(recorder: Recorder, reference_dir: Path, name: str) -> None:
    body = (reference_dir / "siprec" / "drachtio-vendor-offers" / name).read_bytes()
    boundary = next(line for line in body.decode().splitlines() if line.strip().startswith("--"))
    content_type = f"multipart/mixed;boundary={boundary.strip()[2:]}"
    src = TestSrc("127.0.0.1", recorder.port)

    def call() -> int:
        try:
            response = src.invite(content_type, body)
            if response.status == 200:
                assert src.bye().status == 200
            else:
                assert 400 <= response.status < 600 and response.header("warning")
            assert src.options().status == 200
            return response.status
        finally:
            src.close()

    status = await as_peer(call)
    expected = VENDOR_BODIES[name]
    if expected is not None:
        assert status == expected
    if status == 200:
        await recorder.finished(await recorder.recording_for(src.call_id))


@pytest.mark.parametrize("name", ["non-siprec-payload.txt", "sample-sdp2.txt"])
async def test_corpus_plain_sdp_invite_is_refused_with_a_reason(
    recorder: Recorder, reference_dir: Path, name: str
) -> None:
    body = (reference_dir / "siprec" / "drachtio-vendor-offers" / name).read_bytes()
    src = TestSrc("127.0.0.1", recorder.port)

    def call() -> None:
        try:
            invite, branch = src.request_text("INVITE", body=body, content_type="application/sdp")
            src.send_raw(invite.replace(b";+sip.src", b""))
            response = src.final_response()
            assert response.status == 488 and "not a recording session" in (response.header("warning") or "")
            assert src.options().status == 200
        finally:
            src.close()

    await as_peer(call)
