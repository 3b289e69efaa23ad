"""The demo district: Huyện Triệu Sơn (Thanh Hóa), its 34 communes and demo users."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from scheduler import areas, bulletins, users
from scheduler.auth import Actor
from scheduler.context import Loa
from scheduler.models import Area, Role

DEMO_OPERATOR_COMMUNE = "15667"  # Xã Thọ Sơn
DEMO_ACTOR = Actor("user:trungtam", Role.ADMIN)


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
        users.create_user(
            session, None, username=demo.username, display_name=demo.display_name,
            password=demo.password, role=demo.role.value,
            communes=[demo.commune_code] if demo.commune_code else [], now=now,
        )  # fmt: skip
    return True


DEMO_BULLETIN_TITLE = "Tuyên truyền cải cách hành chính"
DEMO_BULLETIN_TEXT = (
    "Ủy ban nhân dân xã thông báo: từ tháng này, bà con có thể nộp hồ sơ đăng ký khai sinh, "
    "khai tử và chứng thực bản sao trực tuyến trên Cổng dịch vụ công quốc gia. "
    "Bộ phận một cửa của xã tiếp nhận hồ sơ vào các ngày làm việc trong tuần."
)


def seed_operator_task(loa: Loa) -> None:
    """Thọ Sơn gets a loudspeaker with no device (its operator confirms), and a CCHC
    bulletin airs there now, so the demo operator finds it waiting for "đã phát"."""
    from scheduler import service  # the service layer builds on this module's data

    service.create_endpoint(
        loa, DEMO_ACTOR, DEMO_OPERATOR_COMMUNE, "Đài truyền thanh xã (xác nhận tay)", "manual"
    )
    bulletin = service.create_bulletin(
        loa, DEMO_ACTOR, title=DEMO_BULLETIN_TITLE, text=DEMO_BULLETIN_TEXT, topic="CCHC"
    )
    with loa.transaction() as session:
        bulletins.approve(session, DEMO_ACTOR, bulletins.get_bulletin(session, bulletin.id),
                          loa.now())  # fmt: skip
    service.schedule_bulletin(loa, DEMO_ACTOR, bulletin.id, [DEMO_OPERATOR_COMMUNE], None)
