"""Delivery signatures, URL checks and the SSRF guard, the retry schedule: no server needed."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from callvault.crypto.secret_box import SecretBox
from callvault.errors import IntegrityError
from callvault.runtime.webhooks.delivery import RetryPolicy
from callvault.services.webhook_signing import SignatureMismatch, signature_header, verify_signature
from callvault.services.webhook_targets import TargetRefused, check_url, is_public, resolve_target

SECRET = "whsec_test-secret-0123456789"
BODY = b'{"data":{"recording_id":"r1"},"id":"e1","type":"recording.sealed"}'


def test_signature_verifies_and_names_what_is_wrong() -> None:
    header = signature_header(SECRET, BODY, 1_700_000_000)
    assert header.startswith("t=1700000000,v1=") and len(header.split("v1=")[1]) == 64
    assert verify_signature(SECRET, header, BODY, now=1_700_000_010) == 1_700_000_000
    with pytest.raises(SignatureMismatch, match="does not match"):
        verify_signature(SECRET, header, BODY.replace(b"r1", b"r2"), now=1_700_000_010)
    with pytest.raises(SignatureMismatch, match="does not match"):
        verify_signature("another-secret-000000", header, BODY, now=1_700_000_010)
    # The timestamp is signed: moving it to dodge the replay window breaks the signature.
    moved = header.replace("t=1700000000", "t=1700000500")
    with pytest.raises(SignatureMismatch, match="does not match"):
        verify_signature(SECRET, moved, BODY, now=1_700_000_500)
    with pytest.raises(SignatureMismatch, match="away from now"):
        verify_signature(SECRET, header, BODY, now=1_700_000_000 + 301)
    with pytest.raises(SignatureMismatch, match="no timestamp"):
        verify_signature(SECRET, "v1=abc", BODY)
    # During a secret rotation a second v1 may come along; either matching is enough.
    rotated = signature_header(SECRET, BODY, 1_700_000_000) + ",v1=" + "0" * 64
    assert verify_signature(SECRET, rotated, BODY, now=1_700_000_000) == 1_700_000_000


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("ftp://example.com/x", "https://"),
        ("example.com/hook", "https://"),
        ("https:///hook", "no host"),
        ("https://user:pw@example.com/hook", "credentials"),
        ("https://example.com/hook#frag", "fragment"),
        ("https://example.com/ho ok", "spaces"),
        ("https://example.com:99999/", "malformed"),
        ("https://example.com/" + "a" * 2000, "longer"),
    ],
)
def test_malformed_urls_are_refused(url: str, problem: str) -> None:
    with pytest.raises(TargetRefused, match=problem):
        check_url(url)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/",
        "http://localhost/hook",
        "http://10.1.2.3/",
        "http://192.168.0.10/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://[fe80::1]/",
        "http://0.0.0.0/",
        "http://100.64.0.1/",
    ],
)
def test_non_public_targets_are_refused_unless_allowed(url: str) -> None:
    with pytest.raises(TargetRefused, match="non-public|does not resolve"):
        resolve_target(url, allow_private=False)


def test_loopback_is_allowed_when_the_setting_says_so_and_the_address_is_pinned() -> None:
    target = resolve_target("http://127.0.0.1:8080/hooks?a=1", allow_private=True)
    assert target.address == "127.0.0.1" and target.port == 8080
    assert target.connect_url == "http://127.0.0.1:8080/hooks?a=1"
    assert target.host_header == "127.0.0.1:8080"
    public = resolve_target("https://93.184.215.14/in", allow_private=False)
    assert public.connect_url == "https://93.184.215.14:443/in" and public.host_header == "93.184.215.14"


def test_public_addresses() -> None:
    assert is_public(ipaddress.ip_address("93.184.215.14"))
    assert is_public(ipaddress.ip_address("2606:4700::1111"))
    assert not is_public(ipaddress.ip_address("::ffff:10.0.0.1"))
    assert not is_public(ipaddress.ip_address("224.0.0.1"))


def test_backoff_doubles_with_jitter_honours_retry_after_and_ends() -> None:
    policy = RetryPolicy(max_attempts=5, base_seconds=2.0, max_seconds=10.0)
    assert [policy.delay(n, None, lambda: 0.0) for n in (1, 2, 3, 4)] == [1.0, 2.0, 4.0, 5.0]
    assert [policy.delay(n, None, lambda: 1.0) for n in (1, 2, 3, 4)] == [2.0, 4.0, 8.0, 10.0]
    assert policy.delay(5, None, lambda: 0.5) is None
    assert policy.delay(1, 7.0, lambda: 0.0) == 7.0  # the receiver asked for longer
    assert policy.delay(1, 600.0, lambda: 0.0) == 10.0  # but never past the cap


def test_secret_box_opens_only_what_it_sealed_for_the_same_record(tmp_path: Path) -> None:
    path = tmp_path / "webhook-secrets.key"
    box = SecretBox.from_file(path)
    assert path.stat().st_mode & 0o777 == 0o600
    sealed = box.seal(b"s3cret", "hook-1")
    assert b"s3cret" not in sealed
    assert SecretBox.from_file(path).open(sealed, "hook-1") == b"s3cret"
    with pytest.raises(IntegrityError, match="hook-2"):
        box.open(sealed, "hook-2")
    edited = sealed[:-1] + bytes([sealed[-1] ^ 1])
    with pytest.raises(IntegrityError):
        box.open(edited, "hook-1")
