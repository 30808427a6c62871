"""Secrets the server must use again later (webhook signing secrets), sealed at rest.

A webhook's HMAC secret has to be read back to sign every delivery, so it
cannot be hashed like a password. It is sealed with AES-256-GCM under a key
kept in its own owner-only file in the data directory (not in the catalog):
a catalog dump or backup alone does not give the secrets away. The record's
id is bound in as associated data, so a sealed secret copied onto another
row does not open.

Layout: 12-byte random nonce | ciphertext | 16-byte tag.
"""

from __future__ import annotations

import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from callvault.crypto.secretfile import read_private, write_private
from callvault.errors import ConfigError, IntegrityError

KEY_SIZE = 32
NONCE_SIZE = 12


class SecretBox:
    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_SIZE:
            raise ConfigError(f"a secret box key has {KEY_SIZE} bytes, not {len(key)}")
        self._aead = AESGCM(key)

    @classmethod
    def from_file(cls, path: Path) -> SecretBox:
        """Open the key file, creating it (mode 0600) on first use."""
        if not path.exists():
            # replace=False: two processes starting at once share the first key written.
            write_private(path, secrets.token_bytes(KEY_SIZE), replace=False)
        return cls(read_private(path, "secret key file"))

    def seal(self, plaintext: bytes, bound_to: str) -> bytes:
        nonce = secrets.token_bytes(NONCE_SIZE)
        return nonce + self._aead.encrypt(nonce, plaintext, bound_to.encode())

    def open(self, sealed: bytes, bound_to: str) -> bytes:
        try:
            return self._aead.decrypt(sealed[:NONCE_SIZE], sealed[NONCE_SIZE:], bound_to.encode())
        except (InvalidTag, ValueError):
            raise IntegrityError(
                f"a sealed secret of {bound_to} does not open (edited, moved, or another key file)"
            ) from None
