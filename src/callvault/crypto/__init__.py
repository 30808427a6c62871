"""Crypto port: envelope encryption of recordings, key-encryption keys, manifest signing."""

from callvault.crypto.envelope import (
    EncryptedObjectReader,
    ObjectEncryptor,
    ciphertext_size,
    decrypt_object,
    encrypt_object,
    new_data_key,
)
from callvault.crypto.keyprovider import KeyProvider, WrappedKey
from callvault.crypto.keyring import LocalKeyring
from callvault.crypto.record_seal import RecordSealer
from callvault.crypto.signing import ManifestSigner, canonical_json, verify_signature

__all__ = [
    "EncryptedObjectReader",
    "KeyProvider",
    "LocalKeyring",
    "ManifestSigner",
    "ObjectEncryptor",
    "RecordSealer",
    "WrappedKey",
    "canonical_json",
    "ciphertext_size",
    "decrypt_object",
    "encrypt_object",
    "new_data_key",
    "verify_signature",
]
