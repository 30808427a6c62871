"""Phone numbers and SIP identities in one comparable form.

Customers are searched by number however it was written (``+1 415 555 0100``,
``(415) 555-0100``, ``sip:+14155550100@sbc;user=phone``), so every number is
stored and queried in E.164. Agents are matched to SIP identities by AOR,
user part (extension) and E.164 form.
"""

from __future__ import annotations

import re

import phonenumbers

_URI_USER = re.compile(r"^(?:sips?:|tel:)?([^@;>]+)", re.IGNORECASE)
_DIALABLE = re.compile(r"^[+0-9().\-\s]{3,32}$")


def user_part(identity: str) -> str:
    """``sip:1001@pbx.example;transport=tcp`` → ``1001``; ``alice@x`` → ``alice``."""
    cleaned = identity.strip().strip("<>").strip()
    match = _URI_USER.match(cleaned)
    return match.group(1).strip() if match else cleaned


def normalise_number(raw: str | None, region: str = "US") -> str | None:
    """E.164 form of a dialable number or SIP/tel URI, or None if it is not a number."""
    if not raw:
        return None
    candidate = user_part(raw)
    if not _DIALABLE.match(candidate):
        return None
    digits = re.sub(r"[^0-9+]", "", candidate)
    if len(digits.lstrip("+")) < 3:
        return None
    try:
        parsed = phonenumbers.parse(candidate, region)
    except phonenumbers.NumberParseException:
        return digits if digits.startswith("+") else None
    if not phonenumbers.is_possible_number(parsed):
        # Short internal extensions are not E.164; keep them out of customer search.
        return None
    return str(phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164))


def identity_keys(identity: str, region: str = "US") -> list[str]:
    """Every form under which an agent's SIP identity may be registered, most specific first."""
    cleaned = identity.strip().strip("<>").strip()
    lowered = re.sub(r"^sips?:", "", cleaned, flags=re.IGNORECASE).split(";")[0].lower()
    keys = [lowered]
    user = user_part(cleaned).lower()
    if user and user not in keys:
        keys.append(user)
    number = normalise_number(cleaned, region)
    if number and number not in keys:
        keys.append(number)
    return keys


def mask_number(value: str | None) -> str:
    """For logs: keep the last 4 digits only (``+1415*****0100`` style)."""
    if not value:
        return "-"
    digits = [i for i, ch in enumerate(value) if ch.isdigit()]
    if len(digits) <= 4:
        return "*" * len(value)
    keep = set(digits[-4:]) | set(digits[:2])
    return "".join(ch if (i in keep or not ch.isdigit()) else "*" for i, ch in enumerate(value))


_DIGIT_RUN = re.compile(r"\+?\d[\d\-. ]{4,}\d")


def mask_digits(text: str) -> str:
    """Mask every phone-number-like run of digits in free text (parser errors echo headers)."""
    return _DIGIT_RUN.sub(lambda match: mask_number(match.group(0)), text)
