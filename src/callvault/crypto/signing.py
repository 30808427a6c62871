"""The server's Ed25519 signing key for recording manifests.

A manifest (hashes, times, participants of a recording) is serialised with
:func:`canonical_json` and signed, so an exported recording can be checked
years later with nothing but the public key. The private key is a PKCS#8 PEM
file with mode 0600, created on first use; two processes creating it at once
end up sharing one key (see :func:`callvault.crypto.secretfile.write_private`).
Every signature is checked by key id (it travels in the manifest), against the
current key or a retired one (:mod:`callvault.crypto.retired_keys`).
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from callvault.crypto.retired_keys import RetiredSigningKeys, key_id_of, public_pem
from callvault.crypto.secretfile import PRIVATE_MODE, ensure_private_dir, read_private, write_private
from callvault.errors import ConfigError, InvalidInput

log = logging.getLogger(__name__)


def canonical_json(obj: Mapping[str, Any]) -> bytes:
    """Sorted keys, no whitespace, UTF-8, no NaN/Infinity: the bytes that get signed."""
    try:
        text = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"manifest cannot be serialised canonically: {exc}") from None
    return text.encode("utf-8")


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
    """Ed25519 private key kept in a 0600 PEM file at ``path``, plus the retired public keys.

    The key file is created if missing unless ``create`` is False (the vault
    already holds recordings signed by the lost key: a silently new key would
    leave them unverifiable, so :class:`ConfigError` is raised instead).
    :meth:`rotate` keeps the old public key in ``<stem>.public-keys.json`` next
    to the key; every process re-reads the key file when it changed on disk, so
    a server keeps signing with the current key after a CLI rotation.
    """

    def __init__(self, path: str | os.PathLike[str], *, create: bool = True) -> None:
        self.path = Path(path)
        self._lock_path = self.path.with_name(self.path.name + ".lock")
        self.retired = RetiredSigningKeys(self.path.with_name(self.path.stem + ".public-keys.json"))
        if not self.path.exists():
            if not create:
                raise ConfigError(
                    f"manifest signing key {self.path} is missing but the vault holds recordings "
                    "signed with it; restore it (and keyring.json) from backup. Refusing to start "
                    "with a new key, which would leave every existing manifest unverifiable."
                )
            if write_private(self.path, _new_private_pem(), replace=False):
                log.info("created manifest signing key %s", self.path)
        self._stat: tuple[int, int, int, int] | None = None
        self._key = self._load()
        self._retired: dict[str, Ed25519PublicKey] = self.retired.load()

    def _file_stat(self) -> tuple[int, int, int, int]:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            raise ConfigError(f"manifest signing key {self.path} disappeared") from None
        return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)

    def _load(self) -> Ed25519PrivateKey:
        self._stat = self._file_stat()
        pem = read_private(self.path, "signing key")
        try:
            key = serialization.load_pem_private_key(pem, password=None)
        except (ValueError, TypeError, UnsupportedAlgorithm):
            raise ConfigError(f"signing key {self.path} is not an unencrypted PEM private key") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise ConfigError(f"signing key {self.path} is {type(key).__name__}, not Ed25519")
        return key

    def _current(self) -> Ed25519PrivateKey:
        if self._file_stat() != self._stat:
            self._key = self._load()
        return self._key

    @property
    def key_id(self) -> str:
        return key_id_of(self._current().public_key())

    def sign(self, data: bytes) -> bytes:
        """64-byte Ed25519 signature of ``data`` by the current key."""
        return self._current().sign(data)

    def current_key(self) -> tuple[str, Callable[[bytes], bytes]]:
        """The current key's id and its signing function, bound together so that a
        rotation between naming the key (inside a manifest) and signing cannot split them."""
        key = self._current()
        return key_id_of(key.public_key()), key.sign

    def sign_manifest(self, manifest: Mapping[str, Any]) -> bytes:
        return self.sign(canonical_json(manifest))

    def public_key_pem(self) -> bytes:
        return public_pem(self._current().public_key())

    def public_key(self, key_id: str) -> Ed25519PublicKey | None:
        """The current or a retired public key by id; None if this vault never had it."""
        current = self._current().public_key()
        if key_id_of(current) == key_id:
            return current
        if key_id not in self._retired:
            self._retired = self.retired.load()  # another process may have rotated
        return self._retired.get(key_id)

    def verify(self, key_id: str, data: bytes, signature: bytes) -> bool:
        """True if the key ``key_id`` (current or retired) signed ``data``; False also for an unknown key."""
        key = self.public_key(key_id)
        if key is None:
            return False
        try:
            key.verify(signature, data)
        except InvalidSignature:
            return False
        return True

    def rotate(self) -> tuple[str, str]:
        """Replace the private key; the old public key is kept first. Returns (old id, new id)."""
        ensure_private_dir(self.path.parent)
        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, PRIVATE_MODE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            old = self._load().public_key()
            # Old public key first: a crash between the two writes leaves an extra
            # retired key, never a signature nobody can check.
            self.retired.add(key_id_of(old), old)
            write_private(self.path, _new_private_pem())
            self._key = self._load()
        finally:
            os.close(fd)  # closing releases the flock
        self._retired = self.retired.load()
        new_id = key_id_of(self._key.public_key())
        log.info("rotated manifest signing key %s: %s retired, %s current", self.path, key_id_of(old), new_id)
        return key_id_of(old), new_id

    def __repr__(self) -> str:
        return f"ManifestSigner({str(self.path)!r}, key_id={self.key_id!r})"


def _new_private_pem() -> bytes:
    return Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
