"""Jingles (nhạc hiệu): uploaded audio played before or after a bulletin."""

from __future__ import annotations

import tempfile
from datetime import datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from audio.master import MasteringError, prepare_jingle
from audio.render import file_sha256
from scheduler import audit
from scheduler.auth import MANAGERS, Actor
from scheduler.errors import InvalidInput, NotFound
from scheduler.models import Jingle

MAX_BYTES = 10 * 1024 * 1024


def prepare(directory: Path, data: bytes) -> tuple[Path, float]:
    """Decode and loudness-match an upload into `directory`; the prepared WAV and its
    duration. Raises InvalidInput for what is not audio; nothing is left half-written."""
    if not data:
        raise InvalidInput("the jingle file is empty", "invalid_jingle")
    if len(data) > MAX_BYTES:
        raise InvalidInput("a jingle is at most 10 MB", "invalid_jingle")
    directory.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=directory) as work:
        upload = Path(work) / "upload"
        upload.write_bytes(data)
        try:
            segment = prepare_jingle(upload)
        except MasteringError as exc:
            raise InvalidInput(f"the jingle: {exc}", "invalid_jingle") from exc
        prepared = Path(work) / "prepared.wav"
        segment.export(str(prepared), format="wav")
        path = directory / f"{file_sha256(prepared)}.wav"
        prepared.replace(path)
    return path, round(len(segment) / 1000, 3)


def add(
    session: Session, actor: Actor, name: str, path: Path, duration: float, now: datetime
) -> Jingle:
    actor.require(*MANAGERS)
    name = name.strip()
    if not name or len(name) > 120:
        raise InvalidInput("give the jingle a name of 1 to 120 characters", "invalid_name")
    if session.scalar(select(Jingle).where(Jingle.name == name)) is not None:
        raise InvalidInput(f"a jingle named {name!r} exists already", "duplicate")
    jingle = Jingle(
        name=name,
        path=path.name,
        sha256=path.stem,
        duration_seconds=duration,
        created_by=actor.name,
        created_at=now,
    )
    session.add(jingle)
    session.flush()
    audit.record(session, actor, "create", jingle, now, name)
    return jingle


def listing(session: Session) -> list[Jingle]:
    return list(session.scalars(select(Jingle).order_by(Jingle.name)))


def get(session: Session, jingle_id: int) -> Jingle:
    jingle = session.get(Jingle, jingle_id)
    if jingle is None:
        raise NotFound(f"no jingle has the id {jingle_id}", "unknown_jingle")
    return jingle
