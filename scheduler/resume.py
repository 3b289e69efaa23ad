"""Resuming what an emergency interrupted, when the district turns it on.

An emergency (khẩn cấp) cuts what plays; the cut broadcast stays `interrupted` in the
as-run log. With LOA_RESUME_INTERRUPTED on, the rest of it plays as a new broadcast right
after the emergencies of its commune end: from a few seconds before the cut (the
listener hears where it stopped), its own row with `resumes_id` naming the cut one,
made once even when several schedulers look at the same time (a unique column).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased, selectinload

from audio.render import Speech
from scheduler import bulletins
from scheduler.broadcasts import add_broadcast
from scheduler.models import AudioAsset, Broadcast, Priority, Status

BACK = 3.0  # seconds replayed before the cut
MIN_REST = 5.0  # a rest shorter than this is not worth a broadcast of its own
LOOK_BACK = timedelta(hours=1)  # older interruptions are not resumed any more
GAP = timedelta(seconds=1)
ACTOR = "system:resume"
LIVE = (Status.SCHEDULED.value, Status.DELIVERED.value, Status.PLAYING.value)


@dataclass(frozen=True)
class Rest:
    """What remains of an interrupted broadcast: its id and where it stopped."""

    broadcast_id: int
    played_seconds: float


def to_resume(session: Session, now: datetime) -> list[Rest]:
    """Interrupted broadcasts of the last hour, not resumed yet, with enough left."""
    resumed = aliased(Broadcast)
    rows = session.scalars(
        select(Broadcast)
        .join(AudioAsset, Broadcast.audio_id == AudioAsset.id)
        .where(
            Broadcast.status == Status.INTERRUPTED.value,
            Broadcast.priority != Priority.EMERGENCY.value,
            Broadcast.finished_at >= now - LOOK_BACK,
            ~select(resumed.id).where(resumed.resumes_id == Broadcast.id).exists(),
        )
        .options(selectinload(Broadcast.deliveries), selectinload(Broadcast.audio))
    )
    rests = []
    for b in rows:
        played = [
            (d.finished_at - d.started_at).total_seconds()
            for d in b.deliveries
            if d.status == Status.INTERRUPTED and d.started_at and d.finished_at
        ]
        heard = max(0.0, min(played, default=0.0) - BACK)
        if b.audio.duration_seconds - heard >= MIN_REST:
            rests.append(Rest(b.id, heard))
    return rests


def after_emergencies(session: Session, commune_id: int, now: datetime) -> datetime:
    """When the commune's emergencies playing or due now have ended."""
    ends = session.execute(
        select(
            func.coalesce(Broadcast.started_at, Broadcast.scheduled_at),
            AudioAsset.duration_seconds,
        )
        .join(AudioAsset, Broadcast.audio_id == AudioAsset.id)
        .where(
            Broadcast.commune_id == commune_id,
            Broadcast.priority == Priority.EMERGENCY.value,
            Broadcast.status.in_(LIVE),
            Broadcast.scheduled_at <= now + timedelta(minutes=1),
        )
    )
    latest = max((start + timedelta(seconds=seconds) for start, seconds in ends), default=now)
    return max(latest, now) + GAP


def resume(session: Session, rest: Rest, audio: AudioAsset, now: datetime) -> Broadcast | None:
    """The broadcast that plays the rest (None: another process made it first)."""
    cut = session.get(Broadcast, rest.broadcast_id)
    assert cut is not None
    at = after_emergencies(session, cut.commune_id, now)
    try:
        with session.begin_nested():
            return add_broadcast(
                session, cut.bulletin, cut.commune, at, ACTOR, now,
                audio=audio, priority=cut.priority, resumes_id=cut.id,
                placement_id=cut.placement_id,  # outside the slot queues: packing leaves it
            )  # fmt: skip
    except IntegrityError:
        return None


def rest_audio(session: Session, rest: Rest, audio_dir: Path, now: datetime) -> AudioAsset:
    """The asset of what remains: the tail of the file, or the rest of a relay."""
    from audio.recording import save_tail  # ffmpeg: only when something is resumed

    cut = session.get(Broadcast, rest.broadcast_id)
    assert cut is not None
    whole = cut.audio
    left = round(whole.duration_seconds - rest.played_seconds, 3)
    if whole.stream_url:
        return bulletins.relay_asset(session, whole.stream_url, left, now)
    path, sha256 = save_tail(audio_dir / whole.path, rest.played_seconds, audio_dir / "resumed")
    speech = Speech(
        path=path,
        sha256=sha256,
        duration_seconds=left,
        engine=whole.engine,
        voice=whole.voice,
        spoken_text="",
        loudness_lufs=whole.loudness_lufs or 0.0,
        true_peak_dbtp=whole.true_peak_dbtp or 0.0,
    )
    relative = path.relative_to(audio_dir).as_posix()
    return bulletins.store_asset(session, speech, relative, now)
