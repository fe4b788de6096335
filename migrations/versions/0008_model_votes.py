"""the fast model's cross-fitted votes on labelled posts, one more voter in the reliability model

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 17:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LABELS = ("pro", "anti", "neutral", "unrelated")
LABEL_CHECK = "label IN (" + ", ".join(f"'{label}'" for label in LABELS) + ")"


def upgrade() -> None:
    op.create_table(
        "model_votes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model_version_id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("label", sa.String(length=16), nullable=False),
        sa.CheckConstraint(LABEL_CHECK, name=op.f("ck_model_votes_label_known")),
        sa.ForeignKeyConstraint(
            ["model_version_id"], ["model_versions.id"], name=op.f("fk_model_votes_model_version_id_model_versions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["item_id"], ["items.id"], name=op.f("fk_model_votes_item_id_items"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_votes")),
        sa.UniqueConstraint("model_version_id", "item_id", name=op.f("uq_model_votes_version_item")),
    )
    op.create_index(op.f("ix_model_votes_item_id"), "model_votes", ["item_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_model_votes_item_id"), table_name="model_votes")
    op.drop_table("model_votes")
