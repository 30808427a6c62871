"""Public keys of retired manifest signing keys, so old signatures keep verifying.

``callvault keys rotate --signing`` replaces the private signing key; every
manifest and seal-log checkpoint signed before stays checkable because the old
*public* key is kept here, by key id. File format (``version`` 1)::

    {"format": "callvault-signing-public-keys", "version": 1,
     "keys": [{"id": "ed25519:…", "public_key": "-----BEGIN PUBLIC KEY-----…",
               "retired": "2026-05-01T12:00:00+00:00"}, …]}

The file is written like the keys (0600, atomic replace) because whoever can
add a public key here can make forged manifests verify. Each entry's id is
recomputed from its key on load; an entry whose id does not match is refused.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from callvault.crypto.secretfile import read_private, write_private
from callvault.errors import ConfigError

FORMAT = "callvault-signing-public-keys"
VERSION = 1


def key_id_of(public_key: Ed25519PublicKey) -> str:
    """Short stable name of a public key: ``ed25519:`` and 16 hex digits of its SHA-256."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "ed25519:" + hashlib.sha256(raw).hexdigest()[:16]


def public_pem(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


class RetiredSigningKeys:
    """The retired public keys at ``path`` (a missing file means none were retired)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> dict[str, Ed25519PublicKey]:
        if not self.path.exists():
            return {}
        where = f"retired signing keys {self.path}"
        try:
            doc = json.loads(read_private(self.path, "retired signing keys"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ConfigError(f"{where} is not valid JSON: {exc}") from None
        if not isinstance(doc, dict) or doc.get("format") != FORMAT or doc.get("version") != VERSION:
            raise ConfigError(f"{where} is not a version {VERSION} {FORMAT} file")
        entries = doc.get("keys")
        if not isinstance(entries, list):
            raise ConfigError(f"{where}: 'keys' must be a list")
        keys: dict[str, Ed25519PublicKey] = {}
        for number, entry in enumerate(entries):
            try:
                key = serialization.load_pem_public_key(str(entry["public_key"]).encode())
                key_id = str(entry["id"])
            except (KeyError, TypeError, ValueError, UnsupportedAlgorithm):
                raise ConfigError(f"{where}: entry #{number} is malformed") from None
            if not isinstance(key, Ed25519PublicKey) or key_id_of(key) != key_id:
                raise ConfigError(f"{where}: entry #{number} is not the Ed25519 key {key_id!r}")
            keys[key_id] = key
        return keys

    def add(self, key_id: str, key: Ed25519PublicKey) -> None:
        """Keep ``key`` (callers hold the signing key's lock, so no addition is lost)."""
        entries: list[dict[str, Any]] = []
        if self.path.exists():
            entries = json.loads(read_private(self.path, "retired signing keys"))["keys"]
        if any(e["id"] == key_id for e in entries):
            return
        entries.append(
            {
                "id": key_id,
                "public_key": public_pem(key).decode(),
                "retired": datetime.now(UTC).isoformat(timespec="seconds"),
            }
        )
        doc = {"format": FORMAT, "version": VERSION, "keys": entries}
        write_private(self.path, json.dumps(doc, indent=2).encode() + b"\n")
