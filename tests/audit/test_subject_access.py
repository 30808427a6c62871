"""The one subject lookup: a person's recordings by number in any format, email or customer id."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from callvault.crypto.personal_hash import PersonalHasher
from callvault.errors import InvalidInput
from callvault.services.call_record import CallRecord, ParticipantRecord
from callvault.services.context import ServiceContext
from callvault.services.importer import ImportRequest
from callvault.services.subject_access import Subject, find_subject_recordings
from tests.support.audio import stereo_wav, voice
from tests.support.people import ADMIN

RATE = 8000


def _import(ctx: ServiceContext, customer: str, seed: int, direction: str | None = "inbound") -> str:
    wav = stereo_wav(voice(0.5, RATE, 120, seed), voice(0.5, RATE, 200, seed + 1), RATE)
    request = ImportRequest(customer=customer, direction=direction)  # type: ignore[arg-type]
    return ctx.importer.import_bytes(ADMIN, wav, request)


def _find(ctx: ServiceContext, kind: str, value: str) -> list[str]:
    subject = Subject.of(kind, value, ctx.settings.default_region)
    with ctx.catalog.read() as session:
        return [m.recording_id for m in find_subject_recordings(session, subject)]


def test_a_number_written_three_ways_finds_the_same_calls(ctx: ServiceContext) -> None:
    first = _import(ctx, "+1 415 555 0100", 1)
    second = _import(ctx, "(415) 555-0100", 3, direction="outbound")
    other = _import(ctx, "+14155550199", 5)
    for written in ("sip:+14155550100@sbc.example;user=phone", "415.555.0100", "+14155550100"):
        found = _find(ctx, "phone", written)
        assert sorted(found) == sorted([first, second]), written
    assert _find(ctx, "phone", "+14155550199") == [other]
    assert _find(ctx, "phone", "+14155550111") == []


def test_email_and_customer_id_find_their_calls(ctx: ServiceContext) -> None:
    by_mail = _import(ctx, "sip:Jane.Doe@Example.com", 7, direction=None)
    by_id = _import(ctx, "+14155550100", 9)
    ctx.recordings.update_call(
        by_id,
        CallRecord(
            started_at=datetime.now(UTC),
            source="import",
            external_ids={"crm_customer": "CUST-42"},
            participants=[ParticipantRecord(aor="+14155550100", role="customer")],
        ),
    )
    assert _find(ctx, "email", "jane.doe@example.COM") == [by_mail]
    assert _find(ctx, "customer_id", "CUST-42") == [by_id]
    assert _find(ctx, "customer_id", "CUST-4") == []


@pytest.mark.parametrize(
    "raw",
    [{}, {"phone": "x", "email": "a@b"}, {"phone": "not a number"}, {"email": "nobody"}, {"name": "x"}],
)
def test_malformed_subjects_are_refused(raw: dict[str, str]) -> None:
    with pytest.raises(InvalidInput):
        Subject.parse(raw)


def test_masked_hides_the_number_but_is_stable(tmp_path: Path) -> None:
    hasher = PersonalHasher(tmp_path / "personal.key")
    a = Subject.parse({"phone": "(415) 555-0100"})
    b = Subject.parse({"phone": "+1 415 555 0100"})
    assert a == b and a.masked(hasher) == b.masked(hasher)
    assert "5550100" not in a.masked(hasher)
    # keyed: another installation's key gives another mask, so no table of numbers reverses it
    assert a.masked(PersonalHasher(tmp_path / "other.key")) != a.masked(hasher)
