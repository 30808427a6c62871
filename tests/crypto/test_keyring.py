"""LocalKeyring: the 0600 KEK file, wrap/unwrap, rotation, retirement, concurrency."""

from __future__ import annotations

import base64
import json
import logging
import os
import stat
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest

from callvault.crypto.envelope import new_data_key
from callvault.crypto.keyprovider import KeyProvider, WrappedKey
from callvault.crypto.keyring import LocalKeyring
from callvault.errors import ConfigError, Conflict, IntegrityError, KeyUnavailable, NotFound

CONTEXT = b"recording:0001"


def mode_of(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def key_material(path: Path) -> list[str]:
    return [entry["key"] for entry in json.loads(path.read_text())["keks"]]


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "secrets" / "keyring.json"


def test_created_on_first_use_owner_only(path: Path) -> None:
    keyring = LocalKeyring(path)
    assert isinstance(keyring, KeyProvider)
    assert mode_of(path) == 0o600
    assert mode_of(path.parent) == 0o700
    assert mode_of(path.with_name("keyring.json.lock")) == 0o600
    doc = json.loads(path.read_text())
    assert [e["id"] for e in doc["keks"]] == [keyring.current_kek_id()]
    assert len(base64.b64decode(doc["keks"][0]["key"])) == 32


def test_reopening_keeps_the_same_kek(path: Path) -> None:
    first = LocalKeyring(path)
    wrapped = first.wrap(data_key := new_data_key(), CONTEXT)
    second = LocalKeyring(path)
    assert second.current_kek_id() == first.current_kek_id()
    assert second.unwrap(wrapped, CONTEXT) == data_key


def test_wrap_unwrap_round_trip_and_randomised(path: Path) -> None:
    keyring = LocalKeyring(path)
    data_key = new_data_key()
    one, two = keyring.wrap(data_key, CONTEXT), keyring.wrap(data_key, CONTEXT)
    assert one.kek_id == keyring.current_kek_id()
    assert one.wrapped != two.wrapped
    assert data_key not in one.wrapped
    assert keyring.unwrap(one, CONTEXT) == keyring.unwrap(two, CONTEXT) == data_key


def test_wrapped_key_is_bound_to_its_context(path: Path) -> None:
    keyring = LocalKeyring(path)
    wrapped = keyring.wrap(new_data_key(), CONTEXT)
    with pytest.raises(IntegrityError, match="failed authentication"):
        keyring.unwrap(wrapped, b"recording:0002")


@pytest.mark.parametrize("position", [0, 5, 20, -1])
def test_tampered_wrapped_key(path: Path, position: int) -> None:
    keyring = LocalKeyring(path)
    wrapped = keyring.wrap(new_data_key(), CONTEXT)
    damaged = bytearray(wrapped.wrapped)
    damaged[position] ^= 0x01
    with pytest.raises(IntegrityError):
        keyring.unwrap(WrappedKey(wrapped.kek_id, bytes(damaged)), CONTEXT)
    with pytest.raises(IntegrityError, match="malformed"):
        keyring.unwrap(WrappedKey(wrapped.kek_id, wrapped.wrapped[:-1]), CONTEXT)


def test_unknown_kek_is_key_unavailable(path: Path) -> None:
    keyring = LocalKeyring(path)
    wrapped = keyring.wrap(new_data_key(), CONTEXT)
    with pytest.raises(KeyUnavailable, match="kek-nope"):
        keyring.unwrap(WrappedKey("kek-nope", wrapped.wrapped), CONTEXT)


def test_foreign_keyring_cannot_unwrap(tmp_path: Path) -> None:
    wrapped = LocalKeyring(tmp_path / "a.json").wrap(new_data_key(), CONTEXT)
    with pytest.raises(KeyUnavailable):
        LocalKeyring(tmp_path / "b.json").unwrap(wrapped, CONTEXT)


def test_rotate_keeps_old_keys_usable(path: Path) -> None:
    keyring = LocalKeyring(path)
    old_id = keyring.current_kek_id()
    data_key = new_data_key()
    old_wrapped = keyring.wrap(data_key, CONTEXT)
    new_id = keyring.rotate()
    assert new_id != old_id and keyring.current_kek_id() == new_id
    assert keyring.wrap(data_key, CONTEXT).kek_id == new_id
    assert keyring.unwrap(old_wrapped, CONTEXT) == data_key
    assert mode_of(path) == 0o600
    assert [(k.id, k.current) for k in keyring.list_keks()] == [(old_id, False), (new_id, True)]


def test_retire(path: Path) -> None:
    keyring = LocalKeyring(path)
    old_id = keyring.current_kek_id()
    wrapped = keyring.wrap(new_data_key(), CONTEXT)
    with pytest.raises(Conflict, match="current"):
        keyring.retire(old_id)
    keyring.rotate()
    keyring.retire(old_id)
    with pytest.raises(KeyUnavailable):
        keyring.unwrap(wrapped, CONTEXT)
    with pytest.raises(NotFound):
        keyring.retire(old_id)
    assert old_id not in path.read_text()
    assert mode_of(path) == 0o600


def test_other_instance_sees_rotation_and_retirement(path: Path) -> None:
    server, cli = LocalKeyring(path), LocalKeyring(path)
    first = server.current_kek_id()
    new_id = cli.rotate()
    assert server.current_kek_id() == new_id
    wrapped = cli.wrap(data_key := new_data_key(), CONTEXT)
    assert server.unwrap(wrapped, CONTEXT) == data_key
    old_wrapped = WrappedKey(first, server.wrap(data_key, CONTEXT).wrapped)
    cli.retire(first)
    with pytest.raises(KeyUnavailable):
        server.unwrap(old_wrapped, CONTEXT)


_ROTATOR = textwrap.dedent(
    """
    import sys
    from callvault.crypto.keyring import LocalKeyring
    keyring = LocalKeyring(sys.argv[1])
    print(" ".join(keyring.rotate() for _ in range(int(sys.argv[2]))))
    """
)


def test_concurrent_rotations_in_three_processes_lose_no_key(path: Path) -> None:
    initial = LocalKeyring(path).current_kek_id()
    procs = [
        subprocess.Popen([sys.executable, "-c", _ROTATOR, str(path), "25"], stdout=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    created: list[str] = []
    for proc in procs:
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0
        created += out.split()
    assert len(created) == 75
    keyring = LocalKeyring(path)
    ids = [k.id for k in keyring.list_keks()]
    assert sorted(ids) == sorted([initial, *created])
    assert sum(k.current for k in keyring.list_keks()) == 1
    assert mode_of(path) == 0o600


def test_group_readable_file_is_refused(path: Path) -> None:
    LocalKeyring(path)
    os.chmod(path, 0o640)
    with pytest.raises(ConfigError, match="mode 0640.*chmod 600"):
        LocalKeyring(path)


@pytest.mark.parametrize(
    "content",
    [
        b"not json",
        b'{"format": "something-else", "version": 1, "keks": []}',
        b'{"format": "callvault-keyring", "version": 9, "keks": []}',
        b'{"format": "callvault-keyring", "version": 1, "keks": []}',
        b'{"format": "callvault-keyring", "version": 1, "keks": [{"id": "k", "key": "AAAA",'
        b' "created": "2024-01-01T00:00:00+00:00", "current": true}]}',
        b'{"format": "callvault-keyring", "version": 1, "keks": [{"id": "k"}]}',
    ],
)
def test_malformed_file_is_config_error(path: Path, content: bytes) -> None:
    path.parent.mkdir(mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, content)
    os.close(fd)
    with pytest.raises(ConfigError, match="keyring"):
        LocalKeyring(path)


def test_key_material_never_in_logs_or_repr(path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="callvault")
    keyring = LocalKeyring(path, clock=lambda: datetime(2024, 5, 1, tzinfo=UTC))
    keyring.rotate()
    keyring.wrap(new_data_key(), CONTEXT)
    shown = caplog.text + repr(keyring) + keyring.describe() + repr(keyring.list_keks())
    assert "rotated keyring" in caplog.text
    for secret in key_material(path):
        assert secret not in shown
    assert keyring.list_keks()[0].created == datetime(2024, 5, 1, tzinfo=UTC)


def test_missing_file_is_not_created_when_told_not_to(path: Path) -> None:
    with pytest.raises(ConfigError, match="keyring .* is missing but the vault holds recordings"):
        LocalKeyring(path, create=False)
    assert not path.exists()
    created = LocalKeyring(path)
    assert LocalKeyring(path, create=False).current_kek_id() == created.current_kek_id()
