"""Recording rules as pure domain code: parsing, order checks, matching, sampling."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from callvault.errors import Conflict, InvalidInput
from callvault.services.recording_rules import CallFacts, Rule, check_order, decide, in_sample, parse_rule

SITE = "America/New_York"


def rule(body: dict[str, object], rule_id: int = 1) -> Rule:
    parsed, _ = parse_rule(body, SITE)
    return Rule(parsed.name, parsed.action, parsed.match, parsed.sample_percent, parsed.set_labels, rule_id)


def facts(at: datetime = datetime(2026, 3, 2, 15, 0, tzinfo=UTC), **values: object) -> CallFacts:
    return CallFacts(started_at=at, session_key=str(values.pop("key", "call-1")), **values)  # type: ignore[arg-type]


def test_first_match_wins_and_no_match_records() -> None:
    rules = [
        rule({"name": "hr", "action": "do_not_record", "match": {"queues": ["hr"]}}, 1),
        rule({"name": "eu", "action": "on_demand", "match": {"customer_prefixes": ["+33", "+49"]}}, 2),
        rule(
            {
                "name": "vip",
                "action": "record",
                "match": {"customers": ["+14155550100"]},
                "set_labels": ["mifid2"],
            },
            3,
        ),
    ]
    assert decide(rules, facts(queue="hr", customer="+33612345678"), SITE).rule_name == "hr"
    paris = decide(rules, facts(customer="+33612345678"), SITE)
    assert (paris.action, paris.record_audio, paris.rule_name) == ("on_demand", True, "eu")
    vip = decide(rules, facts(customer="+14155550100"), SITE)
    assert vip.labels == ("mifid2",) and vip.rule_name == "vip"
    nothing = decide(rules, facts(customer="+14155550101", queue="sales"), SITE)
    assert (nothing.action, nothing.rule_name, nothing.record_audio) == ("record", None, True)
    assert decide(rules, facts(), SITE).rule_name is None  # no customer number: no customer rule matches


def test_conditions_combine_all_of_them_and_any_value() -> None:
    both = [
        rule(
            {
                "name": "red inbound",
                "action": "do_not_record",
                "match": {"teams": ["red", "blue"], "directions": ["inbound"]},
            }
        )
    ]
    assert (
        decide(both, facts(teams=frozenset({"blue"}), direction="inbound"), SITE).rule_name == "red inbound"
    )
    assert decide(both, facts(teams=frozenset({"blue"}), direction="outbound"), SITE).rule_name is None
    assert decide(both, facts(direction="inbound"), SITE).rule_name is None
    agents = [rule({"name": "a", "action": "do_not_record", "match": {"agents": ["bob"], "labels": ["hr"]}})]
    assert (
        decide(
            agents, facts(agents=frozenset({"alice", "bob"}), labels=frozenset({"hr", "x"})), SITE
        ).rule_name
        == "a"
    )
    assert decide(agents, facts(agents=frozenset({"bob"})), SITE).rule_name is None


def test_weekdays_and_windows_are_read_in_the_rules_time_zone() -> None:
    office = [
        rule(
            {
                "name": "office",
                "action": "do_not_record",
                "match": {"weekdays": ["mon", "Tuesday"], "time_from": "09:00", "time_to": "17:00"},
            }
        )
    ]
    # Monday 2 March 2026, 13:59 UTC is 08:59 in New York (EST, UTC-5): before the window.
    assert decide(office, facts(datetime(2026, 3, 2, 13, 59, tzinfo=UTC)), SITE).rule_name is None
    assert decide(office, facts(datetime(2026, 3, 2, 14, 0, tzinfo=UTC)), SITE).rule_name == "office"
    assert decide(office, facts(datetime(2026, 3, 2, 21, 59, tzinfo=UTC)), SITE).rule_name == "office"
    assert (
        decide(office, facts(datetime(2026, 3, 2, 22, 0, tzinfo=UTC)), SITE).rule_name is None
    )  # 17:00: the end is out
    # Tuesday 03:00 UTC is still Monday 22:00 in New York: the weekday is the local one.
    late = [
        rule(
            {
                "name": "mon night",
                "action": "do_not_record",
                "match": {"weekdays": ["mon"], "time_from": "21:00", "time_to": "23:00"},
            }
        )
    ]
    assert decide(late, facts(datetime(2026, 3, 3, 3, 0, tzinfo=UTC)), SITE).rule_name == "mon night"
    # After the change to summer time (8 March 2026) New York is UTC-4.
    assert decide(office, facts(datetime(2026, 3, 9, 13, 0, tzinfo=UTC)), SITE).rule_name == "office"
    # A rule may name its own zone; a window ending before it starts runs over midnight.
    tokyo = [
        rule(
            {
                "name": "night",
                "action": "sample",
                "sample_percent": 50,
                "match": {"time_from": "22:00", "time_to": "06:00", "time_zone": "Asia/Tokyo"},
            }
        )
    ]
    assert (
        decide(tokyo, facts(datetime(2026, 3, 2, 14, 30, tzinfo=UTC)), SITE).rule_name == "night"
    )  # 23:30 JST
    assert (
        decide(tokyo, facts(datetime(2026, 3, 2, 20, 59, tzinfo=UTC)), SITE).rule_name == "night"
    )  # 05:59 JST
    assert decide(tokyo, facts(datetime(2026, 3, 2, 21, 0, tzinfo=UTC)), SITE).rule_name is None  # 06:00 JST


def test_sampling_is_deterministic_per_call_and_close_to_its_percentage() -> None:
    qa = [rule({"name": "qa", "action": "sample", "sample_percent": 20}, 7)]
    picks = [decide(qa, facts(key=f"call-{i}@pbx"), SITE) for i in range(20_000)]
    share = sum(p.record_audio for p in picks) / len(picks)
    assert 0.19 < share < 0.21, share
    assert all(p.sampled == p.record_audio and p.action == "sample" for p in picks)
    again = [decide(qa, facts(key=f"call-{i}@pbx"), SITE).record_audio for i in range(2000)]
    assert again == [p.record_audio for p in picks[:2000]]  # a retry of the same call decides the same
    assert in_sample(7, "x", 99.99) or not in_sample(7, "x", 0.01)
    # Another rule samples independently of this one.
    other = [in_sample(8, f"call-{i}@pbx", 20) for i in range(2000)]
    assert other != [p.record_audio for p in picks[:2000]]


def test_must_record_overrides_every_rule_but_keeps_its_labels() -> None:
    rules = [
        rule(
            {"name": "never", "action": "do_not_record", "match": {"queues": ["hr"]}, "set_labels": ["hr"]}, 1
        ),
        rule({"name": "ask", "action": "on_demand", "match": {"queues": ["desk"]}}, 2),
        rule({"name": "few", "action": "sample", "sample_percent": 0.01, "match": {"queues": ["qa"]}}, 3),
    ]
    trader = frozenset({"trader"})
    for queue in ("hr", "desk", "qa"):
        decision = decide(rules, facts(queue=queue, agents=trader, must_record=trader), SITE)
        assert (decision.action, decision.record_audio, decision.must_record) == ("record", True, True), queue
    assert decide(rules, facts(queue="hr", agents=trader, must_record=trader), SITE).labels == ("hr",)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"name": "x", "action": "shred"}, "action must be one of"),
        ({"name": "x", "action": "sample"}, "sample rule needs a percentage"),
        ({"name": "x", "action": "sample", "sample_percent": 100}, "above 0 and below 100"),
        ({"name": "x", "action": "record", "sample_percent": 5}, "sample action only"),
        ({"name": "x", "action": "record", "match": {"customers": ["4155550100"]}}, "not an E.164 number"),
        (
            {"name": "x", "action": "record", "match": {"customer_prefixes": ["1415"]}},
            r"not \+ followed by digits",
        ),
        ({"name": "x", "action": "record", "match": {"weekdays": ["funday"]}}, "not a weekday"),
        ({"name": "x", "action": "record", "match": {"time_from": "9:00", "time_to": "17:00"}}, "HH:MM"),
        ({"name": "x", "action": "record", "match": {"time_from": "09:00"}}, "go together"),
        (
            {"name": "x", "action": "record", "match": {"time_from": "09:00", "time_to": "09:00"}},
            "no call can fall in",
        ),
        (
            {"name": "x", "action": "record", "match": {"weekdays": ["mon"], "time_zone": "Mars/Olympus"}},
            "unknown time zone",
        ),
        ({"name": "x", "action": "record", "match": {"directions": ["sideways"]}}, "inbound or outbound"),
        ({"name": "x", "action": "record", "match": {"colour": ["red"]}}, "unknown condition"),
        ({"name": "x", "action": "record", "priority": 1}, "unknown field"),
        ({"name": "", "action": "record"}, "name"),
        ({"name": "x", "action": "record", "position": 0}, "position"),
    ],
)
def test_bad_rules_are_refused_with_a_precise_message(body: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        parse_rule(body, SITE)


def test_unreachable_and_contradictory_orders_are_refused_naming_both_rules() -> None:
    catch_all = rule({"name": "all", "action": "record"}, 1)
    hr = rule({"name": "hr", "action": "do_not_record", "match": {"queues": ["hr"]}}, 2)
    check_order([hr, catch_all])  # specific first: fine
    with pytest.raises(Conflict, match=r"rule 'hr' \(position 2\) is unreachable: rule 'all' \(position 1"):
        check_order([catch_all, hr])
    same = rule({"name": "hr2", "action": "record", "match": {"queues": ["hr"]}}, 3)
    with pytest.raises(Conflict, match="same conditions as rule 'hr'.*contradictory action"):
        check_order([hr, same])
    with pytest.raises(Conflict, match="two rules are named"):
        check_order([hr, rule({"name": "HR", "action": "record", "match": {"queues": ["x"]}}, 4)])
    wide = rule({"name": "uk", "action": "on_demand", "match": {"customer_prefixes": ["+44"]}}, 5)
    narrow = rule(
        {
            "name": "london",
            "action": "record",
            "match": {"customer_prefixes": ["+4420"], "customers": ["+447700900123"]},
        },
        6,
    )
    with pytest.raises(Conflict, match="'london'.*unreachable.*'uk'"):
        check_order([wide, narrow])
    check_order([narrow, wide])
    day = rule({"name": "day", "action": "record", "match": {"time_from": "08:00", "time_to": "20:00"}}, 7)
    lunch = rule(
        {
            "name": "lunch",
            "action": "do_not_record",
            "match": {"time_from": "12:00", "time_to": "13:00", "queues": ["a"]},
        },
        8,
    )
    with pytest.raises(Conflict, match="'lunch'.*unreachable"):
        check_order([day, lunch])
    night = rule(
        {"name": "night", "action": "do_not_record", "match": {"time_from": "19:00", "time_to": "07:00"}}, 9
    )
    check_order([day, night])  # overlapping windows, each with calls of its own
    disabled = Rule("off", "record", catch_all.match, enabled=False, id=10)
    check_order([disabled, hr])  # a rule switched off shadows nothing
