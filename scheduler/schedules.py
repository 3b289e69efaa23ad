"""What each endpoint is told to play: its schedule, built for many endpoints at once.

A new bulletin for the whole district wakes every long-polling agent together; building
their answers one ORM query at a time would take seconds for a thousand agents, so they
are built with two flat queries for all of them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from scheduler.errors import InvalidInput
from scheduler.health import Beat, Facts
from scheduler.models import (
    OPEN_STATUSES,
    Area,
    AudioAsset,
    Broadcast,
    Bulletin,
    Delivery,
    Endpoint,
    Priority,
)

CHUNK = 2000  # ids per IN (...) list, well under every database's limit


def schedules(
    session: Session,
    endpoint_ids: Sequence[int],
    now: datetime,
    *,
    horizon: timedelta,
    grace: timedelta,
    audio_url: Callable[[str], str],
    mqtt_url: str | None = None,
) -> dict[int, dict[str, Any]]:
    """The schedule document (without `version`) of each active endpoint among these ids."""
    docs: dict[int, dict[str, Any]] = {}
    for start in range(0, len(endpoint_ids), CHUNK):
        ids = endpoint_ids[start : start + CHUNK]
        for endpoint_id, name, commune in session.execute(
            select(Endpoint.id, Endpoint.name, Area.code)
            .join(Area, Endpoint.commune_id == Area.id)
            .where(Endpoint.id.in_(ids), Endpoint.active.is_(True))
        ):
            docs[endpoint_id] = {
                "server_time": now.isoformat(),
                "grace_seconds": int(grace.total_seconds()),
                "endpoint": {"id": endpoint_id, "name": name, "commune": commune},
                "items": [],
                # Where to listen for wake-ups and commands, when this server pushes by MQTT.
                "mqtt": {"url": mqtt_url, "topic": f"loa/ep/{endpoint_id}/cmd"}
                if mqtt_url
                else None,
            }
        rows = session.execute(
            select(
                Delivery.id,
                Delivery.endpoint_id,
                Delivery.status,
                Broadcast.id,
                Broadcast.priority,
                Broadcast.scheduled_at,
                Bulletin.title,
                AudioAsset.duration_seconds,
                AudioAsset.sha256,
                AudioAsset.stream_url,
            )
            .join(Broadcast, Delivery.broadcast_id == Broadcast.id)
            .join(Bulletin, Broadcast.bulletin_id == Bulletin.id)
            .join(AudioAsset, Broadcast.audio_id == AudioAsset.id)
            .where(
                Delivery.endpoint_id.in_(ids),
                Delivery.status.in_(OPEN_STATUSES),
                Broadcast.scheduled_at >= now - grace,
                Broadcast.scheduled_at <= now + horizon,
            )
            .order_by(Broadcast.scheduled_at, Delivery.id)
        )
        for (
            delivery_id,
            endpoint_id,
            status,
            b_id,
            priority,
            at,
            title,
            seconds,
            sha,
            stream,
        ) in rows:
            doc = docs.get(endpoint_id)
            if doc is None:
                continue
            doc["items"].append(
                {
                    "delivery_id": delivery_id,
                    "broadcast_id": b_id,
                    "title": title,
                    "priority": priority,
                    "rank": Priority(priority).rank,
                    "scheduled_at": at.isoformat(),
                    "play_until": (at + grace).isoformat(),
                    "duration_seconds": seconds,
                    # A relay (tiếp sóng) has a stream to play for duration_seconds, no file.
                    "sha256": None if stream else sha,
                    "audio_url": None if stream else audio_url(sha),
                    "stream_url": stream,
                    "status": status,
                }
            )
    return docs


def parse_beat(args: Mapping[str, str], now: datetime) -> Beat:
    """What a device says of itself in its poll's query parameters.
    Raises InvalidInput("invalid_heartbeat")."""

    def number(name: str, kind: type[float] | type[int]) -> Any:
        try:
            return kind(args[name]) if name in args else None
        except ValueError:
            raise InvalidInput(f"{name} must be a number", "invalid_heartbeat") from None

    return Beat(
        at=now,
        facts=Facts(
            agent_version=args.get("agent_version", "")[:64] or None,
            cache_free_bytes=number("cache_free_bytes", int),
            clock_offset_seconds=number("clock_offset_seconds", float),
            missing_audio=number("missing_audio", int),
            cache_error=args.get("cache_error", "")[:32] or None,
        ),
    )
