"""projects choose the model a Retrain trains: the LoRA model (the default) or the fine-tuned encoder

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29 18:00:00

Plain ALTER TABLE (SQLite 3.35+ drops columns itself): a batch copy of `projects` would cascade its deletes to
every post of every project on SQLite.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "projects", sa.Column("retrain_backend", sa.String(length=32), nullable=False, server_default="lora")
    )


def downgrade() -> None:
    op.drop_column("projects", "retrain_backend")
