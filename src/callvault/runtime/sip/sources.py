"""Who may talk SIP to the recorder: the source allow-list (``CALLVAULT_SIP_ALLOWED_SOURCES``).

Anyone who can reach the SIP port could otherwise create recordings, so every
request is checked against the configured addresses and networks before it
touches any state (transactions, dialogs, the catalogue). A request from
elsewhere is answered 403 with a Warning and counted in
``callvault_sip_refused_source_total`` (an ACK, which takes no answer and may be the ACK
of that very 403, is dropped uncounted).

The default is loopback only, which is what the default SIP host (loopback)
can be reached from anyway: ``callvault demo`` and local tests work, and a
deployment that opens the SIP host to the network must also say which SBCs
may use it. ``any`` opts out explicitly.

The check runs for every request, so its result is cached per address (the
cache is bounded: a spoofed-source flood cannot grow it without limit).
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Sequence

from callvault.runtime.sip.metrics import count_refused_source
from callvault.settings import Network

log = logging.getLogger(__name__)

CACHE_LIMIT = 4096
LOGGED_LIMIT = 1024


class SourcePolicy:
    def __init__(self, allowed: Sequence[Network]) -> None:
        self._allowed = tuple(allowed)
        self._cache: dict[str, bool] = {}
        self._logged: set[str] = set()

    @property
    def allows_any(self) -> bool:
        return any(network.prefixlen == 0 for network in self._allowed)

    @property
    def allows_non_loopback(self) -> bool:
        return any(not network.is_loopback for network in self._allowed)

    def allows(self, host: str) -> bool:
        known = self._cache.get(host)
        if known is not None:
            return known
        verdict = self._check(host)
        if len(self._cache) >= CACHE_LIMIT:
            self._cache.clear()
        self._cache[host] = verdict
        return verdict

    def _check(self, host: str) -> bool:
        try:
            address = ipaddress.ip_address(host.split("%", 1)[0])
        except ValueError:
            return False  # not an IP address (a Unix socket?): never allowed
        # A dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d.
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address in network for network in self._allowed)

    def refused(self, host: str, what: str) -> None:
        """Count a refused request and log the first one of each address (a flood must not flood the log)."""
        count_refused_source()
        if host in self._logged:
            log.debug("refused %s from %s: source not allowed", what, host)
            return
        if len(self._logged) < LOGGED_LIMIT:
            self._logged.add(host)
        log.warning(
            "refused %s from %s with 403: not in CALLVAULT_SIP_ALLOWED_SOURCES (further ones are not logged)",
            what,
            host,
        )
