"""What a commune aired, for citizens who missed the loudspeaker (public pages, podcast).

Only broadcasts that aired (wholly, partly, or cut by an emergency) in that commune, in
the last weeks, with an audio file (a relay's stream is not kept): nothing planned,
nothing of another commune.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from scheduler.areas import commune_by_code
from scheduler.errors import NotFound
from scheduler.models import Area, AudioAsset, Broadcast, Bulletin, Status

WEEKS = 4
LIMIT = 200
AIRED = (Status.PLAYED.value, Status.PARTIAL.value, Status.INTERRUPTED.value)


@dataclass(frozen=True)
class Aired:
    broadcast_id: int
    title: str
    topic: str
    text: str
    aired_at: datetime
    duration_seconds: float
    path: str  # in the audio store


def _aired(commune_id: int, since: datetime) -> list[ColumnElement[bool]]:
    return [
        Broadcast.commune_id == commune_id,
        Broadcast.status.in_(AIRED),
        AudioAsset.stream_url.is_(None),
        func.coalesce(Broadcast.started_at, Broadcast.scheduled_at) >= since,
    ]


def aired(session: Session, code: str, now: datetime) -> tuple[Area, list[Aired]]:
    """A commune and what it aired in the last WEEKS weeks, newest first."""
    commune = commune_by_code(session, code)
    when = func.coalesce(Broadcast.started_at, Broadcast.scheduled_at)
    columns = (Broadcast.id, Bulletin.title, Bulletin.topic, Bulletin.kind, Bulletin.text, when,
               AudioAsset.duration_seconds, AudioAsset.path)  # fmt: skip
    rows = session.execute(
        select(*columns)
        .join(Bulletin, Broadcast.bulletin_id == Bulletin.id)
        .join(AudioAsset, Broadcast.audio_id == AudioAsset.id)
        .where(*_aired(commune.id, now - timedelta(weeks=WEEKS)))
        .order_by(when.desc(), Broadcast.id.desc())
        .limit(LIMIT)
    )
    items = [
        Aired(b_id, title, topic, text if kind == "speech" else "", at, seconds, path)
        for b_id, title, topic, kind, text, at, seconds, path in rows
    ]
    return commune, items


def aired_audio(session: Session, code: str, broadcast_id: int, now: datetime, store: Path) -> Path:
    """The file of a broadcast this commune aired; NotFound for anything else."""
    commune = commune_by_code(session, code)
    path: str | None = session.scalar(
        select(AudioAsset.path)
        .join(Broadcast, Broadcast.audio_id == AudioAsset.id)
        .where(Broadcast.id == broadcast_id, *_aired(commune.id, now - timedelta(weeks=WEEKS)))
    )
    if path is None or not (store / path).is_file():
        raise NotFound(f"{commune.name} aired no such recording lately", "unknown_broadcast")
    return store / path
