"""The server's Ed25519 signing key for recording manifests.

A manifest (hashes, times, participants of a recording) is serialised with
:func:`canonical_json` and signed, so an exported recording can be checked
years later with nothing but the public key. The private key is a PKCS#8 PEM
file with mode 0600, created on first use; two processes creating it at once
end up sharing one key (see :func:`callvault.crypto.secretfile.write_private`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from callvault.crypto.secretfile import read_private, write_private
from callvault.errors import ConfigError, InvalidInput

log = logging.getLogger(__name__)


def canonical_json(obj: Mapping[str, Any]) -> bytes:
    """Sorted keys, no whitespace, UTF-8, no NaN/Infinity: the bytes that get signed."""
    try:
        text = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"manifest cannot be serialised canonically: {exc}") from None
    return text.encode("utf-8")


def _raw_public(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id_of(public_key: Ed25519PublicKey) -> str:
    """Short stable name of a public key: ``ed25519:`` and 16 hex digits of its SHA-256."""
    return "ed25519:" + hashlib.sha256(_raw_public(public_key)).hexdigest()[:16]


def load_public_key(public_key_pem: bytes) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(public_key_pem)
    except (ValueError, UnsupportedAlgorithm):
        raise InvalidInput("public key is not a valid PEM public key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise InvalidInput(f"public key is {type(key).__name__}, not Ed25519")
    return key


def verify_signature(public_key_pem: bytes, data: bytes, signature: bytes) -> bool:
    """True if ``signature`` is the key's Ed25519 signature of ``data``.

    A malformed or non-Ed25519 key raises InvalidInput: that is a different
    problem from a signature that does not match.
    """
    key = load_public_key(public_key_pem)
    try:
        key.verify(signature, data)
    except InvalidSignature:
        return False
    return True


class ManifestSigner:
    """Ed25519 private key kept in a 0600 PEM file at ``path`` (created if missing)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        if not self.path.exists():
            pem = Ed25519PrivateKey.generate().private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            if write_private(self.path, pem, replace=False):
                log.info("created manifest signing key %s", self.path)
        self._key = self._load()
        self.key_id = key_id_of(self._key.public_key())

    def _load(self) -> Ed25519PrivateKey:
        pem = read_private(self.path, "signing key")
        try:
            key = serialization.load_pem_private_key(pem, password=None)
        except (ValueError, TypeError, UnsupportedAlgorithm):
            raise ConfigError(f"signing key {self.path} is not an unencrypted PEM private key") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise ConfigError(f"signing key {self.path} is {type(key).__name__}, not Ed25519")
        return key

    def sign(self, data: bytes) -> bytes:
        """64-byte Ed25519 signature of ``data``."""
        return self._key.sign(data)

    def sign_manifest(self, manifest: Mapping[str, Any]) -> bytes:
        return self.sign(canonical_json(manifest))

    def public_key_pem(self) -> bytes:
        return self._key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def __repr__(self) -> str:
        return f"ManifestSigner({str(self.path)!r}, key_id={self.key_id!r})"
