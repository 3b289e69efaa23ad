"""broadcasts by status and time: the log filtered by status, the waiting list, readiness

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-27
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_broadcasts_status_scheduled_at", "broadcasts", ["status", "scheduled_at"])


def downgrade() -> None:
    op.drop_index("ix_broadcasts_status_scheduled_at", table_name="broadcasts")
