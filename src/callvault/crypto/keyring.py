"""The default key provider: key-encryption keys in a local 0600 JSON file.

File format (``version`` 1)::

    {"format": "callvault-keyring", "version": 1,
     "keks": [{"id": "kek-…", "key": "<base64 of 32 bytes>",
               "created": "2024-05-01T12:00:00+00:00", "current": true}, …]}

A wrapped data key is ``0x01 || nonce (12) || AES-256-GCM(data key) || tag``
under the KEK, with AAD binding the KEK id and the caller's context (the
recording id), so a wrapped key copied onto another recording fails to unwrap.

The API server and the CLI may open the same file at once. Every change
(create, rotate, retire) happens under an exclusive ``flock`` on
``<file>.lock``, re-reads the file inside the lock and replaces it atomically,
so concurrent rotations never lose a key. Readers need no lock (rename is
atomic); they reload when the file changed on disk, and once more before
declaring a KEK unknown. A file that group or others may read is refused with
:class:`ConfigError` (see :mod:`callvault.crypto.secretfile`). Key material is
never logged and never appears in a ``repr``.
"""

from __future__ import annotations

import base64
import binascii
import fcntl
import json
import logging
import os
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from callvault.crypto.keyprovider import WrappedKey
from callvault.crypto.secretfile import PRIVATE_MODE, ensure_private_dir, read_private, write_private
from callvault.errors import ConfigError, Conflict, IntegrityError, InvalidInput, KeyUnavailable, NotFound

log = logging.getLogger(__name__)

FORMAT = "callvault-keyring"
VERSION = 1
KEK_SIZE = 32
_WRAP_VERSION = b"\x01"
_NONCE_SIZE = 12
_WRAPPED_SIZE = 1 + _NONCE_SIZE + KEK_SIZE + 16
_AAD_LABEL = b"callvault/kek-wrap/v1\x00"


@dataclass(frozen=True)
class Kek:
    id: str
    key: bytes = field(repr=False)
    created: datetime
    current: bool


@dataclass(frozen=True)
class KekInfo:
    """What may be shown about a KEK (for ``callvault keys list``): never the key."""

    id: str
    created: datetime
    current: bool


def _new_kek_id() -> str:
    return "kek-" + secrets.token_hex(8)


def _wrap_aad(kek_id: str, context: bytes) -> bytes:
    return _AAD_LABEL + kek_id.encode() + b"\x00" + context


class LocalKeyring:
    """:class:`~callvault.crypto.keyprovider.KeyProvider` backed by a 0600 file at ``path``.

    The file (and its directory, 0700) is created with one current KEK on first use,
    unless ``create`` is False: when the vault already holds recordings, a new
    keyring could unwrap none of their data keys, so a missing file is a
    :class:`ConfigError` instead of a silent fresh start.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        clock: Callable[[], datetime] | None = None,
        create: bool = True,
    ) -> None:
        self.path = Path(path)
        self._lock_path = self.path.with_name(self.path.name + ".lock")
        self._clock = clock or (lambda: datetime.now(UTC))
        self._keks: dict[str, Kek] = {}
        self._signature: tuple[int, int, int, int] | None = None
        if not self.path.exists():
            if not create:
                raise ConfigError(
                    f"keyring {self.path} is missing but the vault holds recordings encrypted under "
                    "it; restore it from backup. Refusing to start with a new keyring, which could "
                    "decrypt none of them."
                )
            with self._locked():
                if not self.path.exists():
                    kek = self._new_kek(current=True)
                    self._write({kek.id: kek})
                    log.info("created keyring %s with KEK %s", self.path, kek.id)
        self._refresh()

    # -- file handling -------------------------------------------------------

    @contextmanager
    def _locked(self) -> Iterator[None]:
        ensure_private_dir(self.path.parent)
        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, PRIVATE_MODE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the flock

    def _stat_signature(self) -> tuple[int, int, int, int]:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            raise ConfigError(f"keyring {self.path} disappeared") from None
        return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)

    def _refresh(self, force: bool = False) -> None:
        signature = self._stat_signature()
        if force or signature != self._signature:
            self._keks = self._parse(read_private(self.path, "keyring"))
            self._signature = signature

    def _parse(self, raw: bytes) -> dict[str, Kek]:
        where = f"keyring {self.path}"
        try:
            doc = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ConfigError(f"{where} is not valid JSON: {exc}") from None
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise ConfigError(f"{where} is not a callvault keyring file")
        if doc.get("version") != VERSION:
            raise ConfigError(f"{where} has unsupported version {doc.get('version')!r}")
        keks: dict[str, Kek] = {}
        entries = doc.get("keks")
        if not isinstance(entries, list):
            raise ConfigError(f"{where}: 'keks' must be a list")
        for number, entry in enumerate(entries):
            try:
                kek = Kek(
                    id=str(entry["id"]),
                    key=base64.b64decode(entry["key"], validate=True),
                    created=datetime.fromisoformat(entry["created"]),
                    current=bool(entry["current"]),
                )
            except (KeyError, TypeError, ValueError, binascii.Error):
                # The message must not echo the entry: it holds key material.
                raise ConfigError(f"{where}: KEK entry #{number} is malformed") from None
            if len(kek.key) != KEK_SIZE:
                raise ConfigError(f"{where}: KEK {kek.id} is not {KEK_SIZE} bytes")
            if kek.id in keks:
                raise ConfigError(f"{where}: KEK id {kek.id} appears twice")
            keks[kek.id] = kek
        currents = [k.id for k in keks.values() if k.current]
        if len(currents) != 1:
            raise ConfigError(f"{where} must mark exactly one KEK current, found {len(currents)}")
        return keks

    def _write(self, keks: dict[str, Kek]) -> None:
        doc: dict[str, Any] = {
            "format": FORMAT,
            "version": VERSION,
            "keks": [
                {
                    "id": k.id,
                    "key": base64.b64encode(k.key).decode(),
                    "created": k.created.isoformat(),
                    "current": k.current,
                }
                for k in keks.values()
            ],
        }
        write_private(self.path, json.dumps(doc, indent=2).encode() + b"\n")
        self._keks = keks
        self._signature = self._stat_signature()

    def _new_kek(self, *, current: bool) -> Kek:
        return Kek(_new_kek_id(), secrets.token_bytes(KEK_SIZE), self._clock(), current)

    # -- KeyProvider ---------------------------------------------------------

    def _current(self) -> Kek:
        self._refresh()
        return next(k for k in self._keks.values() if k.current)

    def current_kek_id(self) -> str:
        return self._current().id

    def wrap(self, data_key: bytes, context: bytes) -> WrappedKey:
        if len(data_key) != KEK_SIZE:
            raise InvalidInput(f"data key must be {KEK_SIZE} bytes, got {len(data_key)}")
        kek = self._current()
        nonce = secrets.token_bytes(_NONCE_SIZE)
        sealed = AESGCM(kek.key).encrypt(nonce, data_key, _wrap_aad(kek.id, context))
        return WrappedKey(kek_id=kek.id, wrapped=_WRAP_VERSION + nonce + sealed)

    def unwrap(self, wrapped: WrappedKey, context: bytes) -> bytes:
        self._refresh()
        kek = self._keks.get(wrapped.kek_id)
        if kek is None:
            self._refresh(force=True)
            kek = self._keks.get(wrapped.kek_id)
        if kek is None:
            raise KeyUnavailable(f"KEK {wrapped.kek_id!r} is not in keyring {self.path} (retired or foreign)")
        blob = wrapped.wrapped
        if len(blob) != _WRAPPED_SIZE or blob[:1] != _WRAP_VERSION:
            raise IntegrityError(f"wrapped key under KEK {kek.id} is malformed ({len(blob)} bytes)")
        nonce, sealed = blob[1 : 1 + _NONCE_SIZE], blob[1 + _NONCE_SIZE :]
        try:
            return AESGCM(kek.key).decrypt(nonce, sealed, _wrap_aad(kek.id, context))
        except InvalidTag:
            raise IntegrityError(
                f"wrapped key under KEK {kek.id} failed authentication (tampered or wrong context)"
            ) from None

    def rotate(self) -> str:
        with self._locked():
            self._refresh(force=True)
            new = self._new_kek(current=True)
            keks = {kid: Kek(k.id, k.key, k.created, False) for kid, k in self._keks.items()}
            keks[new.id] = new
            self._write(keks)
        log.info("rotated keyring %s: new current KEK %s", self.path, new.id)
        return new.id

    def retire(self, kek_id: str) -> None:
        with self._locked():
            self._refresh(force=True)
            kek = self._keks.get(kek_id)
            if kek is None:
                raise NotFound(f"KEK {kek_id!r} is not in keyring {self.path}")
            if kek.current:
                raise Conflict(f"KEK {kek_id} is current; rotate before retiring it")
            self._write({kid: k for kid, k in self._keks.items() if kid != kek_id})
        log.info("retired KEK %s from keyring %s", kek_id, self.path)

    def describe(self) -> str:
        current = self._current()
        return f"local keyring {self.path} ({len(self._keks)} KEKs, current {current.id})"

    # -- inspection ----------------------------------------------------------

    def list_keks(self) -> list[KekInfo]:
        """KEKs oldest first, without key material."""
        self._refresh()
        return sorted(
            (KekInfo(k.id, k.created, k.current) for k in self._keks.values()), key=lambda i: i.created
        )

    def __repr__(self) -> str:
        return f"LocalKeyring({str(self.path)!r})"
