"""Consent end to end: SIPREC calls from the test SRC to a California number, objections by
API, by the SRC's metadata extension and by a keypad digit.

What a compliance officer checks: the call is marked all-party by its customer's number, the
objecting side's audio after the objection is silence in the stored recording (which keeps
its length), the other side is kept (or not, as the policy says), the objection is on the
timeline and in the audit log, and the call's consent state is searchable.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import numpy.typing as npt
from prometheus_client import REGISTRY
from sqlalchemy import select

from callvault.db.models import AccessEvent
from tests.siprec.conftest import Recorder, as_peer, start_recorder
from tests.support.audio import correlation, voice
from tests.support.live_call import AGENT, CUSTOMER, LiveCall, open_call
from tests.support.people import ADMIN
from tests.support.test_src import Stream, TestSrc, answered_ports, metadata_xml, multipart, sdp_offer

RATE = 8000
EXTENSION = '<cv:consent xmlns:cv="urn:callvault:params:xml:ns:consent" state="{state}"/>'


def _rms(pcm: npt.NDArray[np.int16], start: float, end: float) -> float:
    window = pcm[int(start * RATE) : int(end * RATE)].astype(np.float64)
    return float(np.sqrt(np.mean(window**2))) if window.size else 0.0


def _api(recorder: Recorder, token: str, method: str, path: str, body: Any = None) -> httpx.Response:
    return httpx.request(
        method,
        f"http://127.0.0.1:{recorder.http_port}/api/v1/{path}",
        headers={"Authorization": f"Bearer {token}"},
        json=body,
        timeout=30,
    )


async def _recorded(recorder: Recorder, call: LiveCall) -> tuple[str, npt.NDArray[np.int16], dict[str, Any]]:
    recording_id = await recorder.recording_for(call.call_id)
    recording = await recorder.finished(recording_id)
    assert recording.status == "complete"
    audio, rate = await asyncio.to_thread(recorder.audio, recording_id)
    assert rate == RATE and audio.shape[0] == 2
    return recording_id, audio, await asyncio.to_thread(recorder.detail, recording_id)


def _consent_trail(recorder: Recorder, recording_id: str) -> list[tuple[str, str, str | None]]:
    with recorder.ctx.catalog.read() as session:
        rows = session.execute(
            select(AccessEvent.username, AccessEvent.outcome, AccessEvent.detail)
            .where(AccessEvent.recording_id == recording_id, AccessEvent.action == "call_consent")
            .order_by(AccessEvent.seq)
        ).all()
    return [tuple(r) for r in rows]  # type: ignore[misc]


def _counted(state: str, source: str) -> float:
    labels = {"state": state, "source": source}
    return REGISTRY.get_sample_value("callvault_consent_changes_total", labels) or 0.0


def _metadata(customer_state: str | None) -> str:
    streams = [Stream("agent", sender_aor=AGENT), Stream("customer", sender_aor=CUSTOMER)]
    xml = metadata_xml([("YQ==", AGENT), ("cA==", CUSTOMER)], streams)
    if customer_state is not None:
        own = f'<participant participant_id="cA=="><nameID aor="{CUSTOMER}"><name>{CUSTOMER}</name></nameID>'
        xml = xml.replace(own, own + EXTENSION.format(state=customer_state))
    return xml


def _open_with_metadata(port: int, customer_state: str) -> LiveCall:
    streams = [Stream("agent", sender_aor=AGENT), Stream("customer", sender_aor=CUSTOMER)]
    content_type, body = multipart(sdp_offer(streams), _metadata(customer_state))
    src = TestSrc("127.0.0.1", port)
    response = src.invite(content_type, body)
    assert response.status == 200, (response.status, response.reason)
    return LiveCall(src, answered_ports(response.body), time.monotonic())


def _update_metadata(call: LiveCall, customer_state: str, version: int) -> None:
    streams = [Stream("agent", sender_aor=AGENT), Stream("customer", sender_aor=CUSTOMER)]
    content_type, body = multipart(sdp_offer(streams, version=version), _metadata(customer_state))
    response = call.src.reinvite(content_type, body)
    assert response.status == 200, (response.status, response.reason)


async def test_an_objection_by_api_silences_the_customer_of_a_california_call(
    tmp_path: Path, database_url: str
) -> None:
    async with start_recorder(tmp_path / "data", database_url) as recorder:
        token = await asyncio.to_thread(recorder.ctx.users.create_token, ADMIN, "alice", "desk")
        call = await as_peer(lambda: open_call(recorder.port))
        agent, customer = voice(3.0, RATE, 140.0, seed=11), voice(3.0, RATE, 220.0, seed=12)
        lead = await as_peer(lambda: call.send(agent[:RATE], customer[:RATE])) - call.answered
        notified = await asyncio.to_thread(
            _api, recorder, token, "POST", f"calls/{call.call_id}/consent", {"state": "notified"}
        )
        assert notified.status_code == 200, notified.text
        assert notified.json()["silenced"] is None and notified.json()["consent_state"] == "notified"
        asked = time.monotonic() - call.answered
        objected = await asyncio.to_thread(
            _api,
            recorder,
            token,
            "POST",
            f"calls/{call.call_id}/consent",
            {"state": "objected", "party": "customer"},
        )
        replied = time.monotonic() - call.answered
        assert objected.status_code == 200, objected.text
        answer = objected.json()
        assert answer["state"] == "objected" and answer["consent_state"] == "objected"
        assert answer["silenced"] == "customer"  # the default policy: the objecting side
        await as_peer(lambda: call.send(agent[RATE:], customer[RATE:]))
        span = await as_peer(call.hang_up) - call.answered
        recording_id, audio, detail = await _recorded(recorder, call)
        assert answer["recording_id"] == recording_id

        assert detail["consent_requirement"] == "all_party_notification"  # +1 415: California
        assert detail["consent_state"] == "objected"
        assert [(c["party"], c["state"], c["source"], c["changed_by"]) for c in detail["consents"]] == [
            ("customer", "objected", "api", "alice")
        ]
        assert abs(audio.shape[1] / RATE - span) < 0.5  # as long as the call: silence stands in
        start = int(lead * RATE)
        # Before the objection both sides are kept; after it the customer is silent, the agent kept.
        assert correlation(audio[1][start : start + RATE - 800], customer[: RATE - 800], max_lag=800) > 0.9
        assert _rms(audio[1], lead + 1.3, lead + 3.0) < 30
        after = audio[0][start + RATE + 800 : start + 3 * RATE]
        assert correlation(after, agent[RATE + 800 :], max_lag=800) > 0.9
        marks = [
            (e["kind"], e["data"]) for e in detail["events"] if e["kind"] in ("consent", "pause", "resume")
        ]
        assert [(k, d.get("state") or d.get("cause"), d.get("channels")) for k, d in marks] == [
            ("consent", "notified", None),
            ("consent", "objected", None),
            ("pause", "consent", "customer"),
            ("resume", "consent", "customer"),
        ]
        offsets = [e["offset_seconds"] for e in detail["events"] if e["kind"] == "pause"]
        assert asked - 0.1 <= offsets[0] <= replied + 0.1  # when the request took effect
        assert marks[3][1]["reason"] == "call_ended"
        assert await asyncio.to_thread(_consent_trail, recorder, recording_id) == [
            ("alice", "ok", "party=customer state=notified source=api"),
            ("alice", "ok", "party=customer state=objected source=api"),
        ]
        found = await asyncio.to_thread(
            _api,
            recorder,
            recorder.token,
            "GET",
            "recordings?consent_state=objected&consent_requirement=all_party_notification",
        )
        assert [r["id"] for r in found.json()["items"]] == [recording_id]
        late = await asyncio.to_thread(
            _api, recorder, token, "POST", f"calls/{call.call_id}/consent", {"state": "consented"}
        )
        assert late.status_code == 409  # the call has ended


async def test_the_srcs_metadata_extension_sets_consent_and_an_objection_silences_all(
    tmp_path: Path, database_url: str
) -> None:
    objections = _counted("objected", "metadata")
    async with start_recorder(tmp_path / "data", database_url, consent_objection="all") as recorder:
        call = await as_peer(lambda: _open_with_metadata(recorder.port, "notified"))
        agent, customer = voice(3.0, RATE, 140.0, seed=13), voice(3.0, RATE, 220.0, seed=14)
        lead = await as_peer(lambda: call.send(agent[:RATE], customer[:RATE])) - call.answered
        await as_peer(lambda: _update_metadata(call, "objected", 2))
        recording_id = await recorder.recording_for(call.call_id)
        deadline = time.monotonic() + 10
        while "consent" not in (recorder.media.silence_status(recording_id) or _NONE).causes():
            assert time.monotonic() < deadline, "the objection in the metadata was not applied"
            await asyncio.sleep(0.02)
        objected_at = time.monotonic() - call.answered
        # A snapshot repeating the objection, and a malformed extension, change nothing.
        await as_peer(lambda: _update_metadata(call, "objected", 3))
        await as_peer(lambda: _update_metadata(call, "maybe", 4))
        await as_peer(lambda: call.send(agent[RATE:], customer[RATE:]))
        span = await as_peer(call.hang_up) - call.answered
        recording_id, audio, detail = await _recorded(recorder, call)
        assert _counted("objected", "metadata") == objections + 1  # once, though sent three times

        assert abs(audio.shape[1] / RATE - span) < 0.5
        start = int(lead * RATE)
        assert correlation(audio[0][start : start + RATE - 800], agent[: RATE - 800], max_lag=800) > 0.9
        for channel in audio:  # policy 'all': both sides silent from the objection on
            assert _rms(channel, objected_at + 0.3, span - 0.1) < 30
        assert detail["consent_state"] == "objected"
        assert [(c["party"], c["state"], c["source"], c["changed_by"]) for c in detail["consents"]] == [
            ("customer", "objected", "metadata", "system")
        ]
        marks = [(e["kind"], e["data"]) for e in detail["events"] if e["kind"] in ("consent", "pause")]
        assert [(k, d.get("state") or d.get("cause"), d.get("source")) for k, d in marks] == [
            ("consent", "notified", "metadata"),
            ("consent", "objected", "metadata"),
            ("pause", "consent", "metadata"),
        ]
        assert marks[2][1]["channels"] == "all"
        assert await asyncio.to_thread(_consent_trail, recorder, recording_id) == [
            ("system", "ok", "party=customer state=notified source=metadata"),
            ("system", "ok", "party=customer state=objected source=metadata"),
        ]
        assert any("consent extension ignored" in line for line in recorder.log_lines)


class _NoSilence:
    @staticmethod
    def causes() -> set[str]:
        return set()


_NONE = _NoSilence()


async def test_the_consent_digit_sets_the_pressing_side_objected(tmp_path: Path, database_url: str) -> None:
    # PCI digit pauses off (only the consent digit is read) and two capture worker processes
    # (a press one worker finds reaches the engine through the relay).
    async with start_recorder(
        tmp_path / "data", database_url, consent_dtmf_digit="9", pci_digit_pause="false", media_workers="2"
    ) as recorder:
        call = await as_peer(lambda: open_call(recorder.port))
        agent, customer = voice(4.0, RATE, 140.0, seed=15), voice(4.0, RATE, 220.0, seed=16)
        # The customer presses 1 (nothing), then 9 at 1.5 s: 100 ms each, RFC 4733 events.
        keys = ((1, 25, 5), (9, 75, 5))
        lead = await as_peer(lambda: call.send(agent, customer, customer_digits=keys)) - call.answered
        span = await as_peer(call.hang_up) - call.answered
        recording_id, audio, detail = await _recorded(recorder, call)

        assert abs(audio.shape[1] / RATE - span) < 0.5
        start = int(lead * RATE)
        assert correlation(audio[1][start : start + RATE], customer[:RATE], max_lag=800) > 0.9
        pauses = [e for e in detail["events"] if e["kind"] == "pause"]
        assert [(p["data"]["cause"], p["data"]["channels"], p["data"]["source"]) for p in pauses] == [
            ("consent", "customer", "dtmf")
        ]
        pressed = pauses[0]["offset_seconds"]
        assert lead + 1.5 <= pressed <= lead + 3.0  # after the key, as soon as capture flushed it
        assert _rms(audio[1], pressed + 0.1, span - 0.1) < 30  # the customer, silent from then on
        after = audio[0][int((pressed + 0.1) * RATE) : start + 4 * RATE]
        shift = int((pressed + 0.1) * RATE) - start
        assert correlation(after, agent[shift:], max_lag=800) > 0.9  # the agent, kept
        assert [(c["party"], c["state"], c["source"]) for c in detail["consents"]] == [
            ("customer", "objected", "dtmf")
        ]
        assert not [e for e in detail["events"] if e["kind"] == "dtmf" and e["data"]]  # no digit stored
        assert await asyncio.to_thread(_consent_trail, recorder, recording_id) == [
            ("system", "ok", "party=customer state=objected source=dtmf"),
        ]


async def test_an_agents_objection_silences_the_agent_until_they_consent(
    tmp_path: Path, database_url: str
) -> None:
    async with start_recorder(tmp_path / "data", database_url) as recorder:
        token = await asyncio.to_thread(recorder.ctx.users.create_token, ADMIN, "alice", "desk")
        call = await as_peer(lambda: open_call(recorder.port))
        agent, customer = voice(3.0, RATE, 140.0, seed=17), voice(3.0, RATE, 220.0, seed=18)

        def consent(state: str) -> dict[str, Any]:
            body = {"state": state, "party": "agent"}
            response = _api(recorder, token, "POST", f"calls/{call.call_id}/consent", body)
            assert response.status_code == 200, response.text
            answer: dict[str, Any] = response.json()
            return answer

        lead = await as_peer(lambda: call.send(agent[:RATE], customer[:RATE])) - call.answered
        assert (await asyncio.to_thread(consent, "objected"))["silenced"] == "agent"
        await as_peer(lambda: call.send(agent[RATE : 2 * RATE], customer[RATE : 2 * RATE]))
        back = await asyncio.to_thread(consent, "consented")
        assert back["silenced"] is None and back["consent_state"] == "consented"
        resumed_at = time.monotonic() - call.answered
        await as_peer(lambda: call.send(agent[2 * RATE :], customer[2 * RATE :]))
        span = await as_peer(call.hang_up) - call.answered
        _, audio, detail = await _recorded(recorder, call)

        assert abs(audio.shape[1] / RATE - span) < 0.5
        marks = [e for e in detail["events"] if e["kind"] in ("pause", "resume")]
        assert [(e["kind"], e["data"]["channels"], e["data"].get("reason")) for e in marks] == [
            ("pause", "agent", None),
            ("resume", "agent", "consent_changed"),
        ]
        assert marks[1]["offset_seconds"] <= resumed_at + 0.1
        # The recording places audio by its RTP timestamps, which run on from one burst sent to
        # the next: the second second of audio is the one sent while the agent objected.
        start = int(lead * RATE)
        assert _rms(audio[0], lead + 1.1, lead + 1.9) < 30  # the agent, silent while objecting
        # The customer is kept throughout, and the agent again once they consented.
        assert correlation(audio[1][start : start + 3 * RATE], customer, max_lag=800) > 0.9
        tail = audio[0][start + 2 * RATE + 800 : start + 3 * RATE]
        assert correlation(tail, agent[2 * RATE + 800 :], max_lag=800) > 0.9
