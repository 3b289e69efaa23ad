"""content kinds and quiet hours: recordings and relays beside speech; quiet hours per commune

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


def downgrade() -> None:
    with op.batch_alter_table("areas") as batch:
        batch.drop_column("quiet_end")
        batch.drop_column("quiet_start")
    with op.batch_alter_table("audio_assets") as batch:
        batch.drop_column("stream_url")
    with op.batch_alter_table("bulletins") as batch:
        batch.drop_column("kind")
