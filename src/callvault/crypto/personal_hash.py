"""Keyed hashes of personal data, for tombstones and deletion certificates.

A deleted recording and an erasure certificate must still say *whose* data went
(so a later request for the same person can be answered) without keeping the
data. A plain SHA-256 of a phone number is no protection: the number space is
small enough to enumerate. HMAC-SHA256 under a 256-bit key kept in the data
directory (``personal-hash.key``, mode 0600) can only be recomputed by this
installation. Callers normalise first (numbers to E.164, emails lower-case), so
every spelling of one identifier gives one hash; the kind is part of the input
so a customer id that looks like a number never collides with a phone number.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from pathlib import Path

from callvault.crypto.secretfile import read_private, write_private
from callvault.errors import ConfigError

KEY_NAME = "personal-hash.key"
_KEY_SIZE = 32


class PersonalHasher:
    """HMAC-SHA256 of ``kind:value`` under the installation's personal-data key."""

    def __init__(self, path: Path) -> None:
        if not path.exists():
            # write_private(replace=False) keeps a key another process created first.
            write_private(path, secrets.token_bytes(_KEY_SIZE), replace=False)
        key = read_private(path, "personal-data hash key")
        if len(key) != _KEY_SIZE:
            raise ConfigError(f"personal-data hash key {path} is not {_KEY_SIZE} bytes")
        self._key = key

    def digest(self, kind: str, normalised_value: str) -> str:
        message = f"{kind}:{normalised_value}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def __repr__(self) -> str:
        return "PersonalHasher(<key>)"
