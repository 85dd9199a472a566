"""uploads are owned (by jobs, by face profiles, or by nobody yet); client metadata on files

Revision ID: 0004
Revises: 0003
"""

import json

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def _ids(value) -> dict:
    return json.loads(value) if isinstance(value, str) else (value or {})


def upgrade() -> None:
    op.add_column("files", sa.Column("user_metadata", sa.JSON(), nullable=True))
    op.create_table(
        "file_owners",
        sa.Column("file_id", sa.String(length=32), nullable=False),
        sa.Column("owner_kind", sa.String(length=16), nullable=False),
        sa.Column("owner_id", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(["file_id"], ["files.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("file_id", "owner_kind", "owner_id"),
    )
    op.create_index("ix_file_owners_owner", "file_owners", ["owner_kind", "owner_id"])
    # Existing uploads get the owners their jobs and profiles imply (the rule is inputs.input_file_ids, written
    # out here because a migration must not change when that code does).
    bind = op.get_bind()
    files = {row[0] for row in bind.execute(sa.text("SELECT id FROM files"))}
    links: set[tuple[str, str, str]] = set()
    photos_of: dict[str, list] = {}
    for job_id, kind, raw in bind.execute(sa.text("SELECT id, kind, input FROM jobs")):
        inp = _ids(raw)
        ids = [inp.get("image"), inp.get("audio")] if kind == "generate" else list(inp.get("photos") or [])
        photos_of[job_id] = ids
        links |= {(f, "job", job_id) for f in ids if f in files}
    for name, training_job in bind.execute(sa.text("SELECT name, training_job FROM profiles")):
        links |= {(f, "profile", name) for f in photos_of.get(training_job, []) if f in files}
    if links:
        op.bulk_insert(
            sa.table("file_owners", sa.column("file_id"), sa.column("owner_kind"), sa.column("owner_id")),
            [{"file_id": f, "owner_kind": k, "owner_id": o} for f, k, o in sorted(links)],
        )


def downgrade() -> None:
    op.drop_index("ix_file_owners_owner", table_name="file_owners")
    op.drop_table("file_owners")
    with op.batch_alter_table("files") as batch:
        batch.drop_column("user_metadata")
