"""``callvault keys rotate``: new key-encryption key, every data key re-wrapped, audio untouched.

Re-wrapping touches only the small wrapped keys in the catalog; the
encrypted objects are never rewritten. Old KEKs are retired once nothing is
wrapped under them, so a leaked old keyring backup stops being useful.

``callvault keys rotate --signing`` replaces the manifest signing key instead.
Nothing is re-signed: manifests and seal log checkpoints name the key that
signed them, and the old public key is kept (``signing-key.public-keys.json``)
so they keep verifying; everything signed from then on uses the new key.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select

from callvault.crypto.keyprovider import KeyProvider, WrappedKey
from callvault.crypto.signing import ManifestSigner
from callvault.db.catalog import Catalog
from callvault.db.models import Recording
from callvault.services.access import Action, Principal, require
from callvault.services.audit import AccessLog

_BATCH = 200


@dataclass
class RotationResult:
    new_kek_id: str
    rewrapped: int
    retired: list[str]


@dataclass
class SigningRotationResult:
    old_key_id: str
    new_key_id: str


class KeyRotationService:
    def __init__(
        self, catalog: Catalog, keys: KeyProvider, access_log: AccessLog, signer: ManifestSigner
    ) -> None:
        self._catalog = catalog
        self._keys = keys
        self._log = access_log
        self._signer = signer

    def rotate_signing(self, principal: Principal) -> SigningRotationResult:
        require(principal, Action.KEYS_ROTATE)
        old_id, new_id = self._signer.rotate()
        self._log.record(principal, "signing_key_rotate", detail=f"{old_id} retired, {new_id} current")
        return SigningRotationResult(old_id, new_id)

    def rotate(
        self,
        principal: Principal,
        progress: Callable[[int, int], None] | None = None,
        retire: bool = True,
    ) -> RotationResult:
        require(principal, Action.KEYS_ROTATE)
        new_id = self._keys.rotate()
        with self._catalog.read() as session:
            ids = list(
                session.scalars(
                    select(Recording.id).where(Recording.wrapped_key.is_not(None), Recording.kek_id != new_id)
                )
            )
        done = 0
        old_keks: set[str] = set()
        for start in range(0, len(ids), _BATCH):
            with self._catalog.write() as session:
                for recording in session.scalars(
                    select(Recording).where(Recording.id.in_(ids[start : start + _BATCH]))
                ):
                    assert recording.wrapped_key is not None and recording.kek_id is not None
                    context = recording.id.encode()
                    data_key = self._keys.unwrap(WrappedKey(recording.kek_id, recording.wrapped_key), context)
                    rewrapped = self._keys.wrap(data_key, context)
                    old_keks.add(recording.kek_id)
                    recording.kek_id, recording.wrapped_key = rewrapped.kek_id, rewrapped.wrapped
                    done += 1
            if progress:
                progress(done, len(ids))
        retired = self._retire_unused(new_id) if retire else []
        self._log.record(principal, "keys_rotate", detail=f"new KEK {new_id}, {done} data keys re-wrapped")
        return RotationResult(new_id, done, retired)

    def retire_unused(self, principal: Principal) -> list[str]:
        """Retire every non-current KEK nothing is wrapped under any more (key epochs)."""
        require(principal, Action.KEYS_ROTATE)
        retired = self._retire_unused(self._keys.current_kek_id())
        if retired:
            self._log.record(principal, "keys_retire", detail=", ".join(retired))
        return retired

    def _retire_unused(self, current: str) -> list[str]:
        with self._catalog.read() as session:
            # A crypto-shredded recording keeps its kek_id but no wrapped key: it holds nothing.
            still_used = set(
                session.scalars(
                    select(Recording.kek_id)
                    .where(Recording.kek_id.is_not(None), Recording.wrapped_key.is_not(None))
                    .distinct()
                )
            )
        retired = []
        for kek_id in self._retirable(current, still_used):
            self._keys.retire(kek_id)
            retired.append(kek_id)
        return retired

    def _retirable(self, current: str, still_used: set[str | None]) -> list[str]:
        list_keks = getattr(self._keys, "list_keks", None)
        if list_keks is None:
            return []
        return [k.id for k in list_keks() if k.id != current and k.id not in still_used]
