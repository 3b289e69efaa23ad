"""operators of several communes: user_communes holds every commune of a user

Revision ID: 0010b
Revises: 0010
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010b"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "user_communes",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("commune_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_user_communes_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["commune_id"], ["areas.id"], name=op.f("fk_user_communes_commune_id_areas")
        ),
        sa.PrimaryKeyConstraint("user_id", "commune_id", name=op.f("pk_user_communes")),
    )  # fmt: skip
    op.execute(
        "INSERT INTO user_communes (user_id, commune_id) "
        "SELECT id, commune_id FROM users WHERE commune_id IS NOT NULL"
    )


def downgrade() -> None:
    op.drop_table("user_communes")
