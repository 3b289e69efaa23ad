"""The demo district: Huyện Triệu Sơn (Thanh Hóa), its 34 communes and demo users."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from scheduler import areas
from scheduler.auth import hash_password
from scheduler.models import Area, Role, User

DEMO_OPERATOR_COMMUNE = "15667"  # Xã Thọ Sơn


@dataclass(frozen=True)
class DemoUser:
    username: str
    password: str
    role: Role
    display_name: str
    commune_code: str | None = None


DEMO_USERS = (
    DemoUser("admin", "loa-admin", Role.ADMIN, "Quản trị hệ thống"),
    DemoUser("trungtam", "loa-trungtam", Role.CENTRE, "Trung tâm VHTTDL huyện Triệu Sơn"),
    DemoUser("thoson", "loa-thoson", Role.OPERATOR, "Đài truyền thanh xã Thọ Sơn",
             DEMO_OPERATOR_COMMUNE),
    DemoUser("baocao", "loa-baocao", Role.REPORTER, "Phòng Văn hóa và Thông tin"),
)  # fmt: skip


def is_empty(session: Session) -> bool:
    return not session.scalar(select(func.count()).select_from(Area))


def seed_demo(session: Session, now: datetime) -> bool:
    """Seed the demo district and users into an empty database; False if it was not empty."""
    if not is_empty(session):
        return False
    areas.import_units(session, areas.official_units(areas.DEMO_DISTRICT))
    for demo in DEMO_USERS:
        commune = areas.commune_by_code(session, demo.commune_code) if demo.commune_code else None
        session.add(
            User(
                username=demo.username,
                display_name=demo.display_name,
                password_hash=hash_password(demo.password),
                role=demo.role.value,
                commune=commune,
                language="vi",
                active=True,
                created_at=now,
            )
        )
    return True
