"""labels a researcher can trust: control posts, versioned guidelines per language, annotator exclusions,
qualification rounds, and the project's quality settings

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 16:30:00

A plain ALTER TABLE for `projects` (as 0006: a batch copy of it would cascade deletes to every post on SQLite);
a batch copy for annotations and annotation_events, which no table refers to.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LABELS = ("pro", "anti", "neutral", "unrelated")
LABEL_CHECK = "label IN (" + ", ".join(f"'{label}'" for label in LABELS) + ")"


def _add_guideline_column(table: str) -> None:
    # A batch copy on SQLite (it cannot add a foreign key in place); safe here, as no table refers to these two.
    with op.batch_alter_table(table, schema=None) as batch_op:
        batch_op.add_column(sa.Column("guideline_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            f"fk_{table}_guideline_id_guidelines", "guidelines", ["guideline_id"], ["id"], ondelete="SET NULL"
        )


def upgrade() -> None:
    op.create_table(
        "guidelines",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name=op.f("fk_guidelines_project_id_projects"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_guidelines_user_id_users"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_guidelines")),
        sa.UniqueConstraint(
            "project_id", "language", "version", name=op.f("uq_guidelines_project_language_version")
        ),
    )
    op.create_table(
        "control_posts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("label", sa.String(length=16), nullable=False),
        sa.Column(
            "source",
            sa.Enum("manual", "adjudication", "flag", "import", "eval", name="control_source",
                    native_enum=False, create_constraint=True, length=16),
            nullable=False,
        ),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(LABEL_CHECK, name=op.f("ck_control_posts_label_known")),
        sa.ForeignKeyConstraint(
            ["item_id"], ["items.id"], name=op.f("fk_control_posts_item_id_items"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_control_posts_user_id_users"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_control_posts")),
        sa.UniqueConstraint("item_id", name=op.f("uq_control_posts_item_id")),
    )
    op.create_table(
        "annotator_exclusions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("excluded_by", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lifted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lifted_by", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name=op.f("fk_annotator_exclusions_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_annotator_exclusions_user_id_users"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["excluded_by"], ["users.id"], name=op.f("fk_annotator_exclusions_excluded_by_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["lifted_by"], ["users.id"], name=op.f("fk_annotator_exclusions_lifted_by_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_annotator_exclusions")),
    )
    op.create_index(
        "uq_annotator_exclusions_standing",
        "annotator_exclusions",
        ["project_id", "user_id"],
        unique=True,
        sqlite_where=sa.text("lifted_at IS NULL"),
        postgresql_where=sa.text("lifted_at IS NULL"),
    )
    op.create_table(
        "qualifications",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("passed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("admitted_by", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name=op.f("fk_qualifications_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_qualifications_user_id_users"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["admitted_by"], ["users.id"], name=op.f("fk_qualifications_admitted_by_users"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_qualifications")),
        sa.UniqueConstraint(
            "project_id", "user_id", "language", name=op.f("uq_qualifications_project_user_language")
        ),
    )
    op.add_column("projects", sa.Column("quality", sa.JSON(), nullable=False, server_default=sa.text("'{}'")))
    _add_guideline_column("annotations")
    _add_guideline_column("annotation_events")


def downgrade() -> None:
    for table in ("annotation_events", "annotations"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_constraint(f"fk_{table}_guideline_id_guidelines", type_="foreignkey")
            batch_op.drop_column("guideline_id")
    op.drop_column("projects", "quality")
    op.drop_table("qualifications")
    op.drop_index("uq_annotator_exclusions_standing", table_name="annotator_exclusions")
    op.drop_table("annotator_exclusions")
    op.drop_table("control_posts")
    op.drop_table("guidelines")
