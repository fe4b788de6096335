"""flag reviews: a researcher's decision on a flagged post; the unused 'export' job kind removed

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29 04:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_KINDS = ("retrain", "score", "fast_retrain", "labelstudio_sync", "export")
NEW_KINDS = ("retrain", "score", "fast_retrain", "labelstudio_sync")
"""No worker ever handled 'export' jobs (exports run in the command or the page that asks for them)."""


def _kind_check(kinds: Sequence[str]) -> str:
    return "kind IN (" + ", ".join(f"'{k}'" for k in kinds) + ")"


def upgrade() -> None:
    op.create_table(
        "flag_reviews",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column(
            "decision",
            sa.Enum("returned", "excluded", "relabelled", name="flag_decision", native_enum=False,
                    create_constraint=True, length=16),
            nullable=False,
        ),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["item_id"], ["items.id"], name=op.f("fk_flag_reviews_item_id_items"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_flag_reviews_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_flag_reviews")),
        sa.UniqueConstraint("item_id", name=op.f("uq_flag_reviews_item_id")),
    )
    op.execute("DELETE FROM jobs WHERE kind = 'export'")
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_jobs_job_kind"), type_="check")
        batch_op.create_check_constraint("job_kind", _kind_check(NEW_KINDS))


def downgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_jobs_job_kind"), type_="check")
        batch_op.create_check_constraint("job_kind", _kind_check(OLD_KINDS))
    op.drop_table("flag_reviews")
