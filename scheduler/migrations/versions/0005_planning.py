"""planning: slots, groups, placements; broadcasts planned by a placement into a slot

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Every new district starts with the morning and afternoon programmes of the field.
DEFAULT_SLOTS = (("Buổi sáng", "05:30", 60), ("Buổi chiều", "17:00", 60))


def _link(name: str, left: str, right_table: str, right: str) -> None:
    op.create_table(
        name,
        sa.Column(f"{left}_id", sa.Integer(), nullable=False),
        sa.Column(f"{right}_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            [f"{left}_id"], [f"{left}s.id"], name=op.f(f"fk_{name}_{left}_id_{left}s"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            [f"{right}_id"], [f"{right_table}.id"],
            name=op.f(f"fk_{name}_{right}_id_{right_table}"),
        ),
        sa.PrimaryKeyConstraint(f"{left}_id", f"{right}_id", name=op.f(f"pk_{name}")),
    )  # fmt: skip


def upgrade() -> None:
    slots = op.create_table(
        "slots",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("start", sa.String(length=5), nullable=False),
        sa.Column("minutes", sa.Integer(), nullable=False),
        sa.Column("weekdays", sa.String(length=7), nullable=False),
        sa.Column("all_communes", sa.Boolean(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_slots")),
    )
    op.create_table(
        "groups",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_groups")),
        sa.UniqueConstraint("name", name=op.f("uq_groups_name")),
    )
    op.create_table(
        "placements",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("bulletin_id", sa.Integer(), nullable=False),
        sa.Column("priority", sa.String(length=16), nullable=False),
        sa.Column("target", sa.String(length=8), nullable=False),
        sa.Column("group_id", sa.Integer(), nullable=True),
        sa.Column("rule", sa.String(length=8), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("repeat", sa.Integer(), nullable=True),
        sa.Column("every_seconds", sa.Integer(), nullable=True),
        sa.Column("date_from", sa.Date(), nullable=True),
        sa.Column("date_to", sa.Date(), nullable=True),
        sa.Column("weekdays", sa.String(length=7), nullable=True),
        sa.Column("created_by", sa.String(length=120), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cancelled_by", sa.String(length=120), nullable=True),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["bulletin_id"], ["bulletins.id"], name=op.f("fk_placements_bulletin_id_bulletins")
        ),
        sa.ForeignKeyConstraint(
            ["group_id"], ["groups.id"], name=op.f("fk_placements_group_id_groups")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_placements")),
    )
    op.create_index(op.f("ix_placements_bulletin_id"), "placements", ["bulletin_id"])
    _link("slot_communes", "slot", "areas", "commune")
    _link("group_communes", "group", "areas", "commune")
    _link("placement_communes", "placement", "areas", "commune")
    _link("placement_slots", "placement", "slots", "slot")
    with op.batch_alter_table("broadcasts") as batch:
        batch.drop_constraint("uq_broadcasts_bulletin_id_commune_id_scheduled_at", "unique")
        batch.add_column(sa.Column("placement_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("planned_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("slot_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("slot_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("position", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("overflow", sa.Boolean(), nullable=False, server_default="0"))
        batch.create_foreign_key(
            "fk_broadcasts_placement_id_placements", "placements", ["placement_id"], ["id"]
        )
        batch.create_foreign_key("fk_broadcasts_slot_id_slots", "slots", ["slot_id"], ["id"])
        batch.create_index("ix_broadcasts_placement_id", ["placement_id"])
        batch.create_unique_constraint(
            "uq_broadcasts_placement_id_commune_id_planned_at",
            ["placement_id", "commune_id", "planned_at"],
        )
    now = datetime.now(UTC).replace(tzinfo=None)
    op.bulk_insert(
        slots,
        [
            {"name": name, "start": start, "minutes": minutes, "weekdays": "1234567",
             "all_communes": True, "active": True, "created_at": now}
            for name, start, minutes in DEFAULT_SLOTS
        ],
    )  # fmt: skip


def downgrade() -> None:
    with op.batch_alter_table("broadcasts") as batch:
        batch.drop_constraint("uq_broadcasts_placement_id_commune_id_planned_at", "unique")
        batch.drop_index("ix_broadcasts_placement_id")
        batch.drop_constraint("fk_broadcasts_slot_id_slots", "foreignkey")
        batch.drop_constraint("fk_broadcasts_placement_id_placements", "foreignkey")
        for column in ("overflow", "position", "slot_at", "slot_id", "planned_at", "placement_id"):
            batch.drop_column(column)
        batch.create_unique_constraint(
            "uq_broadcasts_bulletin_id_commune_id_scheduled_at",
            ["bulletin_id", "commune_id", "scheduled_at"],
        )
    for table in ("placement_slots", "placement_communes", "group_communes", "slot_communes"):
        op.drop_table(table)
    op.drop_index(op.f("ix_placements_bulletin_id"), table_name="placements")
    op.drop_table("placements")
    op.drop_table("groups")
    op.drop_table("slots")
