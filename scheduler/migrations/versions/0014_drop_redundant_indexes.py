"""drop three indexes another one already serves: each is the leading column of a
unique or composite index, and each costs every insert of a materialised week

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-27
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (index, table, column): served by (placement_id, commune_id, planned_at),
# (status, scheduled_at) and (broadcast_id, endpoint_id)
REDUNDANT = (
    ("ix_broadcasts_placement_id", "broadcasts", "placement_id"),
    ("ix_broadcasts_status", "broadcasts", "status"),
    ("ix_deliveries_broadcast_id", "deliveries", "broadcast_id"),
)


def upgrade() -> None:
    for name, table, _ in REDUNDANT:
        op.drop_index(name, table_name=table)


def downgrade() -> None:
    for name, table, column in REDUNDANT:
        op.create_index(name, table, [column])
