"""What the centre and the operators must look at: broadcasts waiting for an operator's
word, tomorrow's readiness per commune, and endpoints that went quiet."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, joinedload, selectinload

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
                (Broadcast.scheduled_at <= now) & Broadcast.id.in_(manual),
            ),
        )
        .options(joinedload(Broadcast.bulletin), joinedload(Broadcast.commune))
        .order_by(Broadcast.scheduled_at, Broadcast.id)
    )
    if actor.role == Role.OPERATOR:
        q = q.where(Broadcast.commune_id == actor.commune_id)
    return [Waiting(b, b.scheduled_at <= now - escalate_after) for b in session.scalars(q)]


@dataclass(frozen=True)
class Readiness:
    at: datetime
    ready: list[Area]
    not_ready: list[Area]


def readiness(session: Session, now: datetime, ahead: timedelta) -> list[Readiness]:
    """For each upcoming broadcast time, the communes whose every endpoint is ready:
    an agent holds the audio, an MQTT device is up, a server-side driver has it."""
    rows = session.scalars(
        select(Broadcast)
        .where(
            Broadcast.status.in_((Status.SCHEDULED, Status.DELIVERED)),
            Broadcast.scheduled_at > now,
            Broadcast.scheduled_at <= now + ahead,
        )
        .options(
            joinedload(Broadcast.commune),
            selectinload(Broadcast.deliveries).joinedload(Delivery.endpoint),
        )
        .order_by(Broadcast.scheduled_at)
    )
    communes: dict[datetime, dict[int, tuple[Area, bool]]] = defaultdict(dict)
    for b in rows:
        live = [d for d in b.deliveries if d.status != Status.CANCELLED]
        ok = bool(live) and all(_ready(d) for d in live)
        _, before = communes[b.scheduled_at].get(b.commune_id, (b.commune, True))
        communes[b.scheduled_at][b.commune_id] = (b.commune, before and ok)
    return [
        Readiness(
            at,
            ready=[area for area, ok in by_commune.values() if ok],
            not_ready=[area for area, ok in by_commune.values() if not ok],
        )
        for at, by_commune in communes.items()
    ]


def _ready(d: Delivery) -> bool:
    kind = d.endpoint.kind
    if kind in SERVER_HELD:
        return True
    if kind == "agent":
        return d.status == Status.DELIVERED
    return d.endpoint.state == UP


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
        q = q.where(Endpoint.commune_id == actor.commune_id)
    newest: dict[int, Alert] = {}
    for e in session.scalars(q):
        newest.setdefault(e.endpoint_id, Alert(e.at, e.endpoint, e.from_state, e.to_state))
    return list(newest.values())
