"""Use cases that span the database, the audio store and the endpoints.

Views, scheduler jobs and the CLI call these; each opens its own transactions, keeps
slow work (speech rendering) outside them, and tells endpoints only after a commit.
"""

from __future__ import annotations

import logging
import tempfile
import threading
from collections.abc import Callable, Collection, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from audio.playout import PlayEvent
from audio.render import ENGINE_CHAINS, Speech
from scheduler import areas, audit, bulletins, documents, health, lexicon, planning, quiet, resume
from scheduler import broadcasts as bc
from scheduler.auth import MANAGERS, Actor, new_token
from scheduler.context import Loa
from scheduler.db import one_at_a_time
from scheduler.errors import Conflict, InvalidInput
from scheduler.models import (
    AudioAsset,
    Broadcast,
    Bulletin,
    BulletinKind,
    BulletinStatus,
    Delivery,
    Endpoint,
    Priority,
    Status,
)
from scheduler.status import move_delivery

log = logging.getLogger(__name__)

ID_CHUNK = 10_000  # ids per IN (…): SQLite and PostgreSQL cap the parameters of a statement
# Kinds a user may create; virtual ones come from --virtual-speakers.
ENDPOINT_KINDS = ("agent", "mqtt", "icecast", "local", "manual")
RECORDINGS = "recordings"  # where uploaded recordings go in the audio store
MAX_RECORDING_BYTES = 100 * 2**20


def create_bulletin(
    loa: Loa,
    actor: Actor,
    *,
    title: str,
    text: str,
    topic: str = "",
    priority: Priority = Priority.NORMAL,
    voice: bulletins.Voice | None = None,
) -> Bulletin:
    """A draft bulletin, spoken as `voice` says (default: this server's engine)."""
    with loa.transaction() as session:
        bulletin = _new(loa, session, actor, BulletinKind.SPEECH, title, text, topic, priority)
        set_voice(loa, session, bulletin, voice or bulletins.Voice(engine=loa.settings.tts_engine))
        _ = bulletin.audio
        return bulletin


def _new(
    loa: Loa,
    session: Session,
    actor: Actor,
    kind: BulletinKind,
    title: str,
    text: str,
    topic: str,
    priority: Priority,
) -> Bulletin:
    return bulletins.create_bulletin(
        session,
        actor,
        title=title,
        text=text,
        topic=topic,
        priority=priority,
        now=loa.now(),
        max_chars=loa.renderer.max_chars,
        kind=kind,
    )


def import_bulletin(
    loa: Loa,
    actor: Actor,
    filename: str,
    data: bytes,
    *,
    topic: str = "",
    priority: Priority = Priority.NORMAL,
) -> Bulletin:
    """A draft bulletin from a DOCX or TXT document: its body, header and signature dropped."""
    actor.require(*MANAGERS)
    imported = documents.extract(filename, data)
    return create_bulletin(
        loa, actor, title=imported.title, text=imported.text, topic=topic, priority=priority
    )


def create_recording(
    loa: Loa,
    actor: Actor,
    *,
    title: str,
    data: bytes,
    text: str = "",
    topic: str = "",
    priority: Priority = Priority.NORMAL,
) -> Bulletin:
    """A draft bulletin that plays an uploaded recording (MP3, WAV or OGG), mastered."""
    actor.require(*MANAGERS)
    speech = _save_recording(loa, data, title)
    with loa.transaction() as session:
        bulletin = _new(loa, session, actor, BulletinKind.RECORDING, title, text, topic, priority)
        _attach(loa, session, bulletin, speech)
        return bulletin


def replace_recording(loa: Loa, actor: Actor, bulletin_id: int, data: bytes) -> AudioAsset:
    """A recording bulletin's new file: back to draft until approved again."""
    actor.require(*MANAGERS)
    with loa.transaction() as session:
        bulletin = bulletins.get_bulletin(session, bulletin_id)
        if bulletin.kind != BulletinKind.RECORDING:
            raise Conflict(f"bulletin {bulletin_id} is not a recording", "not_recording")
        title = bulletin.title
    speech = _save_recording(loa, data, title)
    with loa.transaction() as session:
        bulletin = bulletins.get_bulletin(session, bulletin_id)
        if bulletin.audio is None or bulletin.audio.sha256 != speech.sha256:
            bulletins.to_draft(bulletin)
            audit.record(session, actor, "edit", bulletin, loa.now(), "new recording")
        return _attach(loa, session, bulletin, speech)


def _save_recording(loa: Loa, data: bytes, title: str) -> Speech:
    from audio.master import MasteringError  # numpy: only when a file is uploaded
    from audio.recording import save_recording

    if not data:
        raise InvalidInput("the audio file is empty", "invalid_audio")
    if len(data) > MAX_RECORDING_BYTES:
        raise InvalidInput(
            f"an audio file is at most {MAX_RECORDING_BYTES // 2**20} MB", "invalid_audio"
        )
    directory = loa.settings.audio_dir / RECORDINGS
    directory.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=directory, prefix=".upload-") as upload:
        upload.write(data)
        upload.flush()
        try:
            return save_recording(Path(upload.name), directory, title.strip() or "Loa")
        except MasteringError as exc:
            raise InvalidInput(f"the audio file: {exc}", "invalid_audio") from exc


def _attach(loa: Loa, session: Session, bulletin: Bulletin, speech: Speech) -> AudioAsset:
    relative = speech.path.relative_to(loa.settings.audio_dir).as_posix()
    return bulletins.attach_audio(session, bulletin, speech, relative, loa.now())


def create_relay(
    loa: Loa,
    actor: Actor,
    *,
    title: str,
    stream_url: str,
    seconds: float,
    text: str = "",
    topic: str = "",
    priority: Priority = Priority.NORMAL,
) -> Bulletin:
    """A draft bulletin that relays a live stream (tiếp sóng) for `seconds`."""
    with loa.transaction() as session:
        bulletin = _new(loa, session, actor, BulletinKind.RELAY, title, text, topic, priority)
        bulletins.set_relay(session, actor, bulletin, stream_url, seconds, loa.now())
        return bulletin


def render_bulletin(
    loa: Loa, actor: Actor, bulletin_id: int, voice: bulletins.Voice | None = None
) -> AudioAsset:
    """Render a bulletin's speech (served from the cache when unchanged) and attach it;
    `voice`, when given, is kept as the bulletin's from now on."""
    actor.require(*MANAGERS)
    with loa.transaction() as session:
        bulletin = bulletins.get_bulletin(session, bulletin_id)
        bulletins.require_speech(bulletin)
        if voice is not None:
            set_voice(loa, session, bulletin, voice)
        title, text, spoken_as = bulletin.title, bulletin.text, bulletins.voice_of(bulletin)
        words = lexicon.as_mapping(session)
        intro, outro = (
            loa.settings.jingle_dir / j.path if j else None
            for j in (bulletin.intro, bulletin.outro)
        )
    speech = loa.renderer.render(
        text,
        title=title,
        engine=spoken_as.engine,
        voice=spoken_as.voice,
        speed=spoken_as.speed,
        lexicon=words,
        intro=intro,
        outro=outro,
    )
    with loa.transaction() as session:
        asset = _attach(loa, session, bulletins.get_bulletin(session, bulletin_id), speech)
    adopt_approved_audio(loa, bulletin_id)
    if speech.fallback_reason:
        log.warning(
            "bulletin %s spoken by %s: %s", bulletin_id, speech.engine, speech.fallback_reason
        )
    return asset


def set_voice(loa: Loa, session: Session, bulletin: Bulletin, voice: bulletins.Voice) -> None:
    """Keep how a bulletin is spoken, checked against the engines this server has."""
    bulletins.set_voice(session, bulletin, voice, list(ENGINE_CHAINS), loa.renderer.voices)


def schedule_bulletin(
    loa: Loa,
    actor: Actor,
    bulletin_id: int,
    commune_codes: Sequence[str],
    at: datetime | None,
) -> list[Broadcast]:
    """Schedule an approved bulletin in communes at `at` (None: now), rendering it if needed."""
    actor.require(*MANAGERS)
    with loa.transaction() as session:
        bulletin = bulletins.get_bulletin(session, bulletin_id)
        bulletins.require_approved(bulletin)  # before any slow rendering
        needs_audio = bulletin.audio_id is None
    if needs_audio:
        render_bulletin(loa, actor, bulletin_id)
    now = loa.now()
    with loa.transaction() as session:
        bulletin = bulletins.get_bulletin(session, bulletin_id)
        communes = [areas.commune_by_code(session, code) for code in commune_codes]
        quiet.refuse_quiet(session, communes, at or now, bulletin.priority, loa.settings.timezone)
        created = bc.schedule(session, actor, bulletin, communes, at or now, now)
        endpoints = {(d.endpoint_id, d.endpoint.kind) for b in created for d in b.deliveries}
        for b in created:  # load what callers render after the session closes
            _ = b.commune.code, b.bulletin.title, b.audio.duration_seconds
    ids = [b.id for b in created]
    for listener in loa.on_scheduled:
        listener(ids)
    _announce(loa, endpoints)
    return created


def _announce(loa: Loa, endpoints: set[tuple[int, str]]) -> None:
    """Tell these (endpoint id, kind)s that their schedules changed."""
    by_kind: dict[str, list[int]] = {}
    for endpoint_id, kind in endpoints:
        by_kind.setdefault(kind, []).append(endpoint_id)
    for kind, endpoint_ids in by_kind.items():
        if kind in loa.drivers:
            loa.drivers[kind].announce_many(endpoint_ids)


def approve_bulletin(loa: Loa, actor: Actor, bulletin_id: int) -> Bulletin:
    with loa.transaction() as session:
        bulletin = bulletins.get_bulletin(session, bulletin_id)
        bulletins.approve(session, actor, bulletin, loa.now(), four_eyes=loa.settings.four_eyes)
    adopt_approved_audio(loa, bulletin_id)
    return bulletin


def adopt_approved_audio(loa: Loa, bulletin_id: int) -> int:
    """A corrected bulletin, approved again and rendered: its broadcasts not started yet
    play the new audio (re-packed: its length changed). Until then they keep the audio
    that was approved. Returns how many changed."""
    now = loa.now()
    until = now + timedelta(days=loa.settings.plan_days)
    with loa.transaction() as session:
        bulletin = bulletins.get_bulletin(session, bulletin_id)
        if bulletin.status != BulletinStatus.APPROVED or bulletin.audio_id is None:
            return 0
        rows = session.execute(
            update(Broadcast)
            .where(
                Broadcast.bulletin_id == bulletin_id,
                Broadcast.audio_id != bulletin.audio_id,
                Broadcast.dispatched_at.is_(None),
                Broadcast.status.in_((Status.SCHEDULED.value, Status.DELIVERED.value)),
                Broadcast.scheduled_at > now + planning.FREEZE,
            )
            .values(audio_id=bulletin.audio_id)
            .returning(Broadcast.id, Broadcast.commune_id)
        ).all()
        communes = {commune_id for _, commune_id in rows}
        moved = planning.pack(session, communes, now, loa.settings.timezone, until)
    changed(loa, [b_id for b_id, _ in rows] + list(moved))
    return len(rows)


def changed(
    loa: Loa, broadcast_ids: Sequence[int], communes: Collection[int] | None = None
) -> None:
    """These broadcasts were made, moved or cancelled: arm their timers and wake their
    endpoints (an agent drops a cancelled item at once). With `communes` (where they
    are), the endpoints are those communes' active ones: one query for a country's week."""
    if not broadcast_ids:
        return
    for listener in loa.on_scheduled:
        listener(list(broadcast_ids))
    q = select(Endpoint.id, Endpoint.kind).distinct()
    if communes is not None:
        ids: Sequence[int] = list(communes)
        q = q.where(Endpoint.active.is_(True))
        column = Endpoint.commune_id
    else:
        ids, column = broadcast_ids, Delivery.broadcast_id
        q = q.join(Delivery, Delivery.endpoint_id == Endpoint.id)
    endpoints: set[tuple[int, str]] = set()
    with loa.transaction() as session:
        for start in range(0, len(ids), ID_CHUNK):
            endpoints.update(session.execute(q.where(column.in_(ids[start : start + ID_CHUNK]))))
    _announce(loa, endpoints)


@dataclass(frozen=True)
class Placed:
    placement_id: int
    broadcasts: int
    overflow: int
    # The last local day made now, when the rule goes on past the horizon: the scheduler
    # makes the following days as they come within it.
    planned_until: date | None = None
    quiet: int = 0  # left out: in the quiet hours of their commune


def place(
    loa: Loa,
    actor: Actor,
    bulletin_id: int,
    targets: planning.Targets,
    rule: planning.Rule,
    priority: Priority | None = None,
) -> Placed:
    """Place an approved bulletin (rendering it if needed) and materialise the placement."""
    actor.require(*MANAGERS)
    with loa.transaction() as session:
        bulletins.require_approved(bulletins.get_bulletin(session, bulletin_id))
        needs_audio = bulletins.get_bulletin(session, bulletin_id).audio_id is None
    if needs_audio:
        render_bulletin(loa, actor, bulletin_id)
    now, tz = loa.now(), loa.settings.timezone
    until = now + timedelta(days=loa.settings.plan_days)
    with loa.transaction() as session:
        bulletin = bulletins.get_bulletin(session, bulletin_id)
        placement = planning.create_placement(
            session, actor, bulletin, targets, rule, priority, now
        )
        communes = planning.target_communes(session, [placement])[placement.id]
        batched = session.get_bind().dialect.name == "postgresql" and len(communes) > BATCH
        if not batched:
            made = planning.materialise(session, now, until, tz, [placement.id])
        last = until.astimezone(tz).date()
        later = placement.date_to is not None and placement.date_to > last
    if batched:
        made = _materialise_in_batches(loa, actor, placement.id, communes, now, until)
    changed(loa, made.created + made.moved, made.communes)
    return Placed(
        placement.id, len(made.created), made.overflow, last if later else None, made.quiet
    )


BATCH = 2500  # at most so many communes per transaction when a placement is made in batches
BATCH_WORKERS = 2  # transactions at a time


def batches(communes: list[int]) -> list[list[int]]:
    """Communes in batches of at most BATCH, of equal size and as many as a multiple of
    BATCH_WORKERS: none is left to run alone at the end (10,599: six of 1,767)."""
    count = -(-len(communes) // BATCH)
    count += -count % BATCH_WORKERS
    size = -(-len(communes) // count)
    return [communes[i : i + size] for i in range(0, len(communes), size)]


def _materialise_in_batches(
    loa: Loa, actor: Actor, placement_id: int, communes: list[int], now: datetime, until: datetime
) -> planning.Materialised:
    """Materialise a placement for thousands of communes (PostgreSQL) in batches of
    communes, each its own transaction, two at a time: the server's writing of a batch
    holds one core (indexes, and foreign keys checked row by row when the role may not
    have them checked once: `db.keys_checked_once`). One batch at a time computes its
    rows (Python, which holds the GIL anyway); it lets the next one start computing as
    soon as its rows are laid out and it writes them, so the server's writing of one
    batch overlaps the computing of the next instead of both batches computing, then
    both writing, in step. The placement is held meanwhile, so the scheduler's extension
    does not make the same rows; if a batch fails, the placement is cancelled with what
    was made, and the error raised."""
    tz = loa.settings.timezone
    computing = threading.Lock()

    def batch(part: list[int]) -> planning.Materialised:
        with computing_turn(computing) as laid_out, loa.transaction() as session:
            return planning.materialise(
                session, now, until, tz, [placement_id], set(part), lock=False, laid_out=laid_out
            )

    with loa.engine.connect() as held:
        planning.lock_placement(held, placement_id)
        try:
            with ThreadPoolExecutor(BATCH_WORKERS, thread_name_prefix="materialise") as pool:
                done = list(pool.map(batch, batches(communes)))
        except Exception:
            log.exception("placement %s: materialising failed; cancelling it", placement_id)
            with loa.transaction() as session:
                planning.cancel_placement(session, actor, placement_id, now)
            raise
        finally:
            planning.unlock_placement(held, placement_id)
            held.commit()
    return planning.Materialised(
        [i for m in done for i in m.created],
        [i for m in done for i in m.moved],
        sum(m.overflow for m in done),  # each batch counted its own communes
        {c for m in done for c in m.communes},
        sum(m.quiet for m in done),
    )


@contextmanager
def computing_turn(lock: threading.Lock) -> Iterator[Callable[[], None]]:
    """Hold `lock` until the function given is called (or the block ends)."""
    lock.acquire()
    held = True

    def release() -> None:
        nonlocal held
        if held:
            held = False
            lock.release()

    try:
        yield release
    finally:
        release()


def set_quiet_hours(
    loa: Loa, actor: Actor, codes: Sequence[str] | None, start: str | None, end: str | None
) -> tuple[int, int]:
    """Quiet hours for these communes (None: all); (communes set, broadcasts cancelled)."""
    now, tz = loa.now(), loa.settings.timezone
    with loa.transaction() as session:
        communes = (
            areas.communes(session)
            if codes is None
            else [areas.commune_by_code(session, code) for code in codes]
        )
        cancelled = quiet.set_quiet_hours(session, actor, communes, start, end, now, tz)
        until = now + timedelta(days=loa.settings.plan_days)
        ids = {c.id for c in communes}
        moved = planning.pack(session, ids, now, tz, until) if cancelled else []
    changed(loa, [*cancelled, *moved])
    return len(communes), len(cancelled)


def resume_interrupted(loa: Loa) -> list[int]:
    """With LOA_RESUME_INTERRUPTED on, the rest of each broadcast an emergency cut plays
    as a new broadcast after the emergency (the scheduler, every few seconds)."""
    if not loa.settings.resume_interrupted:
        return []
    now = loa.now()
    with loa.transaction() as session:
        rests = resume.to_resume(session, now)
    made = []
    for rest in rests:
        try:
            with loa.transaction() as session:
                audio = resume.rest_audio(session, rest, loa.settings.audio_dir, now)
                broadcast = resume.resume(session, rest, audio, now)
                if broadcast is not None:
                    made.append(broadcast.id)
        except (OSError, ValueError) as exc:  # its audio is gone or cannot be cut
            log.warning("cannot resume broadcast %s: %s", rest.broadcast_id, exc)
    changed(loa, made)
    return made


def edit_placement(
    loa: Loa,
    actor: Actor,
    placement_id: int,
    targets: planning.Targets,
    rule: planning.Rule,
    priority: Priority | None = None,
) -> Placed:
    """Change a placement's targets, rule or priority: its future broadcasts follow (those
    no longer asked for are cancelled, new ones made, queues re-packed); history stays."""
    now, tz = loa.now(), loa.settings.timezone
    until = now + timedelta(days=loa.settings.plan_days)
    with loa.transaction() as session:
        cancelled, touched = planning.edit_placement(
            session, actor, placement_id, targets, rule, priority, now, until, tz
        )
        made = planning.materialise(session, now, until, tz, [placement_id])
        moved = planning.pack(session, touched - made.communes, now, tz, until)
    changed(loa, [*cancelled, *made.created, *made.moved, *moved])
    return Placed(placement_id, len(made.created), made.overflow, None, made.quiet)


def extend_plan(loa: Loa) -> planning.Materialised:
    """Materialise every active placement up to the horizon (the scheduler, daily)."""
    now = loa.now()
    with loa.transaction() as session:
        until = now + timedelta(days=loa.settings.plan_days)
        made = planning.materialise(session, now, until, loa.settings.timezone)
    changed(loa, made.created + made.moved, made.communes)
    return made


def cancel_broadcast(loa: Loa, actor: Actor, broadcast_id: int) -> None:
    now = loa.now()
    with loa.transaction() as session:
        broadcast = bc.get_broadcast(session, broadcast_id)
        planning.cancel_broadcast(session, actor, broadcast, now)
        commune_id = broadcast.commune_id
        until = now + timedelta(days=loa.settings.plan_days)
        moved = planning.pack(session, [commune_id], now, loa.settings.timezone, until)
    changed(loa, [broadcast_id, *moved])


def cancel_placement(loa: Loa, actor: Actor, placement_id: int) -> int:
    now = loa.now()
    with loa.transaction() as session:
        cancelled = planning.cancel_placement(session, actor, placement_id, now)
        communes = set(
            session.scalars(select(Broadcast.commune_id).where(Broadcast.id.in_(cancelled)))
        )
        until = now + timedelta(days=loa.settings.plan_days)
        moved = planning.pack(session, communes, now, loa.settings.timezone, until)
    changed(loa, cancelled + list(moved))
    return len(cancelled)


def confirm_broadcast(
    loa: Loa,
    actor: Actor,
    broadcast_id: int,
    aired: bool,
    reason: str | None,
    at: datetime | None,
) -> Broadcast:
    with loa.transaction() as session:
        broadcast = bc.get_broadcast(session, broadcast_id)
        bc.confirm(session, actor, broadcast, aired=aired, reason=reason, at=at, now=loa.now())
        return broadcast


def record_reports(loa: Loa, endpoint_id: int, reports: Sequence[bc.PlayReport]) -> int:
    """Apply an endpoint's reports all together (or none); returns how many changed a status."""
    changed = loa.reports.submit(endpoint_id, reports)  # with every other waiting batch
    loa.heartbeats.beat(endpoint_id, health.Beat(loa.now()))  # no facts: keeps the poll's
    return changed


def record_play_event(loa: Loa, endpoint_id: int, event: PlayEvent) -> None:
    """A playout's event (virtual speakers) recorded as that endpoint's report."""
    report = bc.PlayReport(int(event.key), event.kind, event.at, event.detail)
    record_reports(loa, endpoint_id, [report])


def create_endpoint(
    loa: Loa, actor: Actor, commune_code: str, name: str, kind: str, address: str | None = None
) -> tuple[Endpoint, str]:
    """A new endpoint and its bearer token (shown once). It replaces a virtual speaker."""
    actor.require(*MANAGERS)
    if kind not in ENDPOINT_KINDS:
        raise InvalidInput(
            f"unknown endpoint kind {kind!r}; use one of {', '.join(ENDPOINT_KINDS)}",
            "invalid_kind",
        )
    name = name.strip()
    if not name:
        raise InvalidInput("an endpoint needs a name", "invalid_name")
    token, hashed = new_token()
    with loa.transaction() as session:
        commune = areas.commune_by_code(session, commune_code)
        clash = session.scalar(
            select(Endpoint).where(Endpoint.commune_id == commune.id, Endpoint.name == name)
        )
        if clash is not None:
            raise InvalidInput(
                f"{commune.name} already has an endpoint named {name!r}", "duplicate"
            )
        endpoint = Endpoint(
            commune=commune,
            name=name,
            kind=kind,
            address=(address or "").strip() or None,
            token_hash=hashed,
            active=True,
            created_at=loa.now(),
        )
        session.add(endpoint)
        session.flush()
        _ = endpoint.commune.code
        audit.record(
            session, actor, "create", endpoint, loa.now(), f"{kind} {name} in {commune.name}"
        )
        # The new device also takes the commune's broadcasts already planned, and
        # replaces its virtual speaker there.
        for b in bc.open_broadcasts(session, commune.id):
            session.add(Delivery(broadcast=b, endpoint=endpoint))
            for d in b.deliveries:
                if d.endpoint.kind == "virtual":
                    move_delivery(session, d, Status.CANCELLED, loa.now(), actor.name,
                                  f"replaced by {name}")  # fmt: skip
        for virtual in session.scalars(
            select(Endpoint).where(Endpoint.commune_id == commune.id, Endpoint.kind == "virtual")
        ):
            virtual.active = False
    return endpoint, token


def public_address(address: str | None) -> str | None:
    """An endpoint's address as shown to people: without a password (an Icecast source's)."""
    parts = urlsplit(address or "")
    if parts.password is None:
        return address
    host = parts.hostname or ""
    netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


VIRTUAL_LOCK = 7_203_404  # PostgreSQL advisory lock id: one virtual speaker sync at a time


def sync_virtual_speakers(loa: Loa, enabled: bool) -> int:
    """With `enabled`, each commune without a real endpoint gets an active virtual speaker
    (a commune that got a real one loses it). Without, nothing changes: a process that does
    not run virtual speakers leaves them to the one that does. Returns the number active."""
    if not enabled:
        return 0
    active = 0
    with loa.transaction() as session:
        # Schedulers started together (`loa scheduler --virtual-speakers` twice) take turns.
        one_at_a_time(session, VIRTUAL_LOCK, Endpoint.__table__)  # type: ignore[arg-type]
        real = set(
            session.scalars(
                select(Endpoint.commune_id).where(
                    Endpoint.kind != "virtual", Endpoint.active.is_(True)
                )
            )
        )
        virtual = {
            e.commune_id: e
            for e in session.scalars(select(Endpoint).where(Endpoint.kind == "virtual"))
        }
        for commune in areas.communes(session):
            wanted = commune.id not in real
            endpoint = virtual.get(commune.id)
            if endpoint is None and wanted:
                endpoint = Endpoint(
                    commune=commune,
                    name="Loa ảo",
                    kind="virtual",
                    active=True,
                    created_at=loa.now(),
                )
                session.add(endpoint)
            elif endpoint is not None:
                endpoint.active = wanted
            active += wanted
    return active


def sweep_health(loa: Loa) -> list[dict[str, Any]]:
    """Write the heartbeats held in memory, then move endpoints to up / late / down.

    This process vouches for the endpoints it drives itself (virtual, local, icecast,
    manual): they are up while it runs."""
    now = loa.now()
    beats = loa.heartbeats.take()
    vouched = [kind for kind in loa.drivers if kind not in health.DEVICE_KINDS]
    late = timedelta(seconds=loa.settings.endpoint_late_seconds)
    down = timedelta(seconds=loa.settings.endpoint_down_seconds)
    with loa.transaction() as session:
        if vouched:
            session.execute(
                update(Endpoint)
                .where(Endpoint.kind.in_(vouched), Endpoint.active.is_(True))
                .values(last_seen_at=now)
            )
        health.write_beats(session, beats)
        events = health.move_states(session, now, late, down)
    for event in events[:20]:
        log.info("endpoint %(endpoint_id)s: %(from_state)s -> %(to_state)s", event)
    if len(events) > 20:
        log.info("... and %d more endpoint state changes", len(events) - 20)
    return events


def retire_endpoint(loa: Loa, actor: Actor, endpoint_id: int) -> tuple[Endpoint, int]:
    """Remove a device: it is deactivated (kept for the log's history), its token stops
    working and its deliveries not started yet are cancelled; returns the endpoint and
    how many deliveries were cancelled."""
    from scheduler.errors import NotFound  # kept local: only this function needs it

    actor.require(*MANAGERS)
    now = loa.now()
    with loa.transaction() as session:
        endpoint = session.get(Endpoint, endpoint_id)
        if endpoint is None or not endpoint.active:
            raise NotFound(f"no active endpoint has the id {endpoint_id}", "unknown_endpoint")
        endpoint.active = False
        endpoint.token_hash = None
        open_ = session.scalars(
            select(Delivery).where(
                Delivery.endpoint_id == endpoint.id,
                Delivery.status.in_([Status.SCHEDULED.value, Status.DELIVERED.value]),
            )
        ).all()
        cancelled = [
            d.broadcast_id
            for d in open_
            if move_delivery(session, d, Status.CANCELLED, now, actor.name, "endpoint removed")
        ]
        _ = endpoint.commune.code
        audit.record(session, actor, "retire", endpoint, now, f"{len(cancelled)} cancelled")
    changed(loa, cancelled)
    return endpoint, len(cancelled)
