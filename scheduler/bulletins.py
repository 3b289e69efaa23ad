"""Bulletins (bản tin): written, rendered to speech, approved."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from audio.render import Speech
from scheduler import audit
from scheduler.auth import APPROVERS, MANAGERS, Actor
from scheduler.errors import Conflict, Forbidden, InvalidInput, NotFound
from scheduler.models import AudioAsset, Bulletin, BulletinKind, BulletinStatus, Jingle, Priority

MAX_TITLE = 300
MAX_URL = 500
MAX_RELAY_SECONDS = 4 * 3600


def parse_priority(value: str | None) -> Priority:
    try:
        return Priority(value or Priority.NORMAL.value)
    except ValueError:
        raise InvalidInput(
            f"unknown priority {value!r}; use normal, priority or emergency", "invalid_priority"
        ) from None


@dataclass(frozen=True)
class Voice:
    """How a bulletin is spoken."""

    engine: str = "auto"
    voice: str = "vi"
    speed: float = 1.0
    intro_id: int | None = None
    outro_id: int | None = None


def set_voice(
    session: Session,
    bulletin: Bulletin,
    voice: Voice,
    engines: Sequence[str],
    voices: Sequence[str],
) -> None:
    """Check and keep how the bulletin is spoken (engines and voices this server has)."""
    if voice.engine not in engines:
        raise InvalidInput(
            f"unknown engine {voice.engine!r}; use one of {', '.join(engines)}", "invalid_engine"
        )
    if voice.voice not in voices:
        raise InvalidInput(
            f"unknown voice {voice.voice!r}; use one of {', '.join(voices)}", "invalid_voice"
        )
    if not 0.5 <= voice.speed <= 2.0:
        raise InvalidInput("the speed is between 0.5 and 2.0", "invalid_speed")
    for jingle_id in (voice.intro_id, voice.outro_id):
        if jingle_id is not None and session.get(Jingle, jingle_id) is None:
            raise InvalidInput(f"no jingle has the id {jingle_id}", "unknown_jingle")
    bulletin.engine, bulletin.voice, bulletin.speed = voice.engine, voice.voice, voice.speed
    bulletin.intro_id, bulletin.outro_id = voice.intro_id, voice.outro_id


def voice_of(bulletin: Bulletin) -> Voice:
    return Voice(
        bulletin.engine, bulletin.voice, bulletin.speed, bulletin.intro_id, bulletin.outro_id
    )


def _checked(
    title: str, text: str, max_chars: int, kind: str = BulletinKind.SPEECH
) -> tuple[str, str]:
    """The title and text stripped; a recording's or relay's text is an optional note."""
    title, text = title.strip(), text.strip()
    if not title:
        raise InvalidInput("the title is empty", "empty_title")
    if len(title) > MAX_TITLE:
        raise InvalidInput(f"the title is longer than {MAX_TITLE} characters", "title_too_long")
    if not text and kind == BulletinKind.SPEECH:
        raise InvalidInput("the text is empty", "empty_text")
    if len(text) > max_chars:
        raise InvalidInput(
            f"the text has {len(text)} characters; the limit is {max_chars}", "text_too_long"
        )
    return title, text


def create_bulletin(
    session: Session,
    actor: Actor,
    *,
    title: str,
    text: str,
    topic: str,
    priority: Priority,
    now: datetime,
    max_chars: int,
    kind: BulletinKind = BulletinKind.SPEECH,
) -> Bulletin:
    actor.require(*MANAGERS)
    title, text = _checked(title, text, max_chars, kind)
    bulletin = Bulletin(
        title=title,
        kind=kind.value,
        text=text,
        topic=topic.strip(),
        priority=priority.value,
        status=BulletinStatus.DRAFT.value,
        created_by=actor.name,
        created_at=now,
    )
    session.add(bulletin)
    session.flush()
    audit.record(session, actor, "create", bulletin, now, f"{kind.value}: {title}")
    return bulletin


def edit(
    session: Session,
    actor: Actor,
    bulletin: Bulletin,
    *,
    title: str,
    text: str,
    topic: str,
    priority: Priority,
    max_chars: int,
    now: datetime,
) -> None:
    """Change a bulletin. A change of what is said returns it to draft, without audio:
    it is approved again before it airs (what is scheduled already keeps its audio).
    A recording or relay keeps its audio; its text is a note."""
    actor.require(*MANAGERS)
    title, text = _checked(title, text, max_chars, bulletin.kind)
    before = (bulletin.title, bulletin.text, bulletin.topic, bulletin.priority)
    if (title, text, priority.value) != (bulletin.title, bulletin.text, bulletin.priority):
        to_draft(bulletin)
        if bulletin.kind == BulletinKind.SPEECH:
            bulletin.audio = None
    bulletin.title, bulletin.text = title, text
    bulletin.topic, bulletin.priority = topic.strip(), priority.value
    after = (bulletin.title, bulletin.text, bulletin.topic, bulletin.priority)
    changed = [
        n
        for n, a, b in zip(("title", "text", "topic", "priority"), before, after, strict=True)
        if a != b
    ]
    if changed:
        audit.record(session, actor, "edit", bulletin, now, ", ".join(changed))


def to_draft(bulletin: Bulletin) -> None:
    bulletin.status = BulletinStatus.DRAFT.value
    bulletin.approved_by = bulletin.approved_at = None


def require_speech(bulletin: Bulletin) -> None:
    if bulletin.kind != BulletinKind.SPEECH:
        raise Conflict(
            f"bulletin {bulletin.id} is a {bulletin.kind}, not text to speak", "not_speech"
        )


def check_stream_url(url: str) -> str:
    """A relay's stream: an http(s) URL without credentials (every endpoint receives it)."""
    url = url.strip()
    parts = urlsplit(url)
    if len(url) > MAX_URL or parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput(
            f"the stream must be an http:// or https:// URL of at most {MAX_URL} characters",
            "invalid_stream_url",
        )
    if parts.username or parts.password:
        raise InvalidInput(
            "the stream URL must not hold a user name or password: every endpoint receives it",
            "invalid_stream_url",
        )
    return url


def relay_asset(session: Session, url: str, seconds: float, now: datetime) -> AudioAsset:
    """The asset of relaying `url` for `seconds` (one row per stream and length)."""
    url = check_stream_url(url)
    if not 1 <= seconds <= MAX_RELAY_SECONDS:
        raise InvalidInput(
            f"a relay lasts from 1 second to {MAX_RELAY_SECONDS // 3600} hours",
            "invalid_duration",
        )
    seconds = round(seconds, 3)
    identity = hashlib.sha256(f"relay\n{url}\n{seconds}".encode()).hexdigest()
    asset = session.scalar(select(AudioAsset).where(AudioAsset.sha256 == identity))
    if asset is None:
        asset = AudioAsset(
            sha256=identity,
            path="",
            duration_seconds=seconds,
            engine="relay",
            voice="",
            spoken_text="",
            stream_url=url,
            created_at=now,
        )
        session.add(asset)
        session.flush()
    return asset


def set_relay(
    session: Session, actor: Actor, bulletin: Bulletin, url: str, seconds: float, now: datetime
) -> None:
    """Point a relay bulletin at a stream for a length; a change returns it to draft."""
    actor.require(*MANAGERS)
    if bulletin.kind != BulletinKind.RELAY:
        raise Conflict(f"bulletin {bulletin.id} is not a relay", "not_relay")
    asset = relay_asset(session, url, seconds, now)
    if bulletin.audio_id != asset.id:
        to_draft(bulletin)
        bulletin.audio = asset
        audit.record(session, actor, "edit", bulletin, now, f"stream {url} for {seconds:g} s")


def get_bulletin(session: Session, bulletin_id: int) -> Bulletin:
    bulletin = session.get(Bulletin, bulletin_id)
    if bulletin is None:
        raise NotFound(f"no bulletin has the id {bulletin_id}", "unknown_bulletin")
    return bulletin


def list_bulletins(session: Session, limit: int = 200) -> list[Bulletin]:
    return list(session.scalars(select(Bulletin).order_by(Bulletin.id.desc()).limit(limit)))


def approve(
    session: Session, actor: Actor, bulletin: Bulletin, now: datetime, *, four_eyes: bool = False
) -> None:
    """Approve a bulletin for the air; with `four_eyes` (a district setting) only someone
    other than its author may."""
    actor.require(*APPROVERS)
    if bulletin.status == BulletinStatus.APPROVED:
        return
    if four_eyes and actor.name == bulletin.created_by:
        raise Forbidden(
            f"{actor.name} wrote bulletin {bulletin.id}; someone else approves it",
            "own_bulletin",
        )
    bulletin.status = BulletinStatus.APPROVED.value
    bulletin.approved_by = actor.name
    bulletin.approved_at = now
    audit.record(session, actor, "approve", bulletin, now)


def require_approved(bulletin: Bulletin) -> None:
    if bulletin.status != BulletinStatus.APPROVED:
        raise Conflict(f"bulletin {bulletin.id} is not approved yet", "not_approved")


def attach_audio(
    session: Session, bulletin: Bulletin, speech: Speech, relative_path: str, now: datetime
) -> AudioAsset:
    """Record rendered speech or a mastered recording (once per checksum) and make it the
    bulletin's audio."""
    asset = store_asset(session, speech, relative_path, now)
    bulletin.audio = asset
    return asset


def store_asset(session: Session, speech: Speech, relative_path: str, now: datetime) -> AudioAsset:
    """The asset of a file in the audio store, recorded once per checksum."""
    asset = session.scalar(select(AudioAsset).where(AudioAsset.sha256 == speech.sha256))
    if asset is None:
        asset = AudioAsset(
            sha256=speech.sha256,
            path=relative_path,
            duration_seconds=speech.duration_seconds,
            engine=speech.engine,
            voice=speech.voice,
            spoken_text=speech.spoken_text,
            fallback_reason=speech.fallback_reason,
            loudness_lufs=speech.loudness_lufs,
            true_peak_dbtp=speech.true_peak_dbtp,
            created_at=now,
        )
        session.add(asset)
        session.flush()
    return asset
