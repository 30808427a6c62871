"""Key epochs: rotate the key-encryption key on a schedule so deletions survive backups.

Crypto-shredding forgets a recording's wrapped data key, but a restored catalog
backup brings the wrapped key back, and it would still unwrap under the same
key-encryption key (KEK). So KEKs are *epochs*: every
``CALLVAULT_KEY_EPOCH_HOURS`` (default 24) a new KEK becomes current, every
surviving data key is re-wrapped under it, and the old KEK is destroyed
(:class:`~callvault.services.key_rotation.KeyRotationService`, which retires a
KEK once nothing is wrapped under it). From then on a backup's wrapped key of a
recording deleted before the rotation opens nothing.

Keyring backups must therefore not be kept longer than the retention promise;
the README says so.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from callvault.crypto.keyprovider import KeyProvider
from callvault.db.catalog import Catalog
from callvault.db.models import Recording
from callvault.services.access import Principal
from callvault.services.key_rotation import KeyRotationService, RotationResult

log = logging.getLogger(__name__)


class KeyEpochs:
    def __init__(
        self,
        catalog: Catalog,
        keys: KeyProvider,
        rotation: KeyRotationService,
        epoch_hours: int,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self._catalog = catalog
        self._keys = keys
        self._rotation = rotation
        self._epoch = timedelta(hours=epoch_hours) if epoch_hours > 0 else None
        self._clock = clock or (lambda: datetime.now(UTC))

    def current_epoch_started(self) -> datetime | None:
        """When the current KEK was created (None if the key provider cannot tell)."""
        list_keks = getattr(self._keys, "list_keks", None)
        if list_keks is None:
            return None
        current = [k for k in list_keks() if k.current]
        if not current:
            return None
        created: datetime = current[0].created
        return created if created.tzinfo else created.replace(tzinfo=UTC)

    def due(self) -> bool:
        started = self.current_epoch_started()
        return self._epoch is not None and started is not None and self._clock() - started >= self._epoch

    def rotate_if_due(self) -> RotationResult | None:
        """Start a new epoch when the current one is over; None when it is not yet.

        Old epoch keys still waiting for calls in progress are retired here too.
        """
        if not self.due():
            self.retire_old()
            return None
        return self.rotate()

    def rotate(self) -> RotationResult:
        """New epoch now: re-wrap survivors, destroy the KEKs nothing is wrapped under any more."""
        result = self._rotation.rotate(Principal.system(), retire=False)
        result.retired = self.retire_old()
        log.info(
            "key epoch %s started: %d data keys re-wrapped, %d old epoch key(s) destroyed",
            result.new_kek_id,
            result.rewrapped,
            len(result.retired),
        )
        return result

    def retire_old(self) -> list[str]:
        """Destroy old epoch keys, unless a call recorded right now may have its spool key under one.

        A recording in progress wrapped its spool key (crash recovery) under the KEK current
        when it started; its data key is wrapped only at sealing, under the new epoch. So old
        epoch keys wait until every session begun before the current epoch has ended.
        """
        started = self.current_epoch_started()
        if started is not None and self._live_sessions_since_before(started):
            return []
        return self._rotation.retire_unused(Principal.system())

    def _live_sessions_since_before(self, epoch_started: datetime) -> bool:
        with self._catalog.read() as session:
            oldest = session.scalar(
                select(func.min(Recording.created_at)).where(Recording.status == "recording")
            )
        if oldest is None:
            return False
        oldest = oldest if oldest.tzinfo else oldest.replace(tzinfo=UTC)
        return bool(oldest < epoch_started)
