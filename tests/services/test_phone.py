from __future__ import annotations

import pytest

from callvault.services.phone import identity_keys, mask_digits, mask_number, normalise_number


@pytest.mark.parametrize(
    "raw",
    [
        "+1 415 555 0100",
        "(415) 555-0100",
        "415.555.0100",
        "sip:+14155550100@sbc.example;user=phone",
        "tel:+1-415-555-0100",
    ],
)
def test_numbers_normalise_to_e164(raw: str) -> None:
    assert normalise_number(raw, "US") == "+14155550100"


def test_non_numbers_and_extensions_are_not_customer_numbers() -> None:
    assert normalise_number("sip:alice@pbx.example") is None
    assert normalise_number("1001") is None
    assert normalise_number(None) is None
    assert normalise_number("020 7183 8750", "GB") == "+442071838750"


def test_identity_keys_cover_aor_extension_and_number() -> None:
    assert identity_keys("<sip:1001@PBX.example;transport=tcp>") == ["1001@pbx.example", "1001"]
    assert "+14155550101" in identity_keys("sip:+14155550101@sbc")


def test_masking_keeps_no_full_number() -> None:
    assert mask_number("+14155550100") == "+14*****0100"
    masked = mask_digits("address 'sip:+14155550100@x' and From <tel:415-555-0100>: bad")
    assert "4155550100" not in masked and "555-0100" not in masked
    assert masked.startswith("address 'sip:+14")
    assert mask_digits("CSeq 12 INVITE") == "CSeq 12 INVITE"
