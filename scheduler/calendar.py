"""What the panel's week calendar and placement pages read: flat selects, no Flask.

Times are aware UTC here; the panel shows them in the settings' timezone. Besides the
queries, two plain checks the calendar marks: `clashes` (a commune's queue longer than its
slot, two of a commune's items playing at once) and `slot_overlaps` (two slots of one
commune overlapping in time on a day).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from itertools import combinations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from scheduler.models import (
    Area,
    AudioAsset,
    Broadcast,
    Bulletin,
    BulletinStatus,
    Group,
    Placement,
    Slot,
    Status,
    placement_communes,
    placement_slots,
    slot_communes,
)
from scheduler.planning import GAP, OPEN

# --- the week's broadcasts ----------------------------------------------------------------


@dataclass(frozen=True)
class Item:
    """One broadcast as the calendar shows it."""

    id: int
    commune_id: int
    commune: str
    bulletin_id: int
    title: str
    priority: str
    status: str
    scheduled_at: datetime
    planned_at: datetime | None
    slot_id: int | None
    slot_at: datetime | None
    position: int | None
    overflow: bool
    seconds: float

    @property
    def end(self) -> datetime:
        return self.scheduled_at + timedelta(seconds=self.seconds)

    @property
    def open(self) -> bool:
        """Not started yet: it can still be cancelled."""
        return self.status in OPEN


def items(
    session: Session, start: datetime, end: datetime, commune_id: int | None = None
) -> list[Item]:
    """Broadcasts from start to end (all communes, or one), in play order."""
    q = (
        select(
            Broadcast.id,
            Broadcast.commune_id,
            Area.name,
            Broadcast.bulletin_id,
            Bulletin.title,
            Broadcast.priority,
            Broadcast.status,
            Broadcast.scheduled_at,
            Broadcast.planned_at,
            Broadcast.slot_id,
            Broadcast.slot_at,
            Broadcast.position,
            Broadcast.overflow,
            AudioAsset.duration_seconds,
        )
        .join(Area, Broadcast.commune_id == Area.id)
        .join(Bulletin, Broadcast.bulletin_id == Bulletin.id)
        .join(AudioAsset, Broadcast.audio_id == AudioAsset.id)
        .where(Broadcast.scheduled_at >= start, Broadcast.scheduled_at < end)
        .order_by(Broadcast.scheduled_at, Broadcast.position, Broadcast.id)
    )
    if commune_id is not None:
        q = q.where(Broadcast.commune_id == commune_id)
    return [Item(*tuple(row)) for row in session.execute(q)]


# --- slots --------------------------------------------------------------------------------


@dataclass(frozen=True)
class SlotInfo:
    id: int
    name: str
    start: str  # "HH:MM", local
    minutes: int
    weekdays: str
    communes: frozenset[int] | None  # None: every commune

    @property
    def begin(self) -> int:
        """Minutes after local midnight."""
        hours, minutes = self.start.split(":")
        return int(hours) * 60 + int(minutes)

    @property
    def finish(self) -> int:
        return self.begin + self.minutes

    def runs_on(self, day: date) -> bool:
        return str(day.isoweekday()) in self.weekdays

    def serves(self, commune_id: int | None) -> bool:
        """For this commune (None: the district, any commune)."""
        return commune_id is None or self.communes is None or commune_id in self.communes


def slots(session: Session, also: Iterable[int] = ()) -> list[SlotInfo]:
    """The active slots, and these (inactive ones broadcasts still sit in), by start."""
    rows = session.execute(
        select(
            Slot.id, Slot.name, Slot.start, Slot.minutes, Slot.weekdays, Slot.all_communes
        ).where(Slot.active.is_(True) | Slot.id.in_(list(also)))
    ).all()
    members: dict[int, set[int]] = defaultdict(set)
    for slot_id, commune_id in session.execute(
        select(slot_communes.c.slot_id, slot_communes.c.commune_id)
    ):
        members[slot_id].add(commune_id)
    out = [
        SlotInfo(r.id, r.name, r.start, r.minutes, r.weekdays,
                 None if r.all_communes else frozenset(members[r.id]))
        for r in rows
    ]  # fmt: skip
    return sorted(out, key=lambda s: (s.start, s.id))


def slot_overlaps(
    all_slots: Sequence[SlotInfo], day: date, commune_id: int | None = None
) -> dict[int, list[str]]:
    """Slot id -> the names of the other slots overlapping it in time on this day, for
    this commune (None: for any one commune)."""
    out: dict[int, list[str]] = defaultdict(list)
    running = [s for s in all_slots if s.runs_on(day) and s.serves(commune_id)]
    for a, b in combinations(running, 2):
        shared = (
            commune_id is not None
            or a.communes is None
            or b.communes is None
            or bool(a.communes & b.communes)
        )
        if shared and a.begin < b.finish and b.begin < a.finish:
            out[a.id].append(b.name)
            out[b.id].append(a.name)
    return out


def clashes(found: Sequence[Item], minutes: Mapping[int, int]) -> dict[int, str]:
    """Item id -> "over" when its commune's queue in that slot lasts longer than the slot,
    "overlap" when it plays while another item of its commune is playing."""
    out: dict[int, str] = {}
    live = [i for i in found if i.status != Status.CANCELLED.value]
    queues: dict[tuple[int, int, datetime], list[Item]] = defaultdict(list)
    for i in live:
        if i.slot_id is not None and i.slot_at is not None and i.slot_id in minutes:
            queues[(i.commune_id, i.slot_id, i.slot_at)].append(i)
    for (_, slot_id, slot_at), queue in queues.items():
        length = timedelta(minutes=minutes[slot_id])
        total = timedelta(seconds=sum(i.seconds for i in queue)) + GAP * (len(queue) - 1)
        if total > length or max(i.end for i in queue) > slot_at + length:
            out.update((i.id, "over") for i in queue)
    by_commune: dict[int, list[Item]] = defaultdict(list)
    for i in live:
        by_commune[i.commune_id].append(i)
    for queue in by_commune.values():
        queue.sort(key=lambda i: i.scheduled_at)
        latest: Item | None = None  # the item ending last so far
        for i in queue:
            if latest is not None and i.scheduled_at < latest.end:
                out[i.id] = out[latest.id] = "overlap"
            if latest is None or i.end > latest.end:
                latest = i
    return out


# --- placements ---------------------------------------------------------------------------


@dataclass
class PlacementInfo:
    id: int
    bulletin_id: int
    title: str
    priority: str
    target: str  # all | group | list
    group: str | None
    rule: str  # once | slots | repeat
    at: datetime | None
    repeat: int | None
    every_seconds: int | None
    date_from: date | None
    date_to: date | None
    weekdays: str | None
    created_by: str
    created_at: datetime
    cancelled_at: datetime | None
    slots: list[str] = field(default_factory=list)
    communes: list[str] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)  # broadcasts by status


def placements(
    session: Session,
    bulletin_id: int | None = None,
    commune_id: int | None = None,
    limit: int = 200,
) -> list[PlacementInfo]:
    """Placements, newest first (of a bulletin; with broadcasts in a commune), with their
    slots' and communes' names and their broadcasts counted by status (in that commune)."""
    q = (
        select(
            Placement.id, Placement.bulletin_id, Bulletin.title, Placement.priority,
            Placement.target, Group.name, Placement.rule, Placement.at, Placement.repeat,
            Placement.every_seconds, Placement.date_from, Placement.date_to,
            Placement.weekdays, Placement.created_by, Placement.created_at,
            Placement.cancelled_at,
        )
        .join(Bulletin, Placement.bulletin_id == Bulletin.id)
        .outerjoin(Group, Placement.group_id == Group.id)
        .order_by(Placement.id.desc())
        .limit(limit)
    )  # fmt: skip
    if bulletin_id is not None:
        q = q.where(Placement.bulletin_id == bulletin_id)
    if commune_id is not None:
        q = q.where(
            Placement.id.in_(
                select(Broadcast.placement_id).where(Broadcast.commune_id == commune_id)
            )
        )
    found = {row[0]: PlacementInfo(*tuple(row)) for row in session.execute(q)}
    if not found:
        return []
    ids = list(found)
    for placement_id, name in session.execute(
        select(placement_slots.c.placement_id, Slot.name)
        .join(Slot, placement_slots.c.slot_id == Slot.id)
        .where(placement_slots.c.placement_id.in_(ids))
        .order_by(Slot.start)
    ):
        found[placement_id].slots.append(name)
    for placement_id, name in session.execute(
        select(placement_communes.c.placement_id, Area.name)
        .join(Area, placement_communes.c.commune_id == Area.id)
        .where(placement_communes.c.placement_id.in_(ids))
        .order_by(Area.code)
    ):
        found[placement_id].communes.append(name)
    counted = (
        select(Broadcast.placement_id, Broadcast.status, func.count())
        .where(Broadcast.placement_id.in_(ids))
        .group_by(Broadcast.placement_id, Broadcast.status)
    )
    if commune_id is not None:
        counted = counted.where(Broadcast.commune_id == commune_id)
    for placement_id, status, n in session.execute(counted):
        assert placement_id is not None
        found[placement_id].counts[status] = n
    return list(found.values())


@dataclass(frozen=True)
class Upcoming:
    id: int
    commune: str
    scheduled_at: datetime
    status: str
    overflow: bool


def next_broadcasts(
    session: Session,
    bulletin_id: int,
    now: datetime,
    limit: int = 10,
    commune_id: int | None = None,
) -> tuple[list[Upcoming], int]:
    """A bulletin's next broadcasts not started yet (in a commune), and how many there are."""
    where = [
        Broadcast.bulletin_id == bulletin_id,
        Broadcast.status.in_(OPEN),
        Broadcast.scheduled_at >= now,
    ]
    if commune_id is not None:
        where.append(Broadcast.commune_id == commune_id)
    rows = session.execute(
        select(Broadcast.id, Area.name, Broadcast.scheduled_at, Broadcast.status,
               Broadcast.overflow)
        .join(Area, Broadcast.commune_id == Area.id)
        .where(*where)
        .order_by(Broadcast.scheduled_at, Area.code)
        .limit(limit)
    )  # fmt: skip
    total = session.scalar(select(func.count()).select_from(Broadcast).where(*where)) or 0
    return [Upcoming(*row) for row in rows], total


# --- what the placement form offers -------------------------------------------------------


@dataclass(frozen=True)
class Choice:
    id: int
    title: str
    priority: str
    seconds: float | None


def approved_bulletins(session: Session, limit: int = 200) -> list[Choice]:
    """Approved bulletins, newest first, with their audio length if rendered."""
    rows = session.execute(
        select(Bulletin.id, Bulletin.title, Bulletin.priority, AudioAsset.duration_seconds)
        .outerjoin(AudioAsset, Bulletin.audio_id == AudioAsset.id)
        .where(Bulletin.status == BulletinStatus.APPROVED.value)
        .order_by(Bulletin.id.desc())
        .limit(limit)
    )
    return [Choice(*row) for row in rows]


def group_names(session: Session) -> list[str]:
    return list(session.scalars(select(Group.name).order_by(Group.name)))
