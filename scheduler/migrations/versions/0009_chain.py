"""the tamper-evident chain: each history row's place, digest and sealed facts

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("broadcast_events") as batch:
        batch.add_column(sa.Column("seq", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("digest", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("facts", sa.Text(), nullable=True))
        batch.create_unique_constraint(op.f("uq_broadcast_events_seq"), ["seq"])


def downgrade() -> None:
    with op.batch_alter_table("broadcast_events") as batch:
        batch.drop_constraint(op.f("uq_broadcast_events_seq"), type_="unique")
        batch.drop_column("facts")
        batch.drop_column("digest")
        batch.drop_column("seq")
