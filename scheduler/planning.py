"""A district's week: slots (khung giờ), groups of communes, placements (lịch phát)
materialised into broadcast rows over a rolling horizon, and each commune's queue per slot.

Materialising is idempotent: a broadcast is unique per (placement, commune, planned time).
Packing walks a commune's slot occurrences in time order and lays their broadcasts back to
back by real audio length, emergency > priority > normal, then the centre's order; what
does not fit moves on to the commune's next slot, flagged `overflow` — never dropped, never
cut. Only rows not yet dispatched and not about to play move; history is never touched.
"""

from __future__ import annotations

import logging
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from sqlalchemy import (
    Boolean,
    ColumnElement,
    Connection,
    String,
    bindparam,
    cast,
    func,
    insert,
    literal,
    select,
    update,
)
from sqlalchemy.orm import Session, selectinload

from scheduler import areas, audit, quiet
from scheduler.auth import MANAGERS, Actor
from scheduler.bulletins import require_approved
from scheduler.clock import parse_hhmm
from scheduler.db import bulk_insert_columns, in_ids, key_share, keys_checked_once
from scheduler.errors import Conflict, InvalidInput, NotFound
from scheduler.models import (
    Area,
    AudioAsset,
    Broadcast,
    BroadcastEvent,
    Bulletin,
    BulletinStatus,
    Delivery,
    Endpoint,
    Group,
    Placement,
    Priority,
    Slot,
    Status,
    UTCDateTime,
)
from scheduler.status import cancel_moves

log = logging.getLogger(__name__)

FREEZE = timedelta(seconds=60)  # what plays within a minute keeps its time
GAP = timedelta(seconds=1)  # between two items of a queue
MAX_REPEAT = 1000
MAX_RANGE_DAYS = 366
OVERFLOW_DAYS = 31  # how far past the horizon an overflow may still be queued
OPEN = (Status.SCHEDULED.value, Status.DELIVERED.value)
ALL_DAYS = "1234567"
PLACING_LOCK = 7_203_403  # PostgreSQL advisory lock space: placements made in batches


# --- slots and groups ---------------------------------------------------------------------


def local_midnight(moment: datetime, tz: ZoneInfo) -> datetime:
    return datetime.combine(moment.astimezone(tz).date(), time(), tz)


def weekdays_text(days: Iterable[int] | None) -> str:
    """ISO weekdays (1 = Monday) as stored: "135"; refuses an empty or out-of-range list."""
    if days is None:
        return ALL_DAYS
    chosen = sorted(set(days))
    if not chosen or chosen[0] < 1 or chosen[-1] > 7:
        raise InvalidInput("weekdays are 1 (Monday) to 7 (Sunday), at least one", "invalid_days")
    return "".join(map(str, chosen))


def communes_by_code(session: Session, codes: Sequence[str]) -> list[Area]:
    if len(set(codes)) != len(codes):
        raise InvalidInput("a commune is listed twice", "duplicate_commune")
    return [areas.commune_by_code(session, code) for code in codes]


def create_slot(
    session: Session,
    actor: Actor,
    *,
    name: str,
    start: str,
    minutes: int,
    weekdays: Sequence[int] | None,
    communes: Sequence[str] | None,
    now: datetime,
) -> Slot:
    actor.require(*MANAGERS)
    begin = parse_hhmm(start)
    if minutes < 1:
        raise InvalidInput("a slot lasts at least one minute", "invalid_minutes")
    if begin.hour * 60 + begin.minute + minutes > 24 * 60:
        raise InvalidInput(
            f"the slot {start} + {minutes} min ends after midnight; make two slots",
            "slot_past_midnight",
        )
    slot = Slot(
        name=name.strip(),
        start=begin.strftime("%H:%M"),
        minutes=minutes,
        weekdays=weekdays_text(weekdays),
        all_communes=communes is None,
        active=True,
        created_at=now,
        communes=communes_by_code(session, communes or []),
    )
    if not slot.name:
        raise InvalidInput("a slot needs a name", "invalid_name")
    names = session.scalars(select(Slot.name).where(Slot.active.is_(True)))
    if slot.name.casefold() in {n.casefold() for n in names}:  # the calendar names slots
        raise InvalidInput(f"a slot is already named {slot.name!r}", "duplicate_slot")
    session.add(slot)
    session.flush()
    audit.record(session, actor, "create", slot, now, f"{slot.name} {slot.start}, {minutes} min")
    return slot


def remove_slot(session: Session, actor: Actor, slot_id: int, now: datetime) -> Slot:
    """Retire a slot (its history stays); refused while broadcasts are still planned in it."""
    actor.require(*MANAGERS)
    slot = session.get(Slot, slot_id)
    if slot is None or not slot.active:
        raise NotFound(f"no slot has the id {slot_id}", "unknown_slot")
    planned = session.scalar(
        select(func.count()).where(
            Broadcast.slot_id == slot_id,
            Broadcast.status.in_(OPEN),
            Broadcast.scheduled_at > now,
        )
    )
    if planned:
        raise Conflict(
            f"{planned} broadcasts are still planned in this slot; cancel their placements first",
            "slot_in_use",
        )
    slot.active = False
    audit.record(session, actor, "retire", slot, now, slot.name)
    return slot


def create_group(
    session: Session, actor: Actor, name: str, communes: Sequence[str], now: datetime
) -> Group:
    actor.require(*MANAGERS)
    name = name.strip()
    if not name or not communes:
        raise InvalidInput("a group needs a name and at least one commune", "invalid_group")
    if session.scalar(select(Group.id).where(Group.name == name)) is not None:
        raise Conflict(f"a group named {name!r} exists", "duplicate")
    group = Group(name=name, created_at=now, communes=communes_by_code(session, communes))
    session.add(group)
    session.flush()
    audit.record(session, actor, "create", group, now, name)
    return group


def group_by_name(session: Session, name: str) -> Group:
    group = session.scalar(select(Group).where(Group.name == name))
    if group is None:
        raise NotFound(f"no group is named {name!r}", "unknown_group")
    return group


@dataclass(frozen=True)
class Occurrence:
    """One slot on one day, in UTC."""

    slot_id: int
    start: datetime
    end: datetime


def slot_occurrences(
    slots: Sequence[Slot], first: date, last: date, tz: ZoneInfo
) -> dict[int | None, list[Occurrence]]:
    """Each slot's occurrences on the local days first..last, keyed by commune id (None:
    slots for all communes), each list in time order."""
    out: dict[int | None, list[Occurrence]] = defaultdict(list)
    day = first
    while day <= last:
        for slot in slots:
            if str(day.isoweekday()) not in slot.weekdays:
                continue
            start = datetime.combine(day, parse_hhmm(slot.start), tz).astimezone(UTC)
            occ = Occurrence(slot.id, start, start + timedelta(minutes=slot.minutes))
            for key in [None] if slot.all_communes else [c.id for c in slot.communes]:
                out[key].append(occ)
        day += timedelta(days=1)
    for occs in out.values():
        occs.sort(key=lambda o: (o.start, o.slot_id))
    return out


def active_slots(session: Session) -> list[Slot]:
    return list(
        session.scalars(
            select(Slot).where(Slot.active.is_(True)).options(selectinload(Slot.communes))
        )
    )


# --- placements ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """When a placement plays: `once` at a time; into `slot_ids` on the local days
    date_from..date_to (optionally only `weekdays`); or `repeat` times from `at`, every
    `every_seconds`."""

    once: datetime | None = None
    slot_ids: tuple[int, ...] = ()
    date_from: date | None = None
    date_to: date | None = None
    weekdays: tuple[int, ...] | None = None
    at: datetime | None = None
    repeat: int | None = None
    every_seconds: int | None = None


@dataclass(frozen=True)
class Targets:
    """Where: every commune, a group by name, or a list of commune codes."""

    all: bool = False
    group: str | None = None
    communes: tuple[str, ...] = ()


def _apply_rule(session: Session, placement: Placement, rule: Rule, now: datetime) -> None:
    if rule.once is not None:
        placement.rule, placement.at = "once", rule.once
        if rule.once < now - FREEZE:
            raise InvalidInput(f"the time {rule.once.isoformat()} is in the past", "time_in_past")
    elif rule.repeat is not None:
        if rule.at is None or rule.every_seconds is None:
            raise InvalidInput("a repeat needs at, repeat and every_seconds", "invalid_rule")
        if not 1 <= rule.repeat <= MAX_REPEAT:
            raise InvalidInput(f"repeat is 1 to {MAX_REPEAT} times", "invalid_repeat")
        if rule.every_seconds < 1:
            raise InvalidInput("every_seconds is at least 1", "invalid_repeat")
        if rule.at < now - FREEZE:
            raise InvalidInput(f"the time {rule.at.isoformat()} is in the past", "time_in_past")
        placement.rule, placement.at = "repeat", rule.at
        placement.repeat, placement.every_seconds = rule.repeat, rule.every_seconds
    elif rule.slot_ids:
        if rule.date_from is None or rule.date_to is None:
            raise InvalidInput("slots need from and to dates", "invalid_rule")
        if rule.date_to < rule.date_from:
            raise InvalidInput(
                f"the range ends ({rule.date_to}) before it starts ({rule.date_from})",
                "invalid_range",
            )
        if rule.date_to < (now - timedelta(days=1)).date():
            raise InvalidInput(f"the range ended on {rule.date_to}", "range_in_past")
        if (rule.date_to - rule.date_from).days > MAX_RANGE_DAYS:
            raise InvalidInput(
                f"a range is at most {MAX_RANGE_DAYS} days; check the year", "range_too_long"
            )
        slots = []
        for slot_id in dict.fromkeys(rule.slot_ids):
            slot = session.get(Slot, slot_id)
            if slot is None or not slot.active:
                raise NotFound(f"no slot has the id {slot_id}", "unknown_slot")
            slots.append(slot)
        placement.rule, placement.slots = "slots", slots
        placement.date_from, placement.date_to = rule.date_from, rule.date_to
        placement.weekdays = None if rule.weekdays is None else weekdays_text(rule.weekdays)
    else:
        raise InvalidInput("the rule is once, slots or repeat", "invalid_rule")


def _apply_targets(session: Session, placement: Placement, targets: Targets) -> None:
    if targets.all:
        placement.target = "all"
    elif targets.group is not None:
        placement.target, placement.group = "group", group_by_name(session, targets.group)
    elif targets.communes:
        placement.target = "list"
        placement.communes = communes_by_code(session, list(targets.communes))
    else:
        raise InvalidInput('choose the communes: "all", a group or a list', "no_communes")


def create_placement(
    session: Session,
    actor: Actor,
    bulletin: Bulletin,
    targets: Targets,
    rule: Rule,
    priority: Priority | None,
    now: datetime,
) -> Placement:
    """A checked placement row (not materialised yet)."""
    actor.require(*MANAGERS)
    require_approved(bulletin)
    if bulletin.audio is None:
        raise Conflict(f"bulletin {bulletin.id} has no audio yet", "no_audio")
    placement = Placement(
        bulletin=bulletin,
        priority=(priority or Priority(bulletin.priority)).value,
        created_by=actor.name,
        created_at=now,
    )
    _apply(session, placement, targets, rule, now)
    session.add(placement)
    session.flush()
    audit.record(
        session, actor, "place", placement, now, f"bulletin {bulletin.id}, {placement.rule}"
    )
    return placement


def _apply(
    session: Session, placement: Placement, targets: Targets, rule: Rule, now: datetime
) -> None:
    """Give a placement its targets and rule, checked."""
    _apply_targets(session, placement, targets)
    _apply_rule(session, placement, rule, now)
    length = placement.bulletin.audio.duration_seconds if placement.bulletin.audio else 0
    if placement.rule == "slots" and all(slot.minutes * 60 < length for slot in placement.slots):
        raise InvalidInput(
            f"the bulletin lasts {length:.0f} s, longer than any of its slots", "never_fits"
        )
    _refuse_duplicate(session, placement)


def edit_placement(
    session: Session,
    actor: Actor,
    placement_id: int,
    targets: Targets,
    rule: Rule,
    priority: Priority | None,
    now: datetime,
    until: datetime,
    tz: ZoneInfo,
) -> tuple[list[int], set[int]]:
    """Change a placement in place. Its broadcasts not started that the new rule and
    targets no longer ask for are cancelled, the others take its priority; what already
    played is never touched. Returns the ids cancelled and the communes whose queues
    changed; the caller materialises what is new and re-packs."""
    actor.require(*MANAGERS)
    placement = get_placement(session, placement_id)
    if placement.cancelled_at is not None:
        raise Conflict(f"placement {placement_id} was stopped", "placement_cancelled")
    with session.no_autoflush:
        _apply(session, placement, targets, rule, now)
    if priority is not None:
        placement.priority = priority.value
    wanted, _ = _wanted(session, [placement], now, until, tz, None)
    keep = {(w.commune_id, w.planned_at) for w in wanted}
    future = _not_started(session, placement_id, now + FREEZE)
    cancelled = []
    for b in future:
        if (b.commune_id, b.planned_at) in keep:
            b.priority = placement.priority
            continue
        cancel_moves(session, b, now, actor.name, "placement changed")
        cancelled.append(b.id)
    session.flush()
    audit.record(session, actor, "edit", placement, now, f"{len(cancelled)} broadcasts cancelled")
    return cancelled, {b.commune_id for b in future}


def get_placement(session: Session, placement_id: int) -> Placement:
    placement = session.get(Placement, placement_id)
    if placement is None:
        raise NotFound(f"no placement has the id {placement_id}", "unknown_placement")
    return placement


def _refuse_duplicate(session: Session, new: Placement) -> None:
    """The same bulletin placed again where it already plays: refused (a second click,
    a placement made twice), with the placement it would repeat."""
    others = session.scalars(
        select(Placement).where(
            Placement.bulletin_id == new.bulletin.id,
            Placement.cancelled_at.is_(None),
            Placement.rule == new.rule,
            Placement.id != new.id,  # an edited placement does not repeat itself
        )
    ).all()
    if not others:
        return
    mine = set(target_communes(session, [new])[new.id])
    for old in others:
        if new.rule == "slots":
            assert old.date_from and old.date_to and new.date_from and new.date_to
            same_time = bool({s.id for s in old.slots} & {s.id for s in new.slots}) and (
                old.date_from <= new.date_to and new.date_from <= old.date_to
            )
        else:
            same_time = old.at == new.at
        if same_time and mine & set(target_communes(session, [old])[old.id]):
            raise Conflict(
                f"this bulletin is already placed there then (placement {old.id})",
                "duplicate_placement",
            )


def target_communes(session: Session, placements: Sequence[Placement]) -> dict[int, list[int]]:
    """Each placement's commune ids."""
    every: list[int] | None = None
    out = {}
    for p in placements:
        if p.target == "all":
            if every is None:  # ids only: 10,599 Area objects would cost 0.3 s
                every = list(
                    session.scalars(
                        select(Area.id).where(Area.level == "commune").order_by(Area.code)
                    )
                )
            out[p.id] = every
        elif p.target == "group":
            assert p.group is not None
            out[p.id] = [c.id for c in p.group.communes]
        else:
            out[p.id] = [c.id for c in p.communes]
    return out


class Wanted(NamedTuple):  # a tuple: a country's week makes 148,000 of them
    placement_id: int
    commune_id: int
    planned_at: datetime
    slot_id: int | None


def _local_days(first: date, last: date) -> Iterable[date]:
    day = first
    while day <= last:
        yield day
        day += timedelta(days=1)


def wanted_broadcasts(
    placement: Placement,
    communes: Sequence[int],
    occurrences: dict[int | None, list[Occurrence]],
    now: datetime,
    until: datetime,
    tz: ZoneInfo,
) -> Iterable[Wanted]:
    """The broadcasts a placement's rule asks for from now (slots: up to `until`)."""
    if placement.rule in ("once", "repeat"):
        assert placement.at is not None
        count, step = placement.repeat or 1, timedelta(seconds=placement.every_seconds or 0)
        for n in range(count):
            at = placement.at + n * step
            if at >= now - FREEZE:
                yield from (Wanted(placement.id, c, at, None) for c in communes)
        return
    assert placement.date_from is not None and placement.date_to is not None
    first = max(placement.date_from, now.astimezone(tz).date())
    last = min(placement.date_to, until.astimezone(tz).date())
    days = placement.weekdays or ALL_DAYS
    slot_ids = {s.id for s in placement.slots}
    after = now + FREEZE

    def asked(occs: list[Occurrence]) -> list[Occurrence]:
        return [
            occ
            for occ in occs
            if occ.slot_id in slot_ids
            and occ.end > after
            and first <= (day := occ.start.astimezone(tz).date()) <= last
            and str(day.isoweekday()) in days
        ]

    everywhere = asked(occurrences.get(None, []))  # slots of every commune: checked once
    for commune in communes:
        for occ in everywhere + asked(occurrences.get(commune, [])):
            yield Wanted(placement.id, commune, occ.start, occ.slot_id)


def _wanted(
    session: Session,
    placements: Sequence[Placement],
    now: datetime,
    until: datetime,
    tz: ZoneInfo,
    communes: Collection[int] | None,
) -> tuple[list[Wanted], int]:
    """The broadcasts these placements ask for from now to `until` (in `communes` only, if
    given), and how many more they would ask for in the quiet hours of their communes."""
    if communes is None:
        targets = target_communes(session, placements)
    else:  # a batch of a placement's communes: the batch is its "all"
        batch = sorted(communes)
        named = target_communes(session, [p for p in placements if p.target != "all"])
        targets = {p.id: [c for c in named[p.id] if c in communes] if p.id in named else batch
                   for p in placements}  # fmt: skip
    first = now.astimezone(tz).date() - timedelta(days=1)
    occurrences = slot_occurrences(active_slots(session), first, until.astimezone(tz).date(), tz)
    quiet_hours = quiet.windows(session)
    wanted: list[Wanted] = []
    asked = 0
    for p in placements:
        every = list(wanted_broadcasts(p, targets[p.id], occurrences, now, until, tz))
        asked += len(every)
        wanted += (  # most communes have no quiet hours: not asked 148,000 times
            w
            for w in every
            if w.commune_id not in quiet_hours
            or not quiet.is_quiet(quiet_hours, w.commune_id, w.planned_at, p.priority, tz)
        )
    return wanted, asked - len(wanted)


@dataclass
class Materialised:
    created: list[int]  # new broadcast ids
    moved: list[int]  # broadcasts whose time or slot changed in packing
    overflow: int  # of the placements' broadcasts, how many sit outside their planned slot
    communes: set[int]
    quiet: int = 0  # left out: in the quiet hours of their commune


def materialise(
    session: Session,
    now: datetime,
    until: datetime,
    tz: ZoneInfo,
    placement_ids: Sequence[int] | None = None,
    communes: Collection[int] | None = None,
    lock: bool = True,
    laid_out: Callable[[], None] | None = None,
) -> Materialised:
    """Make the broadcasts active placements ask for up to `until` (those missing only;
    in `communes` only, if given), with a delivery per active endpoint, then pack the
    queues of the communes touched. With `lock`, on PostgreSQL, a placement being made in
    batches elsewhere (`lock_placement`) is waited for if named, else skipped. `laid_out`,
    if given, is called once the new rows are computed, before they are written."""
    q = (
        select(Placement)
        .where(Placement.cancelled_at.is_(None))
        .options(
            selectinload(Placement.slots),
            selectinload(Placement.communes),
            selectinload(Placement.group).selectinload(Group.communes),
            selectinload(Placement.bulletin).selectinload(Bulletin.audio),
        )
    )
    if placement_ids is not None:
        q = q.where(Placement.id.in_(placement_ids))
    if lock and session.get_bind().dialect.name == "postgresql":
        if placement_ids is None:
            q = q.where(func.pg_try_advisory_xact_lock(PLACING_LOCK, Placement.id, type_=Boolean))
        for placement_id in sorted(placement_ids or ()):
            session.execute(select(func.pg_advisory_xact_lock(PLACING_LOCK, placement_id)))
    # A placed bulletin edited back to draft waits for its new approval; the others go on.
    placements = [
        p
        for p in session.scalars(q)
        if p.bulletin.status == BulletinStatus.APPROVED and p.bulletin.audio is not None
    ]
    if not placements:
        return Materialised([], [], 0, set())
    by_id = {p.id: p for p in placements}
    wanted, left_out = _wanted(session, placements, now, until, tz, communes)
    among = [] if communes is None else [in_ids(session, Broadcast.commune_id, list(communes))]
    have = set(
        session.execute(
            select(Broadcast.placement_id, Broadcast.commune_id, Broadcast.planned_at).where(
                Broadcast.placement_id.in_(by_id), Broadcast.planned_at >= now - FREEZE, *among
            )
        )
    )
    new = (
        wanted
        if not have
        else [w for w in wanted if (w.placement_id, w.commune_id, w.planned_at) not in have]
    )
    if not new:
        return Materialised([], [], overflow(session, by_id, among), set(), left_out)
    # Lay the new rows out with the queues they join before inserting them: one insert
    # with their final times, not an insert then an update of every row.
    length = {p.id: p.bulletin.audio.duration_seconds for p in placements if p.bulletin.audio}
    rank = {p.id: RANK[p.priority] for p in placements}
    items = [  # as the packer sees a broadcast about to be made (its id: -n)
        _Item(-n, w.commune_id, w.planned_at, length[w.placement_id], rank[w.placement_id],
              w.placement_id, w.slot_id, w.planned_at if w.slot_id is not None else None,
              w.planned_at, None, False, False)
        for n, w in enumerate(new, 1)
    ]  # fmt: skip
    touched = {w.commune_id for w in new}
    placing = pack(session, touched, now, tz, until, [i for i in items if i.slot_id])
    moved = [item_id for item_id in placing if item_id > 0]
    created = _insert(
        session, new, by_id, [placing.get(i.id, {}) for i in items], now, among, laid_out
    )
    return Materialised(created, moved, overflow(session, by_id, among), touched, left_out)


def lock_placement(connection: Connection, placement_id: int) -> None:
    """Hold a placement (PostgreSQL, for as long as `connection` does not unlock it) while
    it is materialised in batches, so that no other materialising makes the same rows."""
    connection.execute(select(func.pg_advisory_lock_shared(PLACING_LOCK, placement_id)))


def unlock_placement(connection: Connection, placement_id: int) -> None:
    connection.execute(select(func.pg_advisory_unlock_shared(PLACING_LOCK, placement_id)))


def overflow(
    session: Session, placements: Iterable[int], among: Sequence[ColumnElement[bool]] = ()
) -> int:
    """Of these placements' open broadcasts (`among`: in a batch of communes only), how
    many sit outside their planned slot."""
    count = session.scalar(
        select(func.count()).where(
            Broadcast.placement_id.in_(placements),
            Broadcast.overflow.is_(True),
            Broadcast.status.in_(OPEN),
            *among,
        )
    )
    return count or 0


def _insert(
    session: Session,
    new: Sequence[Wanted],
    placements: dict[int, Placement],
    placing: Sequence[dict[str, object]],
    now: datetime,
    among: Sequence[ColumnElement[bool]],
    laid_out: Callable[[], None] | None,
) -> list[int]:
    """Insert these broadcasts (each with its `placing` from the packer), their deliveries
    and their first history rows, each kind in one statement."""
    # Columns, not a dict per row: 148,000 rows of fifteen values.
    of = [w.placement_id for w in new]
    shared: dict[str, dict[int, Any]] = {  # the same for every row of a placement
        "bulletin_id": {p.id: p.bulletin_id for p in placements.values()},
        "audio_id": {p.id: p.bulletin.audio_id for p in placements.values()},
        "priority": {p.id: p.priority for p in placements.values()},
        "created_by": {p.id: p.created_by for p in placements.values()},
    }
    columns: dict[str, list[Any]] = {name: [by[p] for p in of] for name, by in shared.items()}
    columns |= {
        "status": [Status.SCHEDULED.value] * len(new),
        "created_at": [now] * len(new),
        "placement_id": of,
        "commune_id": [w.commune_id for w in new],
        "planned_at": [w.planned_at for w in new],
    }
    defaults: dict[str, list[Any]] = {  # what a row keeps unless the packer placed it
        "slot_id": [w.slot_id for w in new],
        "slot_at": [w.planned_at if w.slot_id is not None else None for w in new],
        "scheduled_at": columns["planned_at"],
        "position": [None] * len(new),
        "overflow": [False] * len(new),
    }
    for key, kept in defaults.items():
        columns[key] = [placed.get(key, k) for placed, k in zip(placing, kept, strict=True)]
    if laid_out is not None:
        laid_out()
    last_id = session.scalar(select(func.max(Broadcast.id))) or 0
    with keys_checked_once(session, Broadcast.__table__, columns) as once:  # type: ignore[arg-type]
        bulk_insert_columns(session, Broadcast.__table__, columns)  # type: ignore[arg-type]
        endpoints: ColumnElement[bool] = Endpoint.active.is_(True)
        if once:  # the deliveries' other key: the endpoints they are made for
            touched = list(set(columns["commune_id"]))
            ids = key_share(
                session, Endpoint.id, endpoints & in_ids(session, Endpoint.commune_id, touched)
            )
            endpoints &= in_ids(session, Endpoint.id, ids)
        return _insert_deliveries_and_events(session, new, now, last_id, among, endpoints)


def _insert_deliveries_and_events(
    session: Session,
    new: Sequence[Wanted],
    now: datetime,
    last_id: int,
    among: Sequence[ColumnElement[bool]],
    endpoints: ColumnElement[bool],
) -> list[int]:
    """The new broadcasts' deliveries (one per endpoint `endpoints` selects in the
    commune) and first history rows; the new broadcasts' ids."""
    # Made by the database from the new rows (INSERT … SELECT): no Python row each, and
    # not the ORM's RETURNING, row by row.
    made = (
        select(Broadcast.id, Broadcast.commune_id, Broadcast.created_by, Broadcast.placement_id)
        .where(
            Broadcast.id > last_id,  # the rows just inserted
            Broadcast.placement_id.in_({w.placement_id for w in new}),
            Broadcast.created_at == now,
            *among,  # a batch of communes: not another batch's rows, committed meanwhile
        )
        .cte("made")
    )
    deliveries = insert(Delivery.__table__).from_select(  # type: ignore[arg-type]
        ["broadcast_id", "endpoint_id", "status"],
        select(made.c.id, Endpoint.id, literal(Status.SCHEDULED.value))
        .join(Endpoint, Endpoint.commune_id == made.c.commune_id)
        .where(endpoints),
    )
    events = insert(BroadcastEvent.__table__).from_select(  # type: ignore[arg-type]
        ["broadcast_id", "at", "to_status", "actor", "reason"],
        select(
            made.c.id,
            literal(now, UTCDateTime()),
            literal(Status.SCHEDULED.value),
            made.c.created_by,
            literal("placement ") + cast(made.c.placement_id, String),
        ),
    )
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        # One statement: the new rows are read once, the deliveries' INSERT is a
        # data-modifying WITH, and the ids come back with the history rows.
        folded = events.add_cte(deliveries.cte("made_deliveries"))
        return sorted(connection.scalars(folded.returning(events.table.c.broadcast_id)))
    connection.execute(deliveries)
    ids = list(connection.scalars(select(made.c.id)).all())  # fetchall, not row by row
    connection.execute(events)
    return ids


# --- queues -------------------------------------------------------------------------------


@dataclass(slots=True)
class _Item:
    id: int
    commune_id: int
    planned_at: datetime
    seconds: float
    rank: int
    placement_id: int
    slot_id: int | None
    slot_at: datetime | None
    scheduled_at: datetime
    position: int | None
    overflow: bool
    fixed: bool

    def key(self) -> tuple[int, datetime, int, int]:
        return (-self.rank, self.planned_at, self.placement_id, self.id)


RANK = {p.value: p.rank for p in Priority}
PLACING = ("slot_id", "slot_at", "scheduled_at", "position", "overflow")  # what packing sets


def pack(
    session: Session,
    commune_ids: Iterable[int],
    now: datetime,
    tz: ZoneInfo,
    until: datetime,
    extra: Sequence[_Item] = (),
) -> dict[int, dict[str, object]]:
    """Lay out the slot queues of these communes from now on, with `extra` items not in
    the database yet (negative ids); writes the changes of existing rows and returns
    every item whose slot, time, position or overflow flag changed, with its new values."""
    commune_ids = list(commune_ids)
    first = now.astimezone(tz).date() - timedelta(days=1)
    last = until.astimezone(tz).date() + timedelta(days=OVERFLOW_DAYS)
    occurrences = slot_occurrences(active_slots(session), first, last, tz)
    rows = session.execute(
        select(
            Broadcast.id,
            Broadcast.commune_id,
            Broadcast.planned_at,
            AudioAsset.duration_seconds,
            Broadcast.priority,
            Broadcast.placement_id,
            Broadcast.slot_id,
            Broadcast.slot_at,
            Broadcast.scheduled_at,
            Broadcast.position,
            Broadcast.overflow,
            Broadcast.status,
            Broadcast.dispatched_at,
        )
        .join(AudioAsset, Broadcast.audio_id == AudioAsset.id)
        .where(
            Broadcast.commune_id.in_(commune_ids),
            Broadcast.slot_at.is_not(None),
            Broadcast.slot_at >= datetime.combine(first, time(), tz).astimezone(UTC),
            Broadcast.status != Status.CANCELLED.value,
        )
    ).all()
    by_commune: dict[int, list[_Item]] = defaultdict(list)
    for r in rows:
        fixed = r.dispatched_at is not None or r.status not in OPEN or r.scheduled_at < now + FREEZE
        by_commune[r.commune_id].append(
            _Item(
                r.id,
                r.commune_id,
                r.planned_at,
                r.duration_seconds,
                RANK[r.priority],
                r.placement_id,
                r.slot_id,
                r.slot_at,
                r.scheduled_at,
                r.position,
                r.overflow,
                fixed,
            )
        )
    for item in extra:
        by_commune[item.commune_id].append(item)
    placing: dict[int, dict[str, object]] = {}
    shared = occurrences.get(None, [])  # in time order; a commune's own slots are merged
    shared_starts = [o.start for o in shared]
    for commune_id, items in by_commune.items():
        occs, starts = shared, shared_starts
        if own := occurrences.get(commune_id):
            occs = sorted(shared + own, key=lambda o: (o.start, o.slot_id))
            starts = [o.start for o in occs]
        for item, values in _pack_commune(items, occs, starts, now):
            placing[item.id] = values
    changes = [{"b_id": item_id, **values} for item_id, values in placing.items() if item_id > 0]
    if changes:
        table = Broadcast.__table__
        session.execute(
            update(table)  # type: ignore[arg-type]
            .where(table.c.id == bindparam("b_id"))
            .values({key: bindparam(key) for key in PLACING}),
            changes,
        )
    return placing


def _pack_commune(
    items: list[_Item], occs: list[Occurrence], starts: list[datetime], now: datetime
) -> Iterable[tuple[_Item, dict[str, object]]]:
    """One commune: yields each movable item whose placing changed, with its new values
    (`occs`: the commune's slot occurrences in time order, `starts` their starts)."""
    fixed_end: dict[tuple[int | None, datetime | None], datetime] = {}
    fixed_count: dict[tuple[int | None, datetime | None], int] = defaultdict(int)
    for item in items:
        if item.fixed:
            key = (item.slot_id, item.slot_at)
            end = item.scheduled_at + timedelta(seconds=item.seconds) + GAP
            fixed_end[key] = max(fixed_end.get(key, end), end)
            fixed_count[key] += 1
    waiting = sorted((i for i in items if not i.fixed), key=lambda i: i.planned_at)
    pending: list[_Item] = []
    start_floor = now + FREEZE
    n = 0
    while n < len(occs):
        if not pending:  # nothing queued: on to the occurrence of the next waiting item
            if not waiting:
                break
            n = max(n, bisect_left(starts, waiting[0].planned_at))
            if n == len(occs):
                break
        occ = occs[n]
        n += 1
        while waiting and waiting[0].planned_at <= occ.start:
            pending.append(waiting.pop(0))
        if occ.end <= start_floor or not pending:
            continue
        key = (occ.slot_id, occ.start)
        cursor = max(occ.start, start_floor, fixed_end.get(key, occ.start))
        position = fixed_count[key]
        left = []
        for item in sorted(pending, key=_Item.key):
            length = timedelta(seconds=item.seconds)
            if cursor + length > occ.end:
                left.append(item)
                continue
            position += 1
            new = {
                "slot_id": occ.slot_id,
                "slot_at": occ.start,
                "scheduled_at": cursor,
                "position": position,
                "overflow": item.planned_at != occ.start,
            }
            if (item.slot_id, item.slot_at, item.scheduled_at, item.position, item.overflow) != (
                occ.slot_id, occ.start, cursor, position, new["overflow"]
            ):  # fmt: skip
                yield item, new
            cursor = cursor + length + GAP
        pending = left
    for item in pending + waiting:  # past every slot known: keep it, flagged
        log.warning("broadcast %s fits no slot of its commune in the horizon", item.id)
        if not item.overflow or item.id < 0:
            yield item, {key: getattr(item, key) for key in PLACING} | {"overflow": True}


# --- cancel and plan ----------------------------------------------------------------------


def cancel_broadcast(session: Session, actor: Actor, broadcast: Broadcast, now: datetime) -> None:
    """Cancel a broadcast that has not started anywhere yet."""
    actor.require(*MANAGERS)
    if broadcast.status not in OPEN:
        raise Conflict(
            f"broadcast {broadcast.id} is {broadcast.status}; only one not started yet "
            "can be cancelled",
            "not_cancellable",
        )
    cancel_moves(session, broadcast, now, actor.name, "cancelled")
    audit.record(session, actor, "cancel", broadcast, now)


def cancel_placement(session: Session, actor: Actor, placement_id: int, now: datetime) -> list[int]:
    """Stop a placement: its future broadcasts are cancelled; the past stays as it was.
    Returns the ids cancelled."""
    actor.require(*MANAGERS)
    placement = get_placement(session, placement_id)
    if placement.cancelled_at is None:
        placement.cancelled_at, placement.cancelled_by = now, actor.name
    future = _not_started(session, placement_id, now)
    for b in future:
        cancel_moves(session, b, now, actor.name, "cancelled")
    audit.record(session, actor, "cancel", placement, now, f"{len(future)} broadcasts cancelled")
    return [b.id for b in future]


def _not_started(session: Session, placement_id: int, after: datetime) -> Sequence[Broadcast]:
    """A placement's broadcasts not dispatched yet, due after `after`."""
    return session.scalars(
        select(Broadcast)
        .where(
            Broadcast.placement_id == placement_id,
            Broadcast.status.in_(OPEN),
            Broadcast.dispatched_at.is_(None),
            Broadcast.scheduled_at > after,
        )
        .options(selectinload(Broadcast.deliveries))
    ).all()


PLAN_COLUMNS = (
    Broadcast.id,
    Area.code,
    Area.name,
    Broadcast.scheduled_at,
    Broadcast.bulletin_id,
    Bulletin.title,
    Broadcast.priority,
    Broadcast.placement_id,
    Broadcast.slot_id,
    Slot.name,
    Broadcast.slot_at,
    Broadcast.position,
    Broadcast.status,
    Broadcast.overflow,
    AudioAsset.duration_seconds,
)


def plan(
    session: Session, start: datetime, end: datetime, commune_id: int | None = None
) -> list[dict[str, object]]:
    """Broadcasts from start to end, per commune in play order, one flat query."""
    q = (
        select(*PLAN_COLUMNS)
        .join(Area, Broadcast.commune_id == Area.id)
        .join(Bulletin, Broadcast.bulletin_id == Bulletin.id)
        .join(AudioAsset, Broadcast.audio_id == AudioAsset.id)
        .outerjoin(Slot, Broadcast.slot_id == Slot.id)
        .where(Broadcast.scheduled_at >= start, Broadcast.scheduled_at < end)
        .order_by(Area.code, Broadcast.scheduled_at, Broadcast.position, Broadcast.id)
    )
    if commune_id is not None:
        q = q.where(Broadcast.commune_id == commune_id)
    keys = (
        "id", "commune", "commune_name", "scheduled_at", "bulletin_id", "title", "priority",
        "placement_id", "slot_id", "slot", "slot_at", "position", "status", "overflow",
        "duration_seconds",
    )  # fmt: skip
    return [dict(zip(keys, row, strict=True)) for row in session.execute(q)]


def plan_lines(
    rows: Sequence[dict[str, object]], tz: ZoneInfo, word: Callable[[str], str] = str
) -> Iterable[str]:
    """`loa plan`: a heading per commune and slot, then one line per item in play order;
    `word` says a status or a priority in the user's language."""
    heading = None
    for row in rows:
        slot_at = row["slot_at"]
        when = slot_at.astimezone(tz) if isinstance(slot_at, datetime) else None
        at = row["scheduled_at"]
        assert isinstance(at, datetime)
        head = f"{row['commune']} {row['commune_name']} · " + (
            f"{row['slot']} {when:%d/%m %H:%M}"
            if when
            else f"ngoài khung giờ {at.astimezone(tz):%d/%m}"
        )
        if head != heading:
            heading = head
            yield head
        flags = " [tràn: chuyển sang]" if row["overflow"] else ""
        seconds = float(row["duration_seconds"])  # type: ignore[arg-type]
        yield (
            f"  {row['position'] or '-':>2} {at.astimezone(tz):%H:%M:%S} "
            f"{seconds:>6.0f}s {word(str(row['priority'])):<12} {word(str(row['status'])):<13} "
            f"#{row['id']} {row['title']}{flags}"
        )
