"""flag reviews: a researcher's decision on a flagged post

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


def downgrade() -> None:
    op.drop_table("flag_reviews")
