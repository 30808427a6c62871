"""transcript full-text search: per recording and speaker, redacted tokens and word times

Revision ID: search_0006
Revises: asr_0006

SQLite gets an FTS5 table over ``transcript_index.tokens`` (external content,
synchronised by triggers); PostgreSQL a generated tsvector column with a GIN
index. Existing recordings have no transcripts yet: nothing to backfill.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "search_0006"
down_revision = "jobs_0006"
branch_labels = None
depends_on = None

_SQLITE_FTS = [
    "CREATE VIRTUAL TABLE transcript_fts USING fts5("
    "tokens, content='transcript_index', content_rowid='id', tokenize='unicode61 remove_diacritics 2')",
    "CREATE TRIGGER transcript_index_ai AFTER INSERT ON transcript_index BEGIN "
    "INSERT INTO transcript_fts(rowid, tokens) VALUES (new.id, new.tokens); END",
    "CREATE TRIGGER transcript_index_ad AFTER DELETE ON transcript_index BEGIN "
    "INSERT INTO transcript_fts(transcript_fts, rowid, tokens) VALUES ('delete', old.id, old.tokens); END",
    "CREATE TRIGGER transcript_index_au AFTER UPDATE ON transcript_index BEGIN "
    "INSERT INTO transcript_fts(transcript_fts, rowid, tokens) VALUES ('delete', old.id, old.tokens); "
    "INSERT INTO transcript_fts(rowid, tokens) VALUES (new.id, new.tokens); END",
]


def upgrade() -> None:
    op.create_table(
        "transcript_index",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("recording_id", sa.String(length=36), nullable=False),
        sa.Column("speaker", sa.String(length=16), nullable=False),
        sa.Column("tokens", sa.Text(), nullable=False),
        sa.Column("words", sa.JSON(), nullable=False),
        sa.Column("indexed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["recording_id"], ["recordings.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("recording_id", "speaker", name="uq_transcript_index_side"),
    )
    op.create_index("ix_transcript_index_recording_id", "transcript_index", ["recording_id"])
    if op.get_bind().dialect.name == "sqlite":
        for statement in _SQLITE_FTS:
            op.execute(statement)
    else:
        op.execute(
            "ALTER TABLE transcript_index ADD COLUMN tsv tsvector "
            "GENERATED ALWAYS AS (to_tsvector('simple'::regconfig, tokens)) STORED"
        )
        op.execute("CREATE INDEX ix_transcript_index_tsv ON transcript_index USING gin (tsv)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for name in ("transcript_index_ai", "transcript_index_ad", "transcript_index_au"):
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
        op.execute("DROP TABLE IF EXISTS transcript_fts")
    op.drop_index("ix_transcript_index_recording_id", table_name="transcript_index")
    op.drop_table("transcript_index")
