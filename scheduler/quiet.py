"""Quiet hours (giờ yên tĩnh): the hours of a commune's night when only emergencies air.

A window is two local times; it runs across midnight when it ends before it starts
(21:30-05:00). Nothing but an emergency is placed in it: planning leaves such broadcasts
out (and says how many), a one-off broadcast there is refused, and setting quiet hours
cancels the non-emergency broadcasts already planned in them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, time
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from scheduler import audit
from scheduler.auth import MANAGERS, Actor
from scheduler.clock import parse_hhmm
from scheduler.errors import Conflict, InvalidInput
from scheduler.models import Area, Broadcast, Priority, Status
from scheduler.status import cancel_moves

Window = tuple[time, time]
OPEN = (Status.SCHEDULED.value, Status.DELIVERED.value)


def contains(window: Window, moment: time) -> bool:
    start, end = window
    if start <= end:
        return start <= moment < end
    return moment >= start or moment < end


def windows(session: Session) -> dict[int, Window]:
    """The quiet hours of every commune that has them."""
    rows = session.execute(
        select(Area.id, Area.quiet_start, Area.quiet_end).where(Area.quiet_start.is_not(None))
    )
    return {a: (parse_hhmm(s), parse_hhmm(e)) for a, s, e in rows if s and e}


def is_quiet(
    quiet: dict[int, Window], commune_id: int, at: datetime, priority: str, tz: ZoneInfo
) -> bool:
    """Whether a broadcast of this priority may not air at `at` in the commune."""
    window = quiet.get(commune_id)
    if window is None or priority == Priority.EMERGENCY:
        return False
    return contains(window, at.astimezone(tz).time())


def refuse_quiet(
    session: Session, communes: Sequence[Area], at: datetime, priority: str, tz: ZoneInfo
) -> None:
    """Refuse a non-emergency broadcast at `at` in a commune whose quiet hours hold it."""
    quiet = windows(session)
    held = [c for c in communes if is_quiet(quiet, c.id, at, priority, tz)]
    if held:
        names = ", ".join(f"{c.name} ({c.quiet_start}-{c.quiet_end})" for c in held)
        raise Conflict(
            f"{at.astimezone(tz):%H:%M} is in the quiet hours of {names}: only an emergency "
            "airs then",
            "quiet_hours",
        )


def set_quiet_hours(
    session: Session,
    actor: Actor,
    communes: Sequence[Area],
    start: str | None,
    end: str | None,
    now: datetime,
    tz: ZoneInfo,
) -> list[int]:
    """Give communes quiet hours (both None: none). Non-emergency broadcasts not started
    yet that fall in them are cancelled, with the reason; returns their ids."""
    actor.require(*MANAGERS)
    if (start is None) != (end is None):
        raise InvalidInput("give quiet hours a start and an end, or neither", "invalid_time")
    window = (parse_hhmm(start), parse_hhmm(end)) if start and end else None
    if window is not None and window[0] == window[1]:
        raise InvalidInput("quiet hours cannot start and end at the same time", "invalid_time")
    for commune in communes:
        commune.quiet_start = f"{window[0]:%H:%M}" if window else None
        commune.quiet_end = f"{window[1]:%H:%M}" if window else None
    what = f"{start}-{end}" if window else "none"
    audit.record(session, actor, "quiet_hours", "commune", now, f"{len(communes)} communes: {what}")
    if window is None:
        return []
    future = session.scalars(
        select(Broadcast)
        .where(
            Broadcast.commune_id.in_([c.id for c in communes]),
            Broadcast.status.in_(OPEN),
            Broadcast.dispatched_at.is_(None),
            Broadcast.scheduled_at > now,
            Broadcast.priority != Priority.EMERGENCY.value,
        )
        .options(selectinload(Broadcast.deliveries))
    ).all()
    cancelled = []
    reason = f"in the quiet hours {start}-{end}"
    for b in future:
        if not contains(window, b.scheduled_at.astimezone(tz).time()):
            continue
        cancel_moves(session, b, now, actor.name, reason)
        cancelled.append(b.id)
    return cancelled
