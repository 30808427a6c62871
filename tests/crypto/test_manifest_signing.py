"""ManifestSigner, verify_signature and canonical_json."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ec import SECP256R1, generate_private_key

from callvault.crypto.signing import ManifestSigner, canonical_json, verify_signature
from callvault.errors import ConfigError, InvalidInput


@pytest.fixture
def key_path(tmp_path: Path) -> Path:
    return tmp_path / "keys" / "manifest-signing.pem"


def test_key_file_created_owner_only_and_reused(key_path: Path) -> None:
    signer = ManifestSigner(key_path)
    assert stat.S_IMODE(os.stat(key_path).st_mode) == 0o600
    assert key_path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    again = ManifestSigner(key_path)
    assert again.key_id == signer.key_id
    assert again.public_key_pem() == signer.public_key_pem()
    assert signer.key_id.startswith("ed25519:") and len(signer.key_id) == len("ed25519:") + 16


def test_sign_and_verify(key_path: Path) -> None:
    signer = ManifestSigner(key_path)
    data = canonical_json({"recording": "rec-1", "sha256": "ab" * 32})
    signature = signer.sign(data)
    assert len(signature) == 64
    assert verify_signature(signer.public_key_pem(), data, signature)
    assert not verify_signature(signer.public_key_pem(), data + b" ", signature)
    assert not verify_signature(signer.public_key_pem(), data, bytes(64))
    other = ManifestSigner(key_path.with_name("other.pem"))
    assert other.key_id != signer.key_id
    assert not verify_signature(other.public_key_pem(), data, signature)
    assert signer.sign_manifest({"sha256": "ab" * 32, "recording": "rec-1"}) == signature


def test_verify_rejects_non_ed25519_keys() -> None:
    ec_pem = (
        generate_private_key(SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    with pytest.raises(InvalidInput, match="not Ed25519"):
        verify_signature(ec_pem, b"x", bytes(64))
    with pytest.raises(InvalidInput, match="not a valid PEM"):
        verify_signature(b"garbage", b"x", bytes(64))


def test_world_readable_key_is_refused(key_path: Path) -> None:
    ManifestSigner(key_path)
    os.chmod(key_path, 0o644)
    with pytest.raises(ConfigError, match="mode 0644"):
        ManifestSigner(key_path)


def test_garbage_key_file_is_config_error(key_path: Path) -> None:
    key_path.parent.mkdir()
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, b"-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n")
    os.close(fd)
    with pytest.raises(ConfigError, match="not an unencrypted PEM"):
        ManifestSigner(key_path)


def test_canonical_json_is_stable() -> None:
    assert (
        canonical_json({"b": 1, "a": {"z": [1, 2], "y": "é"}}) == '{"a":{"y":"é","z":[1,2]},"b":1}'.encode()
    )
    assert canonical_json({"a": 1, "b": 2}) == canonical_json({"b": 2, "a": 1})


@pytest.mark.parametrize("bad", [{"x": float("nan")}, {"x": b"bytes"}, {"x": object()}])
def test_canonical_json_rejects_ambiguous_values(bad: dict[str, object]) -> None:
    with pytest.raises(InvalidInput, match="canonically"):
        canonical_json(bad)


def test_missing_key_is_not_created_when_told_not_to(key_path: Path) -> None:
    with pytest.raises(ConfigError, match="is missing but the vault holds recordings"):
        ManifestSigner(key_path, create=False)
    assert not key_path.exists()


def test_rotation_keeps_the_old_public_key_by_id(key_path: Path) -> None:
    signer = ManifestSigner(key_path)
    data = canonical_json({"recording": "rec-1"})
    old_id, old_signature = signer.key_id, signer.sign(data)
    elsewhere = ManifestSigner(key_path)  # another process holding the same key file
    assert signer.rotate() == (old_id, signer.key_id) and signer.key_id != old_id
    assert elsewhere.key_id == signer.key_id  # re-read after the file changed
    assert elsewhere.verify(old_id, data, old_signature)
    assert not elsewhere.verify(signer.key_id, data, old_signature)
    assert not elsewhere.verify("ed25519:0000000000000000", data, old_signature)
    assert elsewhere.public_key("ed25519:0000000000000000") is None
    key_id, sign = signer.current_key()
    assert key_id == signer.key_id and signer.verify(key_id, data, sign(data))
    retired = key_path.with_name(key_path.stem + ".public-keys.json")
    assert stat.S_IMODE(os.stat(retired).st_mode) == 0o600


def test_retired_key_file_with_a_mislabelled_key_is_refused(key_path: Path) -> None:
    signer = ManifestSigner(key_path)
    old_id, _ = signer.rotate()
    retired = key_path.with_name(key_path.stem + ".public-keys.json")
    retired.write_text(retired.read_text().replace(old_id, "ed25519:" + "ab" * 8))
    with pytest.raises(ConfigError, match="is not the Ed25519 key 'ed25519:abab"):
        ManifestSigner(key_path)
    retired.write_text("{")
    with pytest.raises(ConfigError, match="not valid JSON"):
        ManifestSigner(key_path)
