"""What the centre and the operators must look at: broadcasts waiting for an operator's
word, tomorrow's readiness per commune, and endpoints that went quiet."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import case, func, or_, select, true
from sqlalchemy.orm import Session, joinedload

from scheduler.auth import Actor
from scheduler.health import UP
from scheduler.models import Area, Broadcast, Delivery, Endpoint, EndpointEvent, Role, Status

LOOK_BACK = timedelta(days=7)  # older unconfirmed broadcasts belong to the reports, not here
# Broadcasts an operator may still vouch for: no device proved them played.
UNPROVEN = (Status.SCHEDULED, Status.DELIVERED, Status.MISSED, Status.FAILED)
# Kinds whose server-side part holds the audio itself: ready as soon as it is rendered.
SERVER_HELD = ("virtual", "local", "icecast", "manual")


@dataclass(frozen=True)
class Waiting:
    broadcast: Broadcast
    escalated: bool  # unconfirmed for too long: the centre must chase it


def waiting_for_operator(
    session: Session,
    actor: Actor,
    now: datetime,
    confirm_after: timedelta,
    escalate_after: timedelta,
) -> list[Waiting]:
    """Broadcasts that ask the commune operator "đã phát / không phát": those with a
    manual endpoint once their time has come, and any other without device proof
    `confirm_after` past its time. Oldest first."""
    manual = (
        select(Delivery.broadcast_id)
        .join(Delivery.endpoint)
        .where(Endpoint.kind == "manual", Delivery.status.in_(UNPROVEN))
    )
    q = (
        select(Broadcast)
        .where(
            Broadcast.confirmation.is_(None),
            Broadcast.status.in_(UNPROVEN),
            Broadcast.scheduled_at >= now - LOOK_BACK,
            or_(
                Broadcast.scheduled_at <= now - confirm_after,
                # No device to prove it (a manual endpoint, or none at all): ask at once.
                (Broadcast.scheduled_at <= now)
                & or_(Broadcast.id.in_(manual), ~Broadcast.deliveries.any()),
            ),
        )
        .options(joinedload(Broadcast.bulletin), joinedload(Broadcast.commune))
        .order_by(Broadcast.scheduled_at, Broadcast.id)
    )
    if actor.role == Role.OPERATOR:
        q = q.where(Broadcast.commune_id.in_(actor.communes))
    return [Waiting(b, b.scheduled_at <= now - escalate_after) for b in session.scalars(q)]


@dataclass(frozen=True)
class Readiness:
    at: datetime
    ready: list[Area]
    not_ready: list[Area]


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
            Broadcast.commune_id,
            func.count(Delivery.id),
            func.coalesce(func.sum(not_ready), 0),
        )
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
        .group_by(Broadcast.scheduled_at, Broadcast.commune_id)
        .order_by(Broadcast.scheduled_at)
    ).all()
    areas = {
        a.id: a for a in session.scalars(select(Area).where(Area.id.in_({r[1] for r in rows})))
    }
    by_time: dict[datetime, dict[int, bool]] = defaultdict(dict)
    for at, commune_id, live, bad in rows:
        ok = live > 0 and bad == 0
        by_time[at][commune_id] = by_time[at].get(commune_id, True) and ok
    return [
        Readiness(
            at,
            ready=[areas[c] for c, ok in communes.items() if ok],
            not_ready=[areas[c] for c, ok in communes.items() if not ok],
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
