"""``verify --all``'s walk of the seal log (see :mod:`callvault.services.seal_log`).

It checks, and names, in this order:

* every link: seqs 1..N without gaps, each entry hashing to its stored hash and
  pointing at its predecessor (``broken <seq>``);
* every checkpoint: signed by this vault's current or a retired key, over the
  entry hash at its seq; every entry after the first checkpoint has its own
  (``unsigned <seq>``: appended by someone without the signing key);
* the checkpoint outside the catalog: a chain shorter than it, or a different
  entry at its seq, means the catalog was rolled back (``rolled back``);
* every recording in the log still has its catalog rows (``missing <id>``).

Recordings with a manifest but no entry (``inserted``) are found per recording
by :class:`callvault.services.integrity.IntegrityService`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from callvault.crypto.signing import ManifestSigner
from callvault.db.models import Recording, SealCheckpoint, SealLogEntry
from callvault.db.seal_chain import GENESIS, entry_hash, utc_iso
from callvault.services.seal_log import Checkpoint

_YIELD = 1000


@dataclass(frozen=True)
class LogProblem:
    kind: str  # missing, broken, unsigned, rolled back
    subject: str  # a recording id, a seq, or "" for the whole log
    detail: str

    def line(self) -> str:
        return f"{self.kind} {self.subject}: {self.detail}" if self.subject else f"{self.kind}: {self.detail}"


def audit_seal_log(
    session: Session,
    signer: ManifestSigner,
    mirror: Checkpoint | None,
    mirror_where: str,
    mirror_error: str | None = None,
) -> list[LogProblem]:
    """``mirror`` is the checkpoint outside the catalog; ``mirror_error`` why it could not be read."""
    problems: list[LogProblem] = []
    hashes, last_entry = _walk_links(
        session.scalars(select(SealLogEntry).order_by(SealLogEntry.seq).execution_options(yield_per=_YIELD)),
        problems,
    )
    checkpoints = session.scalars(
        select(SealCheckpoint)
        .where(SealCheckpoint.seq <= len(hashes))
        .order_by(SealCheckpoint.seq)
        .execution_options(yield_per=_YIELD)
    )
    _check_checkpoints((Checkpoint.from_row(c) for c in checkpoints), hashes, signer, problems)
    if mirror_error is not None:
        problems.append(LogProblem("rolled back", "", f"cannot rule out a rollback: {mirror_error}"))
    else:
        _check_mirror(mirror, mirror_where, hashes, signer, problems)
    recording_ids = set(session.scalars(select(Recording.id)))
    for recording_id, (seq, at) in sorted(last_entry.items(), key=lambda item: item[1][0]):
        if recording_id not in recording_ids:
            problems.append(
                LogProblem(
                    "missing", recording_id, f"sealed at {at} (seal log seq {seq}) but gone from the catalog"
                )
            )
    return problems


def _walk_links(
    entries: Iterable[SealLogEntry], problems: list[LogProblem]
) -> tuple[list[str], dict[str, tuple[int, str]]]:
    """Entry hashes by position (seq - 1) and each recording's latest (seq, time)."""
    hashes: list[str] = []
    last_entry: dict[str, tuple[int, str]] = {}
    prev = GENESIS
    for entry in entries:
        expected_seq = len(hashes) + 1
        if entry.seq != expected_seq:
            problems.append(
                LogProblem(
                    "broken", str(expected_seq), f"seal log entries {expected_seq}..{entry.seq - 1} are gone"
                )
            )
            hashes.extend([""] * (entry.seq - expected_seq))
        elif entry.prev_hash != prev:
            problems.append(LogProblem("broken", str(entry.seq), "entry does not link to the previous entry"))
        computed = entry_hash(entry.seq, entry.recording_id, entry.manifest_sha256, entry.prev_hash, entry.at)
        if computed != entry.entry_hash:
            problems.append(
                LogProblem("broken", str(entry.seq), "entry was changed (its hash does not match)")
            )
        hashes.append(entry.entry_hash)
        last_entry[entry.recording_id] = (entry.seq, utc_iso(entry.at))
        prev = entry.entry_hash
    return hashes, last_entry


def _check_checkpoints(
    checkpoints: Iterable[Checkpoint], hashes: list[str], signer: ManifestSigner, problems: list[LogProblem]
) -> None:
    signed: set[int] = set()
    first: int | None = None
    for checkpoint in checkpoints:
        first = checkpoint.seq if first is None else first
        signed.add(checkpoint.seq)
        problem = _checkpoint_problem(checkpoint, hashes, signer)
        if problem:
            problems.append(LogProblem("broken", str(checkpoint.seq), f"checkpoint {problem}"))
    if hashes and first is None:
        problems.append(
            LogProblem("unsigned", "", f"the seal log has {len(hashes)} entries but no signed checkpoint")
        )
        return
    for seq in range((first or 0) + 1, len(hashes) + 1):
        if seq not in signed:
            problems.append(
                LogProblem(
                    "unsigned", str(seq), "entry has no signed checkpoint (appended without the signing key?)"
                )
            )


def _checkpoint_problem(checkpoint: Checkpoint, hashes: list[str], signer: ManifestSigner) -> str | None:
    if signer.public_key(checkpoint.key_id) is None:
        return f"is signed by key {checkpoint.key_id}, which this vault never had"
    if not signer.verify(checkpoint.key_id, checkpoint.signed_bytes(), checkpoint.signature):
        return "signature does not verify"
    if checkpoint.count != checkpoint.seq:
        return f"counts {checkpoint.count} entries at seq {checkpoint.seq}"
    if checkpoint.seq > len(hashes):
        return f"covers seq {checkpoint.seq} but the seal log ends at seq {len(hashes)}"
    if hashes[checkpoint.seq - 1] != checkpoint.head:
        return "head differs from the seal log entry at its seq"
    return None


def _check_mirror(
    mirror: Checkpoint | None,
    where: str,
    hashes: list[str],
    signer: ManifestSigner,
    problems: list[LogProblem],
) -> None:
    if mirror is None:
        if hashes:
            problems.append(
                LogProblem(
                    "rolled back",
                    "",
                    f"no checkpoint outside the catalog ({where} is missing): cannot rule out a rollback",
                )
            )
        return
    if not signer.verify(mirror.key_id, mirror.signed_bytes(), mirror.signature):
        problems.append(
            LogProblem(
                "rolled back", "", f"the checkpoint outside the catalog ({where}) is not validly signed"
            )
        )
        return
    if mirror.seq > len(hashes):
        problems.append(
            LogProblem(
                "rolled back",
                "",
                f"the catalog's seal log ends at seq {len(hashes)} but the checkpoint outside the catalog "
                f"(signed {mirror.at}) covers seq {mirror.seq}: {mirror.seq - len(hashes)} seal(s) are gone "
                "(catalog restored from an older backup?)",
            )
        )
    elif hashes[mirror.seq - 1] != mirror.head:
        problems.append(
            LogProblem(
                "rolled back",
                "",
                f"seal log entry {mirror.seq} differs from the checkpoint outside the catalog (signed {mirror.at}): "
                "the catalog was rewritten or restored and sealed again",
            )
        )
