"""The key provider port: key-encryption keys (KEKs) that wrap per-recording data keys.

Envelope encryption: every recording has its own random 256-bit data key; only
its *wrapped* form (``kek_id`` + ciphertext) is stored in the catalog. A KMS or
HashiCorp Vault implementation fits the same interface later: the default
:class:`callvault.crypto.keyring.LocalKeyring` keeps KEKs in a 0600 file.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class WrappedKey:
    kek_id: str
    wrapped: bytes


@runtime_checkable
class KeyProvider(Protocol):
    def current_kek_id(self) -> str:
        """Id of the KEK new data keys are wrapped under."""

    def wrap(self, data_key: bytes, context: bytes) -> WrappedKey:
        """Wrap ``data_key`` under the current KEK, bound to ``context`` (the recording id)."""

    def unwrap(self, wrapped: WrappedKey, context: bytes) -> bytes:
        """Return the data key; raise KeyUnavailable if the KEK is gone, IntegrityError if tampered."""

    def rotate(self) -> str:
        """Create a new current KEK and return its id (old KEKs stay usable for unwrap)."""

    def retire(self, kek_id: str) -> None:
        """Forget an old KEK once nothing is wrapped under it."""

    def describe(self) -> str: ...
