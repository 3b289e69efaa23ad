"""content kinds, quiet hours, resumes: recordings and relays beside speech; quiet hours
per commune; the broadcast that resumes an interrupted one

Revision ID: 0008
Revises: 0006
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("bulletins") as batch:
        batch.add_column(
            sa.Column("kind", sa.String(length=16), server_default="speech", nullable=False)
        )
    with op.batch_alter_table("audio_assets") as batch:
        batch.add_column(sa.Column("stream_url", sa.String(length=500), nullable=True))
    with op.batch_alter_table("areas") as batch:
        batch.add_column(sa.Column("quiet_start", sa.String(length=5), nullable=True))
        batch.add_column(sa.Column("quiet_end", sa.String(length=5), nullable=True))
    with op.batch_alter_table("broadcasts") as batch:
        batch.add_column(sa.Column("resumes_id", sa.Integer(), nullable=True))
        batch.create_unique_constraint(op.f("uq_broadcasts_resumes_id"), ["resumes_id"])
        batch.create_foreign_key(
            op.f("fk_broadcasts_resumes_id_broadcasts"), "broadcasts", ["resumes_id"], ["id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("broadcasts") as batch:
        batch.drop_constraint(op.f("fk_broadcasts_resumes_id_broadcasts"), type_="foreignkey")
        batch.drop_constraint(op.f("uq_broadcasts_resumes_id"), type_="unique")
        batch.drop_column("resumes_id")
    with op.batch_alter_table("areas") as batch:
        batch.drop_column("quiet_end")
        batch.drop_column("quiet_start")
    with op.batch_alter_table("audio_assets") as batch:
        batch.drop_column("stream_url")
    with op.batch_alter_table("bulletins") as batch:
        batch.drop_column("kind")
