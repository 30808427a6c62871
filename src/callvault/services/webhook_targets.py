"""Where a webhook may be sent: URL checks and the guard against server-side request forgery.

A webhook makes the recorder send requests to an address an administrator
typed in; left unguarded, that reaches what only the server can reach (cloud
metadata at 169.254.169.254, an admin port on localhost, the office LAN).
So, unless ``CALLVAULT_WEBHOOK_ALLOW_PRIVATE_TARGETS`` is set, a target must
resolve only to public (globally routable) addresses, IPv4-mapped IPv6
forms included. The check runs when the subscription is created and again
before every delivery, and the delivery connects to the very address that was
checked (:class:`PinnedTarget`): a DNS answer that changes between check and
connect (DNS rebinding) cannot redirect it. Redirects are never followed.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

from callvault.errors import InvalidInput

MAX_URL_LENGTH = 2000
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class TargetRefused(InvalidInput):
    """The URL is malformed, does not resolve, or points at a non-public address."""


@dataclass(frozen=True)
class PinnedTarget:
    """A checked URL and the address to connect to (``Host`` and TLS name stay ``host``)."""

    url: str
    scheme: str
    host: str
    port: int
    address: str

    @property
    def connect_url(self) -> str:
        """The URL with the host replaced by the checked address."""
        parts = urlsplit(self.url)
        literal = f"[{self.address}]" if ":" in self.address else self.address
        return SplitResult(
            parts.scheme, f"{literal}:{self.port}", parts.path or "/", parts.query, ""
        ).geturl()

    @property
    def host_header(self) -> str:
        default = 443 if self.scheme == "https" else 80
        name = f"[{self.host}]" if ":" in self.host else self.host
        return name if self.port == default else f"{name}:{self.port}"


def check_url(url: str) -> SplitResult:
    """The URL's parts, if it is an absolute http(s) URL a webhook may use."""
    if len(url) > MAX_URL_LENGTH:
        raise TargetRefused(f"the URL is longer than {MAX_URL_LENGTH} characters")
    if any(ord(c) < 33 or ord(c) == 127 for c in url):
        raise TargetRefused("the URL contains spaces or control characters")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError as exc:
        raise TargetRefused(f"the URL is malformed: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise TargetRefused("the URL must start with https:// (or http://)")
    if not parts.hostname:
        raise TargetRefused("the URL has no host")
    if parts.username is not None or parts.password is not None:
        raise TargetRefused("the URL must not carry credentials (user:password@); sign with the secret")
    if parts.fragment:
        raise TargetRefused("the URL must not have a #fragment")
    return parts


def is_public(address: Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


def resolve_target(url: str, allow_private: bool) -> PinnedTarget:
    """Check ``url``, resolve its host and pick the address to connect to (blocking: DNS)."""
    parts = check_url(url)
    host = parts.hostname
    assert host is not None
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise TargetRefused(f"the host {host!r} does not resolve: {exc}") from None
    addresses = list(dict.fromkeys(ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos))
    if not addresses:
        raise TargetRefused(f"the host {host!r} does not resolve")
    if not allow_private:
        # Every answer must be public: one private answer among public ones is a rebinding setup.
        refused = [a for a in addresses if not is_public(a)]
        if refused:
            raise TargetRefused(
                f"the host {host!r} resolves to the non-public address {refused[0]}; webhooks go to "
                "public addresses only unless CALLVAULT_WEBHOOK_ALLOW_PRIVATE_TARGETS is set"
            )
    return PinnedTarget(url, parts.scheme, host, port, str(addresses[0]))
