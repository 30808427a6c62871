"""Checking an evidence bundle offline: no data directory, no catalog, only the zip and a key.

A bundle (:mod:`callvault.services.evidence`) is a zip whose ``bundle.json``
lists every other member's SHA-256 and is signed (``bundle.sig``) by the
server's Ed25519 key. Trust starts at that key: the one given on the command
line, else the bundled ``public-key.pem``. Everything else follows from the
signed list: the per-key PEMs under ``keys/`` that signed the manifest and the
audit checkpoint, the manifest's audio hash, the audit trail's chain proof to
a signed checkpoint, and the vCon's JWS. Every failure names its member.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import zipfile
import zlib
from dataclasses import dataclass, field
from datetime import datetime
from io import BytesIO
from typing import Any

from callvault.crypto.signing import verify_signature
from callvault.db.audit_chain import AuditBody, body_sha256, chain_hash, checkpoint_doc
from callvault.errors import InvalidInput

FORMAT = "callvault-evidence-bundle/1"
INDEX, INDEX_SIG, PUBLIC_KEY = "bundle.json", "bundle.sig", "public-key.pem"
MANIFEST, MANIFEST_SIG = "manifest.json", "manifest.sig"
AUDIO_OGG, AUDIO_WAV, METADATA = "audio.opus", "audio.wav", "metadata.json"
TRAIL, VCON, VCON_JWS, README = "audit-trail.json", "vcon.json", "vcon.jws.json", "README.txt"


@dataclass
class BundleReport:
    recording_id: str | None = None
    checked: list[str] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)  # (member, why)

    @property
    def ok(self) -> bool:
        return not self.failures

    def fail(self, member: str, why: str) -> None:
        self.failures.append((member, why))


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _read_members(data: bytes) -> tuple[dict[str, bytes], dict[str, str]]:
    """Every member's bytes, and the members that cannot be read (CRC, deflate) with why."""
    try:
        archive = zipfile.ZipFile(BytesIO(data))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError):
        raise InvalidInput("not an evidence bundle: the file is not a readable zip") from None
    members: dict[str, bytes] = {}
    unreadable: dict[str, str] = {}
    with archive:
        for info in archive.infolist():
            try:
                members[info.filename] = archive.read(info)
            except (zipfile.BadZipFile, zlib.error, EOFError, ValueError, NotImplementedError) as exc:
                unreadable[info.filename] = f"damaged in the zip ({exc.__class__.__name__})"
    if INDEX not in members and INDEX not in unreadable:
        raise InvalidInput(f"not an evidence bundle: no {INDEX}")
    return members, unreadable


def verify_bundle(data: bytes, trusted_key_pem: bytes | None = None) -> BundleReport:
    """Check every member of a bundle; InvalidInput if it is not a bundle at all."""
    members, unreadable = _read_members(data)
    report = BundleReport()
    for name, why in unreadable.items():
        report.fail(name, why)
    key_pem = trusted_key_pem if trusted_key_pem is not None else members.get(PUBLIC_KEY)
    if key_pem is None:
        report.fail(PUBLIC_KEY, "missing, and no public key was given")
        return report
    index = _check_index(members, key_pem, report)
    if index is None:
        return report
    report.recording_id = str(index.get("recording_id"))
    listed: dict[str, str] = index.get("members", {})
    for name, digest in listed.items():
        if name in unreadable:
            continue
        if name not in members:
            report.fail(name, "listed in bundle.json but missing")
        elif hashlib.sha256(members[name]).hexdigest() != digest:
            report.fail(name, "content differs from its signed SHA-256")
        else:
            report.checked.append(name)
    for name in members:
        if name not in listed and name not in (INDEX, INDEX_SIG):
            report.fail(name, "not listed in the signed bundle.json (added)")
    if report.ok:
        _check_contents(members, report)
    return report


def _check_index(members: dict[str, bytes], key_pem: bytes, report: BundleReport) -> dict[str, Any] | None:
    raw, sig = members.get(INDEX), members.get(INDEX_SIG)
    if raw is None or sig is None:
        report.fail(INDEX if raw is None else INDEX_SIG, "missing")
        return None
    try:
        signature = base64.b64decode(sig.strip(), validate=True)
        valid = verify_signature(key_pem, raw, signature)
    except (binascii.Error, ValueError):
        valid = False
    except InvalidInput:
        report.fail(PUBLIC_KEY, "not an Ed25519 public key in PEM form")
        return None
    if not valid:
        report.fail(
            INDEX, "signature does not verify under the trusted public key (bundle.json or bundle.sig)"
        )
        return None
    doc = json.loads(raw)
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or not isinstance(doc.get("members"), dict):
        report.fail(INDEX, f"not a {FORMAT} index")
        return None
    report.checked += [INDEX, INDEX_SIG]
    return doc


def _key(members: dict[str, bytes], key_id: str) -> bytes:
    pem = members.get(f"keys/{key_id}.pem")
    if pem is None:
        raise ValueError(f"no key keys/{key_id}.pem in the bundle")
    return pem


def _check_contents(members: dict[str, bytes], report: BundleReport) -> None:
    """Signed list intact: now the signatures and proofs inside it (each names its member)."""
    checks = ((MANIFEST, _check_manifest), (TRAIL, _check_trail), (VCON_JWS, _check_vcon))
    for member, check in checks:
        try:
            check(members)
        except (ValueError, KeyError, TypeError, binascii.Error, InvalidInput) as exc:
            report.fail(member, str(exc) or exc.__class__.__name__)


def _check_manifest(members: dict[str, bytes]) -> None:
    manifest = json.loads(members[MANIFEST])
    signature = base64.b64decode(members[MANIFEST_SIG].strip(), validate=True)
    if not verify_signature(_key(members, manifest["signing_key_id"]), members[MANIFEST], signature):
        raise ValueError("the manifest's signature does not verify")
    if (
        AUDIO_OGG in members
        and hashlib.sha256(members[AUDIO_OGG]).hexdigest() != manifest["recording"]["audio_sha256"]
    ):
        raise ValueError("audio.opus does not have the SHA-256 the signed manifest names")


def _check_trail(members: dict[str, bytes]) -> None:
    trail = json.loads(members[TRAIL])
    for proof in trail["proofs"]:
        checkpoint = proof["checkpoint"]
        signed = json.dumps(
            checkpoint_doc(
                int(checkpoint["seq"]), checkpoint["head"], checkpoint["at"], checkpoint["key_id"]
            ),
            sort_keys=True,
            separators=(",", ":"),
        ).encode()
        signature = base64.b64decode(checkpoint["signature"], validate=True)
        if not verify_signature(_key(members, checkpoint["key_id"]), signed, signature):
            raise ValueError(f"the checkpoint at seq {checkpoint['seq']} has an invalid signature")
        entries = {int(e["seq"]): e for e in proof["entries"]}
        links = {int(seq): digest for seq, digest in proof["links"]}
        first = min(entries)
        head = entries[first]["prev_hash"]
        for seq in range(first, int(checkpoint["seq"]) + 1):
            if seq in entries:
                body = AuditBody(**{**entries[seq]["body"], "at": _parse_at(entries[seq]["body"]["at"])})
                digest = body_sha256(body)
            elif seq in links:
                digest = links[seq]
            else:
                raise ValueError(f"the chain proof lacks seq {seq}")
            head = chain_hash(head, digest)
            if seq in entries and head != entries[seq]["entry_hash"]:
                raise ValueError(f"audit entry seq {seq} does not match its hash")
        if head != checkpoint["head"]:
            raise ValueError(f"the entries do not lead to the checkpoint signed at seq {checkpoint['seq']}")


def _parse_at(value: str) -> datetime:
    return datetime.fromisoformat(value)


def _check_vcon(members: dict[str, bytes]) -> None:
    jws = json.loads(members[VCON_JWS])
    payload = unb64url(jws["payload"])
    if payload != members[VCON]:
        raise ValueError("the signed vCon differs from vcon.json")
    signature = jws["signatures"][0]
    header = json.loads(unb64url(signature["protected"]))
    if header.get("alg") != "EdDSA":
        raise ValueError("the vCon's JWS is not EdDSA")
    signing_input = f"{signature['protected']}.{jws['payload']}".encode()
    if not verify_signature(_key(members, header["kid"]), signing_input, unb64url(signature["signature"])):
        raise ValueError("the vCon's JWS signature does not verify")
