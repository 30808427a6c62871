"""Login throttling against the catalog, with a hand-driven clock: windows, lock-outs, doubling."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from callvault.errors import TooManyAttempts
from callvault.services.context import ServiceContext
from callvault.services.login_throttle import LoginThrottle, ThrottlePolicy


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


POLICY = ThrottlePolicy(
    max_failures=3,
    max_address_failures=10,
    window=timedelta(seconds=60),
    lockout=timedelta(seconds=100),
)


def retry_after(throttle: LoginThrottle, user: str, address: str | None = "10.0.0.1") -> int | None:
    try:
        throttle.check(user, address)
    except TooManyAttempts as exc:
        return exc.retry_after
    return None


def test_failures_outside_the_sliding_window_do_not_count(ctx: ServiceContext) -> None:
    clock = Clock()
    throttle = LoginThrottle(ctx.catalog, POLICY, clock)
    throttle.failed("alice", "10.0.0.1")
    clock.advance(40)
    throttle.failed("alice", "10.0.0.1")
    clock.advance(30)  # the first failure is now 70 s old: outside the 60 s window
    assert throttle.failed("alice", "10.0.0.1") == []
    assert retry_after(throttle, "alice") is None
    lockouts = throttle.failed("alice", "10.0.0.1")  # three inside the window
    assert [(lock.scope, lock.seconds) for lock in lockouts] == [("user", 100)]
    assert retry_after(throttle, "alice") == 100


def test_lockouts_double_expire_and_a_success_resets_them(ctx: ServiceContext) -> None:
    clock = Clock()
    throttle = LoginThrottle(ctx.catalog, POLICY, clock)
    lengths = []
    for _ in range(3):
        for _ in range(3):
            started = throttle.failed("bob", None)
        lengths.append(started[0].seconds)
        assert retry_after(throttle, "bob", None) == started[0].seconds
        clock.advance(started[0].seconds - 1)
        assert retry_after(throttle, "bob", None) == 1
        clock.advance(1)
        assert retry_after(throttle, "bob", None) is None
    assert lengths == [100, 200, 400]
    throttle.succeeded("bob")
    for _ in range(3):
        started = throttle.failed("bob", None)
    assert started[0].seconds == 100


def test_the_lockout_is_capped_at_a_day(ctx: ServiceContext) -> None:
    clock = Clock()
    throttle = LoginThrottle(ctx.catalog, ThrottlePolicy(max_failures=1, lockout=timedelta(hours=10)), clock)
    seconds = []
    for _ in range(4):
        seconds.append(throttle.failed("carol", None)[0].seconds)
        clock.advance(seconds[-1])
    assert seconds == [36000, 72000, 86400, 86400]


def test_a_success_does_not_reset_the_address(ctx: ServiceContext) -> None:
    clock = Clock()
    throttle = LoginThrottle(ctx.catalog, ThrottlePolicy(max_failures=50, max_address_failures=4), clock)
    for i in range(3):
        throttle.failed(f"user{i}", "192.0.2.7")
    throttle.succeeded("mallory")
    assert [lock.scope for lock in throttle.failed("user9", "192.0.2.7")] == ["addr"]
    with pytest.raises(TooManyAttempts, match="too many failed logins"):
        throttle.check("anyone", "192.0.2.7")
    assert retry_after(throttle, "anyone", "192.0.2.8") is None
