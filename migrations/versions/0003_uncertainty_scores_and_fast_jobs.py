"""uncertainty scores on predictions, fast-model retrain jobs

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 09:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_KINDS = ("retrain", "score", "labelstudio_sync", "export")
NEW_KINDS = ("retrain", "score", "fast_retrain", "labelstudio_sync", "export")


def _kind_check(kinds: Sequence[str]) -> str:
    return "kind IN (" + ", ".join(f"'{k}'" for k in kinds) + ")"


def _backfill_scores() -> None:
    """margin and entropy of the rows written before this revision, from their probabilities."""
    bind = op.get_bind()
    greatest = "greatest" if bind.dialect.name == "postgresql" else "max"
    least = "least" if bind.dialect.name == "postgresql" else "min"
    p = ("p_pro", "p_anti", "p_neutral", "p_unrelated")
    pairs = [f"{least}({a}, {b})" for i, a in enumerate(p) for b in p[i + 1 :]]
    second = f"{greatest}({', '.join(pairs)})"
    entropy = " + ".join(f"(CASE WHEN {c} > 0 THEN -{c} * ln({c}) ELSE 0 END)" for c in p)
    op.execute(f"UPDATE predictions SET margin = confidence - {second}, entropy = {entropy}")


def upgrade() -> None:
    with op.batch_alter_table("predictions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("margin", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("entropy", sa.Float(), nullable=True))
    _backfill_scores()
    with op.batch_alter_table("predictions", schema=None) as batch_op:
        batch_op.alter_column("margin", existing_type=sa.Float(), nullable=False)
        batch_op.alter_column("entropy", existing_type=sa.Float(), nullable=False)
        batch_op.create_index("ix_predictions_version_margin", ["model_version_id", "margin"], unique=False)
        batch_op.create_index("ix_predictions_version_entropy", ["model_version_id", "entropy"], unique=False)
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_jobs_job_kind"), type_="check")
        batch_op.create_check_constraint("job_kind", _kind_check(NEW_KINDS))


def downgrade() -> None:
    op.execute("DELETE FROM jobs WHERE kind = 'fast_retrain'")
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_jobs_job_kind"), type_="check")
        batch_op.create_check_constraint("job_kind", _kind_check(OLD_KINDS))
    with op.batch_alter_table("predictions", schema=None) as batch_op:
        batch_op.drop_index("ix_predictions_version_entropy")
        batch_op.drop_index("ix_predictions_version_margin")
        batch_op.drop_column("entropy")
        batch_op.drop_column("margin")
