"""transcript index in parts: a long side of a call is indexed as several rows

Revision ID: speech_0007
Revises: search_0006

PostgreSQL keeps word positions only up to 16,383 in a tsvector (later words
all sit at 16,383, so a phrase said after about an hour and a half of one
side's talk could never match); a side is now indexed in parts of a few
thousand words (``part`` 0, 1, …; ``parts`` on every row of the side). Rows
indexed before keep ``part`` 0 of 1; the ``index_transcript`` job re-indexes one.

SQLite cannot change a table's unique constraint in place: the table is rebuilt
(ids kept, so the FTS5 table's rowids still point at the right rows) and its
FTS5 triggers, dropped with the old table, are created again.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "speech_0007"
down_revision = "search_0006"
branch_labels = None
depends_on = None

_TRIGGERS = {
    "transcript_index_ai": "AFTER INSERT ON transcript_index BEGIN "
    "INSERT INTO transcript_fts(rowid, tokens) VALUES (new.id, new.tokens); END",
    "transcript_index_ad": "AFTER DELETE ON transcript_index BEGIN "
    "INSERT INTO transcript_fts(transcript_fts, rowid, tokens) VALUES ('delete', old.id, old.tokens); END",
    "transcript_index_au": "AFTER UPDATE ON transcript_index BEGIN "
    "INSERT INTO transcript_fts(transcript_fts, rowid, tokens) VALUES ('delete', old.id, old.tokens); "
    "INSERT INTO transcript_fts(rowid, tokens) VALUES (new.id, new.tokens); END",
}


def _replace_unique(old: str, new: str, columns: list[str], add_parts: bool) -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    if sqlite:
        for name in _TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    with op.batch_alter_table("transcript_index", recreate="always" if sqlite else "auto") as batch:
        if add_parts:
            batch.add_column(sa.Column("part", sa.Integer(), nullable=False, server_default="0"))
            batch.add_column(sa.Column("parts", sa.Integer(), nullable=False, server_default="1"))
        batch.drop_constraint(old, type_="unique")
        batch.create_unique_constraint(new, columns)
        if not add_parts:
            batch.drop_column("parts")
            batch.drop_column("part")
    if sqlite:
        for name, body in _TRIGGERS.items():
            op.execute(f"CREATE TRIGGER {name} {body}")


def upgrade() -> None:
    _replace_unique(
        "uq_transcript_index_side", "uq_transcript_index_part", ["recording_id", "speaker", "part"], True
    )


def downgrade() -> None:
    op.execute("DELETE FROM transcript_index WHERE part > 0")
    _replace_unique(
        "uq_transcript_index_part", "uq_transcript_index_side", ["recording_id", "speaker"], False
    )
