"""The area tree (province -> district -> commune) and its import from the official list."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from importlib import resources

from sqlalchemy import select
from sqlalchemy.orm import Session

from scheduler.errors import InvalidInput
from scheduler.models import Area

DEMO_DISTRICT = "397"  # Huyện Triệu Sơn, Tỉnh Thanh Hóa

_KINDS = {
    "Tỉnh": "tinh",
    "Thành phố": "thanh-pho",
    "Huyện": "huyen",
    "Quận": "quan",
    "Thị xã": "thi-xa",
}


@dataclass(frozen=True)
class UnitRow:
    """One commune of the official list (mã đơn vị hành chính), with its parents."""

    province_code: str
    province: str
    district_code: str
    district: str
    commune_code: str
    commune: str
    commune_type: str


def _kind(name: str) -> str:
    for prefix, kind in _KINDS.items():
        if name.startswith(prefix + " "):
            return kind
    return "other"


def official_units(district_code: str | None = None) -> Iterator[UnitRow]:
    """Rows of the 2021 official list shipped with Loa, optionally one district's."""
    text = resources.files("scheduler").joinpath("data/admin-units-2021.csv").read_text("utf-8")
    for row in csv.DictReader(io.StringIO(text)):
        if district_code is None or row["district_code"] == district_code:
            yield UnitRow(**row)


def _get_or_add(
    session: Session, level: str, code: str, name: str, kind: str, parent: Area | None
) -> Area:
    area = session.scalar(select(Area).where(Area.level == level, Area.code == code))
    if area is None:
        area = Area(level=level, code=code, name=name, kind=kind, parent=parent)
        session.add(area)
        session.flush()
    else:
        area.name, area.kind, area.parent = name, kind, parent
    return area


def import_units(session: Session, rows: Iterable[UnitRow]) -> int:
    """Create or update areas from official rows; returns the number of communes."""
    count = 0
    for row in rows:
        province = _get_or_add(
            session, "province", row.province_code, row.province, _kind(row.province), None
        )
        district = _get_or_add(
            session, "district", row.district_code, row.district, _kind(row.district), province
        )
        _get_or_add(session, "commune", row.commune_code, row.commune, row.commune_type, district)
        count += 1
    return count


def communes(session: Session) -> list[Area]:
    return list(session.scalars(select(Area).where(Area.level == "commune").order_by(Area.code)))


def commune_by_code(session: Session, code: str) -> Area:
    area = session.scalar(select(Area).where(Area.level == "commune", Area.code == code))
    if area is None:
        raise InvalidInput(f"no commune has the code {code!r}", "unknown_commune")
    return area
