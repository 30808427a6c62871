"""Signed deletion certificates: what an erasure request destroyed, kept and why, verifiable offline.

A certificate is one JSON document::

    {"certificate": {...}, "signature": "<base64 Ed25519>", "public_key": "<PEM>"}

The signature covers the canonical JSON of ``certificate`` (sorted keys, no
whitespace), made with the server's manifest signing key (``signing_key_id``
inside names it). The public key travels along so anyone can check the
document without the data directory; a verifier that already trusts the
server's key passes it to :func:`verify_certificate` (``--public-key``), which
then also insists the embedded key is that one.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from callvault.crypto.signing import ManifestSigner, canonical_json, verify_signature
from callvault.errors import IntegrityError, InvalidInput

FORMAT = "callvault-deletion-certificate"
VERSION = 1


def sign_certificate(signer: ManifestSigner, body: dict[str, Any]) -> str:
    """The certificate document (JSON text) for ``body``, signed with the current key."""
    key_id, sign = signer.current_key()
    certificate = {"format": FORMAT, "version": VERSION, "signing_key_id": key_id, **body}
    signature = sign(canonical_json(certificate))
    document = {
        "certificate": certificate,
        "signature": base64.b64encode(signature).decode(),
        "public_key": signer.public_key_pem().decode(),
    }
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def verify_certificate(raw: bytes, trusted_public_key: bytes | None = None) -> dict[str, Any]:
    """The certificate body if ``raw`` is an intact signed certificate; else raise naming the problem.

    InvalidInput: not a certificate at all (not JSON, missing parts). IntegrityError:
    a certificate whose signature does not match (edited), or signed by another key.
    """
    try:
        document = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidInput(f"not a JSON document: {exc}") from None
    if not isinstance(document, dict):
        raise InvalidInput("not a deletion certificate: the document is not a JSON object")
    body, signature, public_key = (document.get(k) for k in ("certificate", "signature", "public_key"))
    if not isinstance(body, dict) or body.get("format") != FORMAT:
        raise InvalidInput("not a callvault deletion certificate ('certificate.format' missing or wrong)")
    if body.get("version") != VERSION:
        raise InvalidInput(f"unsupported certificate version {body.get('version')!r}")
    if not isinstance(signature, str) or not isinstance(public_key, str):
        raise InvalidInput("the certificate has no 'signature' or 'public_key'")
    try:
        signature_bytes = base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError):
        raise IntegrityError("the signature is not valid base64: the certificate was edited") from None
    key = public_key.encode()
    if trusted_public_key is not None and _normalised(trusted_public_key) != _normalised(key):
        raise IntegrityError("the certificate is signed by a different key than the one given")
    if not verify_signature(key, canonical_json(body), signature_bytes):
        raise IntegrityError(
            "signature does not match the certificate's contents: the certificate was edited after signing"
        )
    return body


def _normalised(pem: bytes) -> bytes:
    return b"".join(pem.split())
