"""The tamper-evident audit log: one edited, deleted, inserted or reordered row is named."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import select, text

from callvault.db.audit_chain import AuditBody, body_sha256, chain_hash
from callvault.db.models import AccessEvent, AuditCheckpoint
from callvault.services.access import Principal
from callvault.services.audit_verify import AuditReport, AuditVerifier
from callvault.services.context import ServiceContext
from tests.support.people import ADMIN
from tests.support.processes import run_cli


def _events(ctx: ServiceContext, n: int, action: str = "view") -> None:
    for i in range(n):
        ctx.access_log.record(ADMIN, action, f"rec-{i}", detail=f"event {i}")


def _verify(ctx: ServiceContext) -> AuditReport:
    return AuditVerifier(ctx.catalog, ctx.signer, ctx.audit_log).verify(ADMIN)


def _tamper(ctx: ServiceContext, *statements: tuple[str, dict[str, object]]) -> None:
    """Run SQL past the append-only triggers, as an intruder with database access would."""
    sqlite = ctx.catalog.is_sqlite
    with ctx.catalog.engine.begin() as conn:
        if sqlite:
            conn.execute(text("DROP TRIGGER IF EXISTS access_events_no_update"))
            conn.execute(text("DROP TRIGGER IF EXISTS access_events_no_delete"))
        else:
            conn.execute(text("ALTER TABLE access_events DISABLE TRIGGER access_events_append_only"))
        for sql, params in statements:
            conn.execute(text(sql), params)


def _first(report: AuditReport) -> tuple[str, int | None]:
    assert report.problems, "tampering went unnoticed"
    return report.problems[0].kind, report.problems[0].seq


def test_clean_log_is_linear_signed_and_verifies(ctx: ServiceContext) -> None:
    _events(ctx, 5)
    checkpoint = ctx.audit_log.checkpoint()
    report = _verify(ctx)
    assert report.ok, [p.line() for p in report.problems]
    with ctx.catalog.read() as session:
        rows = session.scalars(select(AccessEvent).order_by(AccessEvent.seq)).all()
    assert [r.seq for r in rows] == list(range(1, len(rows) + 1))
    assert all(b.prev_hash == a.entry_hash for a, b in zip(rows, rows[1:], strict=False))
    assert checkpoint is not None and checkpoint.seq == rows[-1].seq == report.last_checkpoint_seq
    assert ctx.audit_log.read_mirror() == checkpoint
    # Nothing new: no new checkpoint.
    assert ctx.audit_log.checkpoint() == checkpoint


def test_concurrent_appends_stay_one_chain(ctx: ServiceContext) -> None:
    def writer(n: int) -> None:
        for i in range(10):
            ctx.access_log.record(Principal(None, f"w{n}", ADMIN.role), "search", detail=str(i))

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    report = _verify(ctx)
    assert report.ok and report.entries == 40, [p.line() for p in report.problems]


def test_edited_row_is_named(ctx: ServiceContext) -> None:
    _events(ctx, 6)
    _tamper(ctx, ("UPDATE access_events SET detail = 'nothing to see' WHERE seq = 3", {}))
    assert _first(_verify(ctx)) == ("edited", 3)


def test_deleted_row_is_named(ctx: ServiceContext) -> None:
    _events(ctx, 6)
    _tamper(ctx, ("DELETE FROM access_events WHERE seq = 4", {}))
    kind, seq = _first(_verify(ctx))
    assert (kind, seq) == ("deleted", 5)
    assert "before entry seq 5" in _verify(ctx).problems[0].message


def test_reordered_rows_are_named(ctx: ServiceContext) -> None:
    _events(ctx, 6)
    _tamper(
        ctx,
        ("UPDATE access_events SET seq = -1 WHERE seq = 2", {}),
        ("UPDATE access_events SET seq = 2 WHERE seq = 3", {}),
        ("UPDATE access_events SET seq = 3 WHERE seq = -1", {}),
    )
    assert _first(_verify(ctx)) == ("reordered", 2)


def test_inserted_rows_are_named(ctx: ServiceContext) -> None:
    _events(ctx, 4)
    with ctx.catalog.read() as session:
        third = session.scalars(select(AccessEvent).where(AccessEvent.seq == 3)).one()
    # A forged entry, hashed and linked to seq 3 as the service would, squeezed in by renumbering.
    forged = AuditBody(third.at, None, "mallory", "view", None, None, None, "ok")
    forged_hash = chain_hash(third.entry_hash or "", body_sha256(forged))
    _tamper(
        ctx,
        ("UPDATE access_events SET seq = seq + 100 WHERE seq >= 4", {}),
        ("UPDATE access_events SET seq = seq - 99 WHERE seq >= 100", {}),
        (
            "INSERT INTO access_events (at, username, action, outcome, seq, prev_hash, entry_hash) "
            "VALUES (:at, 'mallory', 'view', 'ok', 4, :prev, :hash)",
            {"at": third.at, "prev": third.entry_hash, "hash": forged_hash},
        ),
    )
    assert _first(_verify(ctx)) == ("inserted", 4)
    # A row written past the append path (no place in the chain) is named too.
    _tamper(ctx, ("DELETE FROM access_events WHERE username = 'mallory'", {}))
    _tamper(
        ctx,
        ("UPDATE access_events SET seq = seq + 100 WHERE seq >= 5", {}),
        ("UPDATE access_events SET seq = seq - 101 WHERE seq >= 100", {}),
        (
            "INSERT INTO access_events (at, username, action, outcome) VALUES (:at, 'm', 'view', 'ok')",
            {"at": third.at},
        ),
    )
    report = _verify(ctx)
    assert [p.kind for p in report.problems] == ["inserted"], [p.line() for p in report.problems]


def test_tail_truncated_before_the_last_checkpoint_is_detected(ctx: ServiceContext) -> None:
    _events(ctx, 5)
    checkpoint = ctx.audit_log.checkpoint()
    assert checkpoint is not None
    _tamper(ctx, ("DELETE FROM access_events WHERE seq >= :seq", {"seq": checkpoint.seq - 1}))
    kinds = {p.kind for p in _verify(ctx).problems}
    assert "truncated" in kinds
    # Even with the catalog's checkpoints gone too, the mirror outside the catalog remembers.
    with ctx.catalog.engine.begin() as conn:
        if ctx.catalog.is_sqlite:
            conn.execute(text("DROP TRIGGER audit_checkpoints_no_delete"))
        else:
            conn.execute(text("ALTER TABLE audit_checkpoints DISABLE TRIGGER audit_checkpoints_append_only"))
        conn.execute(text("DELETE FROM audit_checkpoints"))
    with ctx.catalog.read() as session:
        assert session.scalar(select(AuditCheckpoint.seq)) is None
    assert "truncated" in {p.kind for p in _verify(ctx).problems}


def test_cli_audit_verify_names_the_edited_entry(
    ctx: ServiceContext, data_dir: Path, database_url: str
) -> None:
    _events(ctx, 3)
    env = {"CALLVAULT_DATA_DIR": str(data_dir), "CALLVAULT_DATABASE_URL": database_url}
    clean = run_cli(["audit", "verify"], env)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    _tamper(ctx, ("UPDATE access_events SET username = 'someone-else' WHERE seq = 2", {}))
    broken = run_cli(["audit", "verify"], env)
    assert broken.returncode == 5, broken.stdout + broken.stderr
    assert "FAIL edited: entry seq 2" in broken.stdout


@pytest.mark.parametrize("role", ["agent", "supervisor"])
def test_only_auditors_and_admins_verify(ctx: ServiceContext, role: str) -> None:
    from callvault.errors import PermissionDenied
    from callvault.services.access import Role

    with pytest.raises(PermissionDenied):
        AuditVerifier(ctx.catalog, ctx.signer, ctx.audit_log).verify(Principal(1, "x", Role(role)))
