"""Key epochs: a catalog and vault restored from backup cannot decrypt audio deleted before a rotation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from callvault.crypto.envelope import EncryptedObjectReader
from callvault.crypto.keyprovider import WrappedKey
from callvault.db.models import Recording
from callvault.errors import KeyUnavailable
from callvault.services.context import ServiceContext
from callvault.services.key_epochs import KeyEpochs
from tests.support.people import ADMIN
from tests.support.vault_calls import seal_call


def test_restored_backup_of_a_deleted_recording_no_longer_decrypts_after_the_epoch_rotates(
    ctx: ServiceContext,
) -> None:
    doomed, survivor = seal_call(ctx), seal_call(ctx)
    with ctx.catalog.read() as session:
        backup = session.get(Recording, doomed)
        assert backup is not None and backup.wrapped_key is not None and backup.kek_id is not None
        backup_object = ctx.blobs.get(str(backup.object_key))
    backup_key = WrappedKey(backup.kek_id, backup.wrapped_key)
    # The backup still opens before anything happens (the scenario is real, not vacuous).
    assert len(ctx.keys.unwrap(backup_key, doomed.encode())) == 32

    ctx.deletion.delete(ADMIN, [doomed], "erasure", "test")
    # Deleting alone is not enough: the backup's wrapped key is under a KEK that still exists.
    data_key = ctx.keys.unwrap(backup_key, doomed.encode())
    assert data_key

    result = ctx.key_epochs.rotate()
    assert backup.kek_id in result.retired
    with pytest.raises(KeyUnavailable):
        ctx.keys.unwrap(backup_key, doomed.encode())
    assert not ctx.blobs.exists(str(backup.object_key))
    # A survivor was re-wrapped under the new epoch key and still plays.
    audio = ctx.playback.open_audio(ADMIN, survivor)
    assert audio.size > 0
    # The restored object is intact: only its data key, now unrecoverable, would open it.
    reader = EncryptedObjectReader(lambda s, n: backup_object[s : s + n], data_key, doomed)
    assert len(reader.read(0, 16)) == 16


def test_epoch_rotates_only_when_its_time_is_up(ctx: ServiceContext) -> None:
    now = [datetime.now(UTC)]
    epochs = KeyEpochs(ctx.catalog, ctx.keys, ctx.key_rotation, 24, clock=lambda: now[0])
    before = ctx.keys.current_kek_id()
    assert epochs.rotate_if_due() is None
    now[0] += timedelta(hours=25)
    rotated = epochs.rotate_if_due()
    assert rotated is not None and ctx.keys.current_kek_id() == rotated.new_kek_id != before
    assert (
        KeyEpochs(
            ctx.catalog, ctx.keys, ctx.key_rotation, 0, clock=lambda: now[0] + timedelta(days=900)
        ).rotate_if_due()
        is None
    )
