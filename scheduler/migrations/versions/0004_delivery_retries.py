"""delivery retries: when a transient driver error is tried again

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("deliveries") as batch:
        batch.add_column(sa.Column("retry_at", sa.DateTime(timezone=True), nullable=True))
        batch.create_index("ix_deliveries_retry_at", ["retry_at"])


def downgrade() -> None:
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_index("ix_deliveries_retry_at")
        batch.drop_column("retry_at")
