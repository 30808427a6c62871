"""Checking the audit log: the first edited, deleted, inserted or reordered entry, and truncation.

The chain is walked in ``seq`` order. For each entry its own hash is recomputed
from its fields (a mismatch: *edited*) and its link is compared with its
predecessor's hash. A broken link is classified by where the link points: to an
entry further on (*reordered*), to the predecessor of the next entry (this one
was *inserted*), or to nothing (entries before it were *deleted*). Rows outside
the chain (no ``seq``) were inserted by someone bypassing the append path.

Checkpoints: each signature must verify under the server's keys and name an
entry whose hash it signed; a checkpoint beyond the last entry, in the catalog
or mirrored outside it, means the tail was truncated after it was signed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select

from callvault.crypto.signing import ManifestSigner
from callvault.db.audit_chain import GENESIS, AuditBody, body_sha256, chain_hash
from callvault.db.catalog import Catalog
from callvault.db.models import AccessEvent, AuditCheckpoint
from callvault.services.access import Action, Principal, require
from callvault.services.audit_log import AuditLog, Checkpoint


@dataclass(frozen=True)
class AuditProblem:
    kind: str  # edited, deleted, inserted, reordered, truncated, checkpoint
    seq: int | None
    event_id: int | None
    message: str

    def line(self) -> str:
        return f"{self.kind}: {self.message}"


@dataclass
class AuditReport:
    entries: int = 0
    checkpoints: int = 0
    last_checkpoint_seq: int | None = None
    problems: list[AuditProblem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def body_of(row: AccessEvent) -> AuditBody:
    return AuditBody(
        row.at,
        row.user_id,
        row.username,
        row.action,
        row.recording_id,
        row.detail,
        row.remote_addr,
        row.outcome,
    )


def _name(row: AccessEvent) -> str:
    return f"entry seq {row.seq} (id {row.id}, {row.action} by {row.username or '-'})"


class AuditVerifier:
    def __init__(self, catalog: Catalog, signer: ManifestSigner, audit_log: AuditLog) -> None:
        self._catalog = catalog
        self._signer = signer
        self._audit = audit_log

    def verify(self, principal: Principal) -> AuditReport:
        require(principal, Action.AUDIT_READ)
        report = AuditReport()
        with self._catalog.snapshot() as session:
            rows = list(session.scalars(select(AccessEvent).order_by(AccessEvent.seq, AccessEvent.id)))
            checkpoints = [
                Checkpoint.from_row(c)
                for c in session.scalars(select(AuditCheckpoint).order_by(AuditCheckpoint.seq))
            ]
        chained = [r for r in rows if r.seq is not None]
        report.entries = len(chained)
        report.problems += [
            AuditProblem("inserted", None, r.id, f"entry id {r.id} ({r.action}) is outside the chain")
            for r in rows
            if r.seq is None
        ]
        report.problems += _walk(chained)
        mirror = self._audit.read_mirror()
        report.problems += self._check_checkpoints(chained, checkpoints, mirror)
        report.checkpoints = len(checkpoints)
        signed = [c.seq for c in checkpoints] + ([mirror.seq] if mirror else [])
        report.last_checkpoint_seq = max(signed) if signed else None
        return report

    def _check_checkpoints(
        self, chained: list[AccessEvent], checkpoints: list[Checkpoint], mirror: Checkpoint | None
    ) -> list[AuditProblem]:
        by_seq = {r.seq: r for r in chained}
        last_seq = chained[-1].seq if chained else 0
        problems: list[AuditProblem] = []
        for checkpoint, where in [(c, "catalog") for c in checkpoints] + (
            [(mirror, "file")] if mirror else []
        ):
            if not self._signer.verify(checkpoint.key_id, checkpoint.signed_bytes(), checkpoint.signature):
                problems.append(
                    AuditProblem(
                        "checkpoint",
                        checkpoint.seq,
                        None,
                        f"checkpoint at seq {checkpoint.seq} ({where}) has an invalid signature",
                    )
                )
                continue
            entry = by_seq.get(checkpoint.seq)
            if entry is None and checkpoint.seq > (last_seq or 0):
                problems.append(
                    AuditProblem(
                        "truncated",
                        checkpoint.seq,
                        None,
                        f"the log ends at seq {last_seq} but a "
                        f"checkpoint ({where}) signed seq {checkpoint.seq}: its tail was cut off",
                    )
                )
            elif entry is None or entry.entry_hash != checkpoint.head:
                problems.append(
                    AuditProblem(
                        "checkpoint",
                        checkpoint.seq,
                        None,
                        f"the signed head at seq "
                        f"{checkpoint.seq} ({where}) differs from the log's entry there",
                    )
                )
        return problems


def _walk(chained: list[AccessEvent]) -> list[AuditProblem]:
    """The first broken place of the chain (one problem: later ones follow from it)."""
    position = {r.entry_hash: i for i, r in enumerate(chained)}
    expected = GENESIS
    for i, row in enumerate(chained):
        if row.entry_hash != chain_hash(row.prev_hash or "", body_sha256(body_of(row))):
            return [AuditProblem("edited", row.seq, row.id, f"{_name(row)} was edited")]
        if row.prev_hash == expected:
            expected = row.entry_hash or ""
            continue
        successor = chained[i + 1] if i + 1 < len(chained) else None
        if i >= 2 and row.prev_hash == chained[i - 2].entry_hash:
            before = chained[i - 1]
            return [AuditProblem("inserted", before.seq, before.id, f"{_name(before)} was inserted")]
        if row.prev_hash in position and position[row.prev_hash] > i:
            return [AuditProblem("reordered", row.seq, row.id, f"{_name(row)} was moved out of its place")]
        if successor is None or successor.prev_hash == expected:
            return [AuditProblem("inserted", row.seq, row.id, f"{_name(row)} was inserted")]
        if i == 0 or row.prev_hash not in position:
            return [AuditProblem("deleted", row.seq, row.id, f"entries before {_name(row)} were deleted")]
        return [AuditProblem("reordered", row.seq, row.id, f"{_name(row)} was moved out of its place")]
    return []
