"""Broadcasts (lượt phát): planning per commune, operator confirmation, endpoint proof of play."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from scheduler import audit
from scheduler.auth import MANAGERS, Actor
from scheduler.bulletins import require_approved
from scheduler.errors import Conflict, Forbidden, InvalidInput, NotFound
from scheduler.models import (
    MAX_ID,
    Area,
    Broadcast,
    BroadcastEvent,
    Bulletin,
    Delivery,
    Endpoint,
    Role,
    Status,
)
from scheduler.status import move_broadcast, move_delivery

PAST_TOLERANCE = timedelta(seconds=5)  # a request's own latency is not "in the past"
CLOCK_TOLERANCE = timedelta(minutes=5)  # how far off a device's clock may be in a report
CONFIRMERS = (Role.ADMIN, Role.CENTRE, Role.OPERATOR)


def schedule(
    session: Session,
    actor: Actor,
    bulletin: Bulletin,
    communes: list[Area],
    at: datetime,
    now: datetime,
) -> list[Broadcast]:
    """One broadcast per commune at `at`, with a delivery for each active endpoint there."""
    actor.require(*MANAGERS)
    require_approved(bulletin)
    if bulletin.audio is None:
        raise Conflict(f"bulletin {bulletin.id} has no audio yet", "no_audio")
    if not communes:
        raise InvalidInput("choose at least one commune", "no_communes")
    if at < now - PAST_TOLERANCE:
        raise InvalidInput(f"the time {at.isoformat()} is in the past", "time_in_past")
    if len({c.id for c in communes}) != len(communes):
        raise InvalidInput("a commune is listed twice", "duplicate_commune")
    taken = session.scalars(
        select(Broadcast.commune_id).where(
            Broadcast.bulletin_id == bulletin.id,
            Broadcast.scheduled_at == at,
            Broadcast.commune_id.in_([c.id for c in communes]),
        )
    ).all()
    if taken:
        raise Conflict("this bulletin is already scheduled at that time there", "duplicate")
    made = [add_broadcast(session, bulletin, commune, at, actor.name, now) for commune in communes]
    codes = ", ".join(c.code for c in communes)
    audit.record(session, actor, "schedule", bulletin, now, f"at {at.isoformat()} in {codes}")
    return made


def add_broadcast(
    session: Session,
    bulletin: Bulletin,
    commune: Area,
    at: datetime,
    actor: str,
    now: datetime,
    **fields: object,
) -> Broadcast:
    """A scheduled broadcast of the bulletin's audio (unless `fields` say otherwise), with
    a delivery for each active endpoint of the commune and its first history row."""
    values = {"audio": bulletin.audio, "priority": bulletin.priority, **fields}
    broadcast = Broadcast(
        bulletin=bulletin,
        commune=commune,
        scheduled_at=at,
        status=Status.SCHEDULED.value,
        created_by=actor,
        created_at=now,
        **values,
    )
    session.add(broadcast)
    endpoints = session.scalars(
        select(Endpoint).where(Endpoint.commune_id == commune.id, Endpoint.active.is_(True))
    )
    for endpoint in endpoints:
        session.add(Delivery(broadcast=broadcast, endpoint=endpoint))
    session.flush()
    session.add(
        BroadcastEvent(
            broadcast_id=broadcast.id, at=now, to_status=Status.SCHEDULED.value, actor=actor
        )
    )
    return broadcast


def open_broadcasts(session: Session, commune_id: int) -> list[Broadcast]:
    """A commune's broadcasts not sent yet."""
    return list(
        session.scalars(
            select(Broadcast).where(
                Broadcast.commune_id == commune_id,
                Broadcast.dispatched_at.is_(None),
                Broadcast.status.in_([Status.SCHEDULED.value, Status.DELIVERED.value]),
            )
        )
    )


def get_broadcast(session: Session, broadcast_id: int) -> Broadcast:
    broadcast = session.get(Broadcast, broadcast_id)
    if broadcast is None:
        raise NotFound(f"no broadcast has the id {broadcast_id}", "unknown_broadcast")
    return broadcast


def confirm(
    session: Session,
    actor: Actor,
    broadcast: Broadcast,
    *,
    aired: bool,
    reason: str | None,
    at: datetime | None,
    now: datetime,
) -> None:
    """A commune operator's word that a broadcast aired ("đã phát", at the time they give:
    default now) or did not ("không phát", with the reason). Said again differently, it is
    a new history row with the reason, never an overwrite."""
    actor.require(*CONFIRMERS)
    actor.require_commune(broadcast.commune_id)
    if broadcast.confirmation == "device" and broadcast.status == Status.PLAYED:
        raise Conflict("the loudspeaker already reported playing it", "already_played")
    if broadcast.status == Status.CANCELLED:  # the centre's decision: not for the log to undo
        raise Conflict("the broadcast was cancelled; it cannot be confirmed", "cancelled_broadcast")
    reason = (reason or "").strip() or None
    if not aired and reason is None:
        raise InvalidInput("say why it was not aired", "reason_required")
    when = at or now
    if aired and (when > now or broadcast.scheduled_at > now + PAST_TOLERANCE):
        raise InvalidInput("a broadcast cannot be confirmed before it airs", "not_yet_aired")
    if aired:
        broadcast.started_at = when
        broadcast.finished_at = when + timedelta(seconds=broadcast.audio.duration_seconds)
    broadcast.confirmation = "operator"
    broadcast.confirmed_by = actor.name
    broadcast.confirmed_at = now
    broadcast.reason = reason
    new = Status.PLAYED if aired else Status.MISSED
    before = broadcast.status
    for d in broadcast.deliveries:
        if d.endpoint.kind == "manual":  # the operator's word is that endpoint's proof
            if aired:
                d.started_at, d.finished_at = broadcast.started_at, broadcast.finished_at
            move_delivery(session, d, new.value, now, actor.name, reason)
    move_broadcast(session, broadcast, new.value, now, actor.name, reason)
    said = f"aired at {when.isoformat()}" if aired else "not aired"
    said += f"; {reason}" if reason else ""
    audit.record(session, actor, "confirm", broadcast, now, said)
    if before == new:  # the same status said again (another time, another reason)
        session.add(
            BroadcastEvent(
                broadcast_id=broadcast.id, at=now, from_status=before, to_status=new.value,
                actor=actor.name, reason=f"confirmed again: {said}",
            )
        )  # fmt: skip


@dataclass(frozen=True)
class PlayReport:
    """What an endpoint says about one delivery (device proof of play)."""

    delivery_id: int
    kind: str  # delivered | started | finished | interrupted | failed | missed
    at: datetime
    detail: str | None = None
    sha256: str | None = None
    clock_offset_seconds: float | None = None


_REPORT_STATUS = {
    "delivered": Status.DELIVERED,
    "started": Status.PLAYING,
    "finished": Status.PLAYED,
    "interrupted": Status.INTERRUPTED,
    "failed": Status.FAILED,
    "missed": Status.MISSED,
}
REPORT_KINDS = tuple(_REPORT_STATUS)
_REPORT_FIELDS = frozenset(
    ("delivery_id", "kind", "at", "detail", "sha256", "clock_offset_seconds")
)


def parse_report(data: object) -> PlayReport:
    """One report as a device sends it (a JSON object, e.g. an MQTT event), checked as the
    HTTP API checks each element of `reports`. Raises InvalidInput("invalid_report")."""

    def bad(detail: str) -> InvalidInput:
        return InvalidInput(detail, "invalid_report")

    if not isinstance(data, dict):
        raise bad("a report must be a JSON object")
    unknown = sorted(str(k) for k in data if k not in _REPORT_FIELDS)
    if unknown:
        raise bad(f"unknown field(s) in a report: {', '.join(unknown)}")
    delivery_id = data.get("delivery_id")
    if type(delivery_id) is not int or not 0 < delivery_id <= MAX_ID:
        raise bad("delivery_id must be a positive whole number")
    kind = data.get("kind")
    if kind not in REPORT_KINDS:
        raise bad(f"kind must be one of {', '.join(REPORT_KINDS)}; got {kind!r}")
    at = data.get("at")
    if isinstance(at, str):
        try:
            at = datetime.fromisoformat(at)
        except ValueError:
            raise bad(f"at must be an ISO 8601 time, got {at!r}") from None
    if not isinstance(at, datetime) or at.utcoffset() is None:
        raise bad("at must be an ISO 8601 time with its offset (e.g. +00:00)")
    texts = {name: data.get(name) for name in ("detail", "sha256")}
    for name, value in texts.items():
        if value is not None and not isinstance(value, str):
            raise bad(f"{name} must be text")
    offset = data.get("clock_offset_seconds")
    if offset is not None and (type(offset) not in (int, float) or not math.isfinite(offset)):
        raise bad("clock_offset_seconds must be a number of seconds")
    return PlayReport(
        delivery_id=delivery_id,
        kind=kind,
        at=at.astimezone(UTC),
        detail=texts["detail"],
        sha256=texts["sha256"],
        clock_offset_seconds=None if offset is None else float(offset),
    )


def load_deliveries(session: Session, delivery_ids: Sequence[int]) -> Sequence[Delivery]:
    """Load these deliveries with their broadcasts' deliveries and audio in three queries,
    so applying a batch of reports runs no query per report. Keep the list while applying:
    the session holds its objects only weakly."""
    return session.scalars(
        select(Delivery)
        .where(Delivery.id.in_(set(delivery_ids)))
        .options(
            selectinload(Delivery.broadcast).options(
                selectinload(Broadcast.deliveries), selectinload(Broadcast.audio)
            )
        )
    ).all()


def check_report(
    session: Session, endpoint: Endpoint, report: PlayReport, now: datetime
) -> Delivery:
    """The delivery a report is about, if the endpoint may report on it and its time can
    be true; changes nothing. A device whose clock is hours off would otherwise write
    impossible times into the as-run log: a time ahead of the server's clock, or before
    the broadcast was made, is refused with the reason (the device keeps the report)."""
    delivery = session.get(Delivery, report.delivery_id)
    if delivery is None:
        raise NotFound(f"no delivery has the id {report.delivery_id}", "unknown_delivery")
    if delivery.endpoint_id != endpoint.id:
        raise Forbidden(f"delivery {delivery.id} is not for this endpoint", "wrong_endpoint")
    if report.kind not in _REPORT_STATUS:
        raise InvalidInput(f"unknown report kind {report.kind!r}", "invalid_report")
    if report.at > now + CLOCK_TOLERANCE:
        ahead = (report.at - now).total_seconds() / 60
        raise InvalidInput(
            f"the report's time {report.at.isoformat()} is {ahead:.0f} minutes ahead of the "
            "server's clock; set the device's clock",
            "clock_ahead",
        )
    made = delivery.broadcast.created_at
    if report.at < made - CLOCK_TOLERANCE:
        raise InvalidInput(
            f"the report's time {report.at.isoformat()} is before broadcast "
            f"{delivery.broadcast_id} was made ({made.isoformat()}); set the device's clock",
            "clock_behind",
        )
    return delivery


def record_report(session: Session, endpoint: Endpoint, report: PlayReport, now: datetime) -> bool:
    """Apply one endpoint report; returns False when it changes nothing (a repeat).
    Raises (changing nothing) when check_report refuses it."""
    delivery = check_report(session, endpoint, report, now)
    new = _REPORT_STATUS[report.kind]
    detail = report.detail
    broadcast = delivery.broadcast
    if new == Status.PLAYED and report.sha256 and report.sha256 != broadcast.audio.sha256:
        new, detail = Status.FAILED, "the endpoint played audio with another checksum"
    if report.kind == "delivered":
        delivery.delivered_at = delivery.delivered_at or report.at
    if report.kind == "started" or (new == Status.PLAYED and delivery.started_at is None):
        delivery.started_at = report.at
        delivery.clock_offset_seconds = report.clock_offset_seconds
    if new in (Status.PLAYED, Status.INTERRUPTED):
        delivery.finished_at = report.at
    changed = move_delivery(session, delivery, new.value, now, f"endpoint:{endpoint.name}", detail)
    if changed and broadcast.status == Status.PLAYED and broadcast.confirmation != "operator":
        broadcast.confirmation = "device"
        broadcast.confirmed_by = f"endpoint:{endpoint.name}"
        broadcast.confirmed_at = now
    return changed
