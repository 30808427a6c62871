"""Recording rules: which calls are recorded, as ordered rules where the first match wins.

Pure domain code (no catalogue, no clock): :func:`parse_rule` validates what an
administrator sends, :func:`check_order` refuses an ordered set in which a rule
could never apply, and :func:`decide` answers, for the facts known about a call
(:class:`CallFacts`), which rule applies and what the recorder does.

A rule matches when every condition it names matches; a condition lists accepted
values (any one of them will do) and one left out accepts anything. The customer
is matched by its E.164 number against ``customers`` (exact numbers) or
``customer_prefixes`` (either will do); ``weekdays`` and ``time_from``/``time_to``
are read in the rule's ``time_zone`` (default: the site's,
``CALLVAULT_SITE_TIME_ZONE``); a window whose end is before its start runs
over midnight (22:00-06:00).

Actions: ``record``; ``do_not_record`` (the call is catalogued, its audio never
written anywhere); ``sample`` (``sample_percent`` of matching calls, decided by a
hash of the rule and the call's session key, so an SRC retrying the same call
gets the same answer); ``on_demand`` (audio held in the encrypted spool and
kept only if someone asks, see :mod:`callvault.runtime.media.on_demand`).
A call with a must-record participant (regulated staff) is recorded whatever the
rule says; the rule's labels still apply.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, time
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from callvault.errors import Conflict, InvalidInput

RuleAction = Literal["record", "do_not_record", "sample", "on_demand"]
ACTIONS: tuple[RuleAction, ...] = ("record", "do_not_record", "sample", "on_demand")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
LIST_KEYS = (
    "agents",
    "teams",
    "queues",
    "directions",
    "customers",
    "customer_prefixes",
    "labels",
    "weekdays",
)
MATCH_KEYS = (*LIST_KEYS, "time_from", "time_to", "time_zone")
RULE_KEYS = ("name", "position", "action", "sample_percent", "match", "set_labels", "enabled")
MAX_VALUES = 500
MAX_VALUE_LEN = 120
_E164 = re.compile(r"^\+[1-9]\d{1,14}$")
_PREFIX = re.compile(r"^\+\d{1,15}$")
_CLOCK = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
_NAME = re.compile(r"^[\w .:/()+-]{1,120}$")


@dataclass(frozen=True)
class Match:
    """A rule's conditions; an empty one accepts anything."""

    agents: frozenset[str] = frozenset()
    teams: frozenset[str] = frozenset()
    queues: frozenset[str] = frozenset()
    directions: frozenset[str] = frozenset()
    customers: frozenset[str] = frozenset()
    customer_prefixes: frozenset[str] = frozenset()
    labels: frozenset[str] = frozenset()
    weekdays: frozenset[str] = frozenset()
    time_from: time | None = None
    time_to: time | None = None
    time_zone: str | None = None  # None: the site's

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {key: sorted(getattr(self, key)) for key in LIST_KEYS}
        body["weekdays"] = [d for d in WEEKDAYS if d in self.weekdays]
        body["time_from"] = self.time_from.strftime("%H:%M") if self.time_from else None
        body["time_to"] = self.time_to.strftime("%H:%M") if self.time_to else None
        body["time_zone"] = self.time_zone
        return body


@dataclass(frozen=True)
class Rule:
    name: str
    action: RuleAction
    match: Match = field(default_factory=Match)
    sample_percent: float | None = None
    set_labels: tuple[str, ...] = ()
    id: int | None = None
    enabled: bool = True

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "action": self.action,
            "sample_percent": self.sample_percent,
            "match": self.match.to_json(),
            "set_labels": list(self.set_labels),
            "enabled": self.enabled,
        }


@dataclass(frozen=True)
class CallFacts:
    """What is known about a call when rules are evaluated (at its start, at each metadata change)."""

    started_at: datetime  # timezone-aware
    session_key: str  # what sampling hashes: the communication session's Call-ID (or the dialog's)
    agents: frozenset[str] = frozenset()  # usernames of the call's agents
    teams: frozenset[str] = frozenset()
    queue: str | None = None
    direction: str | None = None
    customer: str | None = None  # E.164
    labels: frozenset[str] = frozenset()
    must_record: frozenset[str] = frozenset()  # the agents among them who must be recorded


@dataclass(frozen=True)
class Decision:
    """What the recorder does with a call, and why."""

    action: RuleAction  # what was decided (sample: recorded; see ``record_audio``)
    record_audio: bool  # audio is captured (to the vault, or for on_demand to the spool)
    rule_id: int | None = None
    rule_name: str | None = None
    labels: tuple[str, ...] = ()
    must_record: bool = False  # a must-record participant overrode the rule
    sampled: bool | None = None  # sample rules: whether this call fell in the sample

    @property
    def status(self) -> str | None:
        """The catalogue status of a call the rule leaves unrecorded, else None."""
        return None if self.record_audio else "not_recorded"

    def to_json(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "record_audio": self.record_audio,
            "rule_id": self.rule_id,
            "rule": self.rule_name,
            "labels": list(self.labels),
            "must_record": self.must_record,
            "sampled": self.sampled,
        }


# -- parsing ------------------------------------------------------------------------------------


def parse_rule(body: object, site_time_zone: str) -> tuple[Rule, int | None]:
    """A validated rule and the position asked for (1-based; None: last) from an API/CLI body."""
    if not isinstance(body, dict):
        raise InvalidInput("a rule must be a JSON object")
    unknown = sorted(set(body) - set(RULE_KEYS))
    if unknown:
        raise InvalidInput(f"unknown field(s) {', '.join(unknown)}; known: {', '.join(RULE_KEYS)}")
    name = body.get("name")
    if not isinstance(name, str) or not _NAME.match(name.strip()):
        raise InvalidInput("name: 1-120 letters, digits, spaces or . : / ( ) + - _")
    action = body.get("action")
    if action not in ACTIONS:
        raise InvalidInput(f"action must be one of {', '.join(ACTIONS)}")
    percent = _percent(body.get("sample_percent"), action)
    position = body.get("position")
    if position is not None and (isinstance(position, bool) or not isinstance(position, int) or position < 1):
        raise InvalidInput("position must be a whole number from 1 (the first rule)")
    enabled = body.get("enabled", True)
    if not isinstance(enabled, bool):
        raise InvalidInput("enabled must be true or false")
    match = parse_match(body.get("match"), site_time_zone)
    labels = tuple(_strings("set_labels", body.get("set_labels")))
    rule = Rule(name.strip(), action, match, percent, labels, enabled=enabled)
    return rule, position


def _percent(raw: object, action: object) -> float | None:
    if action != "sample":
        if raw is not None:
            raise InvalidInput(f"sample_percent applies to the sample action only, not {action}")
        return None
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not 0 < raw < 100:
        raise InvalidInput("sample_percent: a sample rule needs a percentage above 0 and below 100")
    return round(float(raw), 2)


def parse_match(raw: object, site_time_zone: str) -> Match:
    if raw is None:
        return Match()
    if not isinstance(raw, dict):
        raise InvalidInput("match must be an object")
    unknown = sorted(set(raw) - set(MATCH_KEYS))
    if unknown:
        raise InvalidInput(
            f"match: unknown condition(s) {', '.join(unknown)}; known: {', '.join(MATCH_KEYS)}"
        )
    lists = {key: frozenset(_strings(f"match.{key}", raw.get(key))) for key in LIST_KEYS}
    lists["weekdays"] = frozenset(_weekday(d) for d in lists["weekdays"])
    if not lists["directions"] <= {"inbound", "outbound"}:
        raise InvalidInput("match.directions: each must be inbound or outbound")
    for number in lists["customers"]:
        if not _E164.match(number):
            raise InvalidInput(f"match.customers: {number!r} is not an E.164 number (+ and 2-15 digits)")
    for prefix in lists["customer_prefixes"]:
        if not _PREFIX.match(prefix):
            raise InvalidInput(f"match.customer_prefixes: {prefix!r} is not + followed by digits")
    start, end = _clock("time_from", raw.get("time_from")), _clock("time_to", raw.get("time_to"))
    if (start is None) != (end is None):
        raise InvalidInput("match: time_from and time_to go together")
    if start is not None and start == end:
        raise InvalidInput("match: time_from equals time_to, a window no call can fall in")
    zone = raw.get("time_zone")
    if zone is not None:
        if not isinstance(zone, str):
            raise InvalidInput("match.time_zone must be an IANA time zone name")
        zone_info(zone)
        if start is None and not lists["weekdays"]:
            raise InvalidInput("match.time_zone without weekdays or a time window means nothing")
        if zone == site_time_zone:
            zone = None
    return Match(**lists, time_from=start, time_to=end, time_zone=zone)


def _strings(key: str, raw: object) -> list[str]:
    if raw is None:
        return []
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not all(isinstance(v, str) and v.strip() for v in raw):
        raise InvalidInput(f"{key} must be a list of non-empty strings")
    if len(raw) > MAX_VALUES or any(len(v) > MAX_VALUE_LEN for v in raw):
        raise InvalidInput(f"{key}: at most {MAX_VALUES} values of {MAX_VALUE_LEN} characters")
    return sorted({v.strip() for v in raw})


def _weekday(value: str) -> str:
    day = value.lower()[:3]
    full = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
    if day not in WEEKDAYS or value.lower() not in (day, full[WEEKDAYS.index(day)]):
        raise InvalidInput(f"match.weekdays: {value!r} is not a weekday (mon ... sun)")
    return day


def _clock(key: str, raw: object) -> time | None:
    if raw is None:
        return None
    match = _CLOCK.match(raw) if isinstance(raw, str) else None
    if match is None:
        raise InvalidInput(f"match.{key} must be HH:MM (24-hour clock)")
    return time(int(match.group(1)), int(match.group(2)))


def zone_info(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(f"unknown time zone {name!r} (an IANA name such as Europe/Paris)") from None


# -- order: no rule may be shadowed ---------------------------------------------------------------


def check_order(rules: Sequence[Rule]) -> None:
    """Conflict naming the pair when an enabled rule can never apply (an earlier one takes all its calls),
    or when two rules share a name."""
    seen: dict[str, int] = {}
    for position, rule in enumerate(rules, 1):
        key = rule.name.casefold()
        if key in seen:
            raise Conflict(f"two rules are named {rule.name!r} (positions {seen[key]} and {position})")
        seen[key] = position
    live = [(p, r) for p, r in enumerate(rules, 1) if r.enabled]
    for index, (position, rule) in enumerate(live):
        for earlier_position, earlier in live[:index]:
            if not covers(earlier.match, rule.match):
                continue
            if earlier.match == rule.match:
                why = f"has the same conditions as rule {earlier.name!r} (position {earlier_position})" + (
                    f" but a contradictory action ({rule.action} after {earlier.action})"
                    if rule.action != earlier.action or rule.sample_percent != earlier.sample_percent
                    else ""
                )
            else:
                why = (
                    f"is unreachable: rule {earlier.name!r} (position {earlier_position}, {earlier.action}) "
                    "matches every call it matches"
                )
            raise Conflict(f"rule {rule.name!r} (position {position}) {why}; reorder or narrow the rules")


def covers(earlier: Match, later: Match) -> bool:
    """Every call ``later`` matches is matched by ``earlier`` too (a conservative answer: False when unsure)."""
    for key in ("agents", "teams", "queues", "directions", "labels", "weekdays"):
        accepted, wanted = getattr(earlier, key), getattr(later, key)
        if accepted and (not wanted or not wanted <= accepted):
            return False
    if not _covers_customers(earlier, later):
        return False
    if earlier.weekdays and earlier.time_zone != later.time_zone:
        return False
    return _covers_window(earlier, later)


def _covers_customers(earlier: Match, later: Match) -> bool:
    if not (earlier.customers or earlier.customer_prefixes):
        return True
    if not (later.customers or later.customer_prefixes):
        return False
    numbers_ok = all(
        n in earlier.customers or any(n.startswith(p) for p in earlier.customer_prefixes)
        for n in later.customers
    )
    prefixes_ok = all(
        any(p.startswith(q) for q in earlier.customer_prefixes) for p in later.customer_prefixes
    )
    return numbers_ok and prefixes_ok


def _covers_window(earlier: Match, later: Match) -> bool:
    if earlier.time_from is None or earlier.time_to is None:
        return True
    if later.time_from is None or later.time_to is None or earlier.time_zone != later.time_zone:
        return False
    outer = _minutes(earlier.time_from, earlier.time_to)
    inner = _minutes(later.time_from, later.time_to)
    return inner <= outer


def _minutes(start: time, end: time) -> set[int]:
    first, last = start.hour * 60 + start.minute, end.hour * 60 + end.minute
    if first < last:
        return set(range(first, last))
    return set(range(first, 24 * 60)) | set(range(0, last))


# -- deciding ----------------------------------------------------------------------------------------


def matches(rule: Rule, facts: CallFacts, site_time_zone: str) -> bool:
    m = rule.match
    if m.agents and not m.agents & facts.agents:
        return False
    if m.teams and not m.teams & facts.teams:
        return False
    if m.queues and facts.queue not in m.queues:
        return False
    if m.directions and facts.direction not in m.directions:
        return False
    if m.labels and not m.labels & facts.labels:
        return False
    if (m.customers or m.customer_prefixes) and not _customer_matches(m, facts.customer):
        return False
    if m.weekdays or m.time_from is not None:
        local = facts.started_at.astimezone(zone_info(m.time_zone or site_time_zone))
        if m.weekdays and WEEKDAYS[local.weekday()] not in m.weekdays:
            return False
        if (
            m.time_from is not None
            and m.time_to is not None
            and not in_window(local.time(), m.time_from, m.time_to)
        ):
            return False
    return True


def _customer_matches(m: Match, customer: str | None) -> bool:
    if not customer:
        return False
    return customer in m.customers or any(customer.startswith(p) for p in m.customer_prefixes)


def in_window(at: time, start: time, end: time) -> bool:
    """``start`` <= ``at`` < ``end``; a window ending before it starts runs over midnight."""
    if start < end:
        return start <= at < end
    return at >= start or at < end


def in_sample(rule_id: int | None, session_key: str, percent: float) -> bool:
    """Deterministic per call and rule: the same call (an SRC's retry) always gets the same answer."""
    digest = hashlib.sha256(f"{rule_id}:{session_key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 10_000 < round(percent * 100)


def decide(rules: Sequence[Rule], facts: CallFacts, site_time_zone: str) -> Decision:
    """The first enabled matching rule's decision; no rule matching records the call."""
    rule = next((r for r in rules if r.enabled and matches(r, facts, site_time_zone)), None)
    must = bool(facts.must_record)
    if rule is None:
        return Decision("record", True, must_record=must)
    labels = rule.set_labels
    sampled: bool | None = None
    record_audio = rule.action != "do_not_record"
    if rule.action == "sample":
        assert rule.sample_percent is not None
        sampled = in_sample(rule.id, facts.session_key, rule.sample_percent)
        record_audio = sampled
    action: RuleAction = rule.action
    if must and (not record_audio or action == "on_demand"):
        # Regulated staff: no rule may stop their calls being recorded, nor leave keeping them to chance.
        return Decision("record", True, rule.id, rule.name, labels, must_record=True, sampled=sampled)
    return Decision(action, record_audio, rule.id, rule.name, labels, must_record=must, sampled=sampled)
