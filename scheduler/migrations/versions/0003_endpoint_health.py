"""endpoint health: address, heartbeat facts, state and its transitions

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("endpoints") as batch:
        batch.add_column(sa.Column("address", sa.String(length=500), nullable=True))
        batch.add_column(
            sa.Column("state", sa.String(length=8), nullable=False, server_default="down")
        )
        batch.add_column(sa.Column("state_since", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("agent_version", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("clock_offset_seconds", sa.Float(), nullable=True))
        batch.add_column(sa.Column("cache_free_bytes", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("missing_audio", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("cache_error", sa.String(length=32), nullable=True))
    op.create_table(
        "endpoint_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("endpoint_id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("from_state", sa.String(length=8), nullable=True),
        sa.Column("to_state", sa.String(length=8), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["endpoint_id"],
            ["endpoints.id"],
            name=op.f("fk_endpoint_events_endpoint_id_endpoints"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_endpoint_events")),
    )
    op.create_index(
        op.f("ix_endpoint_events_endpoint_id"), "endpoint_events", ["endpoint_id"], unique=False
    )
    op.create_index(op.f("ix_endpoint_events_at"), "endpoint_events", ["at"], unique=False)
    op.create_index(op.f("ix_deliveries_status"), "deliveries", ["status"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_deliveries_status"), table_name="deliveries")
    op.drop_index(op.f("ix_endpoint_events_at"), table_name="endpoint_events")
    op.drop_index(op.f("ix_endpoint_events_endpoint_id"), table_name="endpoint_events")
    op.drop_table("endpoint_events")
    with op.batch_alter_table("endpoints") as batch:
        for column in (
            "cache_error",
            "missing_audio",
            "cache_free_bytes",
            "clock_offset_seconds",
            "agent_version",
            "state_since",
            "state",
            "address",
        ):
            batch.drop_column(column)
