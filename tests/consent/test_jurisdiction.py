"""Each party's jurisdiction from its number, the requirements table, and the strictest one."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from callvault.errors import InvalidInput
from callvault.services.call_record import CallRecord, ParticipantRecord
from callvault.services.catalogue_rows import call_rows
from callvault.services.consent_requirements import (
    RequirementTable,
    needs_disclosure,
    parse_code,
    shipped_rules,
    strictest,
)
from callvault.services.jurisdiction import jurisdiction_of, nanp_area_codes
from callvault.settings import load_settings

ALL_PARTY_STATES = ("CA", "DE", "FL", "IL", "MD", "MA", "MT", "NV", "NH", "PA", "WA")


@pytest.mark.parametrize(
    ("number", "expected"),
    [
        ("+14155550100", "US-CA"),  # San Francisco
        ("+13025550100", "US-DE"),
        ("+12125550100", "US-NY"),  # one-party New York
        ("+12065550100", "US-WA"),  # Washington State, not D.C.
        ("+12025550100", "US-DC"),
        ("+14165550100", "CA-ON"),  # Toronto: a Canadian province
        ("+15145550100", "CA-QC"),
        ("+19025550100", "CA"),  # Nova Scotia and Prince Edward Island share 902: the country alone
        ("+17875550100", "PR"),  # Puerto Rico: NANP, its own region
        ("+18005550100", "US"),  # toll-free: no state
        ("+4930123456", "DE"),
        ("+442071234567", "GB"),
        ("1001", None),  # an extension says nothing about where its holder is
        ("alice", None),
        ("+1", None),
        ("", None),
        (None, None),
        ("+999123456789", None),  # no such country
    ],
)
def test_a_number_is_placed_in_its_country_or_state(number: str | None, expected: str | None) -> None:
    assert jurisdiction_of(number) == expected


def test_the_shipped_area_code_table_covers_every_all_party_state() -> None:
    table = nanp_area_codes()
    assert len(table) > 400
    for state in ALL_PARTY_STATES:
        assert f"US-{state}" in table.values(), state


def test_the_shipped_requirements_table_names_the_all_party_states_and_gdpr_countries() -> None:
    rules = shipped_rules()
    table = RequirementTable(rules)
    for state in ALL_PARTY_STATES:
        assert table.requirement_for(f"US-{state}") == "all_party_notification", state
    assert table.requirement_for("US-NY") == "one_party"  # not listed: the country's row
    assert table.requirement_for("US") == "one_party"
    assert table.requirement_for("CA-ON") == "one_party"
    assert table.requirement_for("DE") == "all_party_notification" and rules["DE"].gdpr
    assert table.requirement_for("JP") == "all_party_notification"  # not listed: the cautious '*'
    explicit = RequirementTable(rules, gdpr_explicit=True)
    assert explicit.requirement_for("FR") == "explicit_consent"
    assert explicit.requirement_for("US-CA") == "all_party_notification"  # not a GDPR row


def test_the_strictest_requirement_among_the_parties_wins() -> None:
    table = RequirementTable(shipped_rules())
    assert table.call_requirement(["US-NY", "US-TX"]) == "one_party"
    assert table.call_requirement(["US-NY", "US-CA"]) == "all_party_notification"
    assert RequirementTable(shipped_rules(), True).call_requirement(["US-CA", "DE"]) == "explicit_consent"
    assert table.call_requirement([None, None]) is None  # nobody placed: unknown
    assert strictest(["one_party", "explicit_consent", "all_party_notification"]) == "explicit_consent"
    assert strictest([]) is None


def test_the_disclosure_check_asks_the_one_table_which_requirements_need_the_announcement() -> None:
    assert not needs_disclosure("one_party")
    assert needs_disclosure("all_party_notification") and needs_disclosure("explicit_consent")
    assert needs_disclosure(None)  # unknown: cautious


@pytest.mark.parametrize("code", ["us-ca", " DE ", "*"])
def test_jurisdiction_codes_are_normalised(code: str) -> None:
    assert parse_code(code) == code.strip().upper()


@pytest.mark.parametrize("code", ["", "USA", "US-", "U1", "US-CALI", "1", None, 7])
def test_malformed_jurisdiction_codes_are_refused(code: object) -> None:
    with pytest.raises(InvalidInput):
        parse_code(code)


def test_catalogue_rows_place_each_party_and_store_the_calls_requirement() -> None:
    class NoDirectory:
        def agent_for(self, aor: str) -> None:
            return None

        def team_of(self, user_id: int | None) -> None:
            return None

    call = CallRecord(
        started_at=datetime.now(UTC),
        source="siprec",
        participants=[
            ParticipantRecord("sip:1001@pbx.example", role="agent"),
            ParticipantRecord("sip:+12125550100@carrier.example", role="customer"),
            ParticipantRecord("sip:+14155550100@carrier.example", role="customer"),
        ],
    )
    table = RequirementTable(shipped_rules())
    rows = call_rows(call, NoDirectory(), "US", table.call_requirement)  # type: ignore[arg-type]
    assert [p["jurisdiction"] for p in rows.participants] == [None, "US-NY", "US-CA"]
    assert rows.recording["consent_requirement"] == "all_party_notification"
    # Without a table (a caller that does not decide it) the column is left alone.
    assert "consent_requirement" not in call_rows(call, NoDirectory(), "US").recording  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("CALLVAULT_CONSENT_OBJECTION", "stop"),
        ("CALLVAULT_CONSENT_SITE_JURISDICTION", "California"),
        ("CALLVAULT_CONSENT_DTMF_DIGIT", "12"),
        ("CALLVAULT_CONSENT_DTMF_STATE", "unknown"),
    ],
)
def test_bad_consent_settings_are_refused_naming_the_setting(name: str, value: str) -> None:
    with pytest.raises(Exception, match=name):
        load_settings(env={name: value})
