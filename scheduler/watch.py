"""What the centre and the operators must look at: broadcasts waiting for an operator's
word, tomorrow's readiness per commune, and endpoints that went quiet."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NamedTuple

from sqlalchemy import ColumnElement, case, func, or_, select, true
from sqlalchemy.orm import Session, joinedload

from scheduler.auth import Actor
from scheduler.health import UP
from scheduler.models import (
    Area,
    Broadcast,
    Bulletin,
    Delivery,
    Endpoint,
    EndpointEvent,
    Role,
    Status,
)

LOOK_BACK = timedelta(days=7)  # older unconfirmed broadcasts belong to the reports, not here
# Broadcasts an operator may still vouch for: no device proved them played.
UNPROVEN = (Status.SCHEDULED, Status.DELIVERED, Status.MISSED, Status.FAILED)
# Kinds whose server-side part holds the audio itself: ready as soon as it is rendered.
SERVER_HELD = ("virtual", "local", "icecast", "manual")


class Asked(NamedTuple):
    """A waiting broadcast as the lists show it (plain columns, not the ORM object)."""

    id: int
    scheduled_at: datetime
    status: str
    priority: str
    title: str
    commune: str


@dataclass(frozen=True)
class Waiting:
    broadcast: Asked
    escalated: bool  # unconfirmed for too long: the centre must chase it


def _asks_operator(
    actor: Actor, now: datetime, confirm_after: timedelta
) -> list[ColumnElement[bool]]:
    """The conditions of a broadcast that asks the commune operator "đã phát / không
    phát": one with a manual endpoint once its time has come, and any other without
    device proof `confirm_after` past its time, in the last week."""
    manual = Broadcast.deliveries.any(
        Delivery.status.in_(UNPROVEN) & Delivery.endpoint.has(Endpoint.kind == "manual")
    )
    where = [
        Broadcast.confirmation.is_(None),
        Broadcast.status.in_(UNPROVEN),
        Broadcast.scheduled_at >= now - LOOK_BACK,
        or_(
            Broadcast.scheduled_at <= now - confirm_after,
            # No device to prove it (a manual endpoint, or none at all): ask at once.
            (Broadcast.scheduled_at <= now) & or_(manual, ~Broadcast.deliveries.any()),
        ),
    ]
    if actor.role == Role.OPERATOR:
        where.append(Broadcast.commune_id.in_(actor.communes))
    return where


def waiting_for_operator(
    session: Session,
    actor: Actor,
    now: datetime,
    confirm_after: timedelta,
    escalate_after: timedelta,
    limit: int | None = None,
) -> list[Waiting]:
    """The broadcasts waiting for an operator's word, oldest first (the first `limit`)."""
    q = (
        select(
            Broadcast.id,
            Broadcast.scheduled_at,
            Broadcast.status,
            Broadcast.priority,
            Bulletin.title,
            Area.name,
        )
        .join(Bulletin, Broadcast.bulletin_id == Bulletin.id)
        .join(Area, Broadcast.commune_id == Area.id)
        .where(*_asks_operator(actor, now, confirm_after))
        .order_by(Broadcast.scheduled_at, Broadcast.id)
        .limit(limit)
    )
    return [
        Waiting(Asked(*row), row.scheduled_at <= now - escalate_after) for row in session.execute(q)
    ]


def count_waiting(
    session: Session,
    actor: Actor,
    now: datetime,
    confirm_after: timedelta,
    escalate_after: timedelta,
) -> tuple[int, int]:
    """How many broadcasts wait for an operator's word, and how many of them escalated."""
    escalated = case((Broadcast.scheduled_at <= now - escalate_after, 1), else_=0)
    q = select(func.count(), func.coalesce(func.sum(escalated), 0)).where(
        *_asks_operator(actor, now, confirm_after)
    )
    total, late = session.execute(q).one()
    return total, late


def waiting_ids(
    session: Session, actor: Actor, now: datetime, confirm_after: timedelta
) -> set[int]:
    """The ids of the broadcasts waiting for an operator's word."""
    return set(
        session.scalars(select(Broadcast.id).where(*_asks_operator(actor, now, confirm_after)))
    )


class Commune(NamedTuple):
    code: str
    name: str


@dataclass(frozen=True)
class Readiness:
    at: datetime
    ready: list[Commune]
    not_ready: list[Commune]


def readiness(
    session: Session, now: datetime, ahead: timedelta, communes: frozenset[int] | None = None
) -> list[Readiness]:
    """For each upcoming broadcast time, the communes whose every endpoint is ready:
    an agent holds the audio, an MQTT device is up, a server-side driver has it.
    Counted in the database (a district's day ahead is thousands of deliveries)."""
    not_ready = case(
        (Endpoint.kind.in_(SERVER_HELD), 0),
        ((Endpoint.kind == "agent") & (Delivery.status == Status.DELIVERED), 0),
        ((Endpoint.kind != "agent") & (Endpoint.state == UP), 0),
        else_=1,
    )
    rows = session.execute(
        select(
            Broadcast.scheduled_at,
            Area.code,
            Area.name,
            func.count(Delivery.id),
            func.coalesce(func.sum(not_ready), 0),
        )
        .join(Area, Broadcast.commune_id == Area.id)
        .outerjoin(
            Delivery,
            (Delivery.broadcast_id == Broadcast.id) & (Delivery.status != Status.CANCELLED),
        )
        .outerjoin(Endpoint, Delivery.endpoint_id == Endpoint.id)
        .where(
            Broadcast.status.in_((Status.SCHEDULED, Status.DELIVERED)),
            Broadcast.scheduled_at > now,
            Broadcast.scheduled_at <= now + ahead,
            Broadcast.commune_id.in_(communes) if communes is not None else true(),
        )
        .group_by(Broadcast.scheduled_at, Broadcast.commune_id, Area.code, Area.name)
        .order_by(Broadcast.scheduled_at, Area.name, Area.code)
    ).all()
    by_time: dict[datetime, dict[Commune, bool]] = defaultdict(dict)
    for at, code, name, live, bad in rows:
        by_time[at][Commune(code, name)] = live > 0 and bad == 0
    return [
        Readiness(
            at,
            ready=[c for c, ok in communes.items() if ok],
            not_ready=[c for c, ok in communes.items() if not ok],
        )
        for at, communes in by_time.items()
    ]


@dataclass(frozen=True)
class Alert:
    at: datetime
    endpoint: Endpoint
    from_state: str | None
    to_state: str


def endpoint_alerts(
    session: Session, actor: Actor, now: datetime, since: timedelta, limit: int = 20
) -> list[Alert]:
    """Recent moves of endpoints to late or down whose endpoint is not back up."""
    q = (
        select(EndpointEvent)
        .join(EndpointEvent.endpoint)
        .where(
            EndpointEvent.at >= now - since,
            EndpointEvent.to_state != UP,
            Endpoint.state != UP,
            Endpoint.active.is_(True),
        )
        .options(joinedload(EndpointEvent.endpoint).joinedload(Endpoint.commune))
        .order_by(EndpointEvent.at.desc(), EndpointEvent.id.desc())
        .limit(limit)
    )
    if actor.role == Role.OPERATOR:
        q = q.where(Endpoint.commune_id.in_(actor.communes))
    newest: dict[int, Alert] = {}
    for e in session.scalars(q):
        newest.setdefault(e.endpoint_id, Alert(e.at, e.endpoint, e.from_state, e.to_state))
    return list(newest.values())
