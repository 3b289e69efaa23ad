"""Background jobs: long work a user asked for (a report export, the speech of a long
bulletin) run off the request, with progress the panel shows.

A job is a row: queued, then claimed by one process with a conditional UPDATE (running),
then done (with its file under the data dir, in exports/) or failed (with an error code
and text). Each progress report moves `updated_at`; a running job with none for STALE
is failed as stopped, since the process running it died."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import asdict
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from audio.render import RenderError, atomic_write
from audio.tts import TtsError
from scheduler import bulletins, reports, service
from scheduler.auth import Actor
from scheduler.context import Loa
from scheduler.errors import LoaError, NotFound
from scheduler.models import Job, Role

log = logging.getLogger(__name__)

QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"
EXPORT, RENDER = "export", "render"
EXPORTS = "exports"  # the folder of exported files, under the data dir
STALE = timedelta(minutes=10)  # a running job silent this long: its process has died
STALE_ERROR = "job_stale"
STALE_TEXT = "no progress for {minutes} minutes: the process running it has stopped"
KEEP_FILES = timedelta(days=7)  # an exported file is deleted this long after it was made

Progress = Callable[[int, int], None]


class JobLost(LoaError):
    """The job is no longer this process's to run (failed as stale, or taken back)."""

    code = "job_lost"


class Stopping(Exception):
    """The process is shutting down: the job goes back to the queue."""


# --- rows ---------------------------------------------------------------------------------


def create(session: Session, actor: Actor, kind: str, params: dict[str, Any], now: datetime) -> Job:
    """Queue a job of `kind` for `actor`; the actor's role and communes go with the
    parameters, so the job sees what its owner saw."""
    who = {
        "role": actor.role.value,
        "commune_id": actor.commune_id,
        "other_communes": sorted(actor.other_communes),
    }
    job = Job(
        kind=kind, requested_by=actor.name, params=json.dumps({**params, "actor": who}),
        status=QUEUED, done=0, created_at=now, updated_at=now,
    )  # fmt: skip
    session.add(job)
    session.flush()
    return job


def owner(job: Job) -> Actor:
    """The actor who asked for a job, as they were when they asked."""
    who = json.loads(job.params)["actor"]
    return Actor(
        job.requested_by, Role(who["role"]), who["commune_id"], frozenset(who["other_communes"])
    )


def params(job: Job) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(job.params)
    return found


def _move(session: Session, job_id: int, where: tuple[str, ...], **values: Any) -> bool:
    """Change a job only if its status is one of `where`; False when it was not."""
    moved = session.execute(
        update(Job).where(Job.id == job_id, Job.status.in_(where)).values(**values)
    )
    return bool(moved.rowcount == 1)  # type: ignore[attr-defined]


def claim(session: Session, job_id: int, now: datetime) -> bool:
    """Take a queued job to run it; False when another process took it first."""
    return _move(session, job_id, (QUEUED,), status=RUNNING, started_at=now, updated_at=now)


def claim_next(session: Session, now: datetime) -> int | None:
    """Take the oldest queued job, if any; its id."""
    queued = select(Job.id).where(Job.status == QUEUED).order_by(Job.id).limit(20)
    for job_id in session.scalars(queued).all():
        if claim(session, job_id, now):
            return job_id
    return None


def report_progress(session: Session, job_id: int, done: int, total: int, now: datetime) -> None:
    """`done` of `total` rows (or steps); JobLost when the job is no longer running."""
    if not _move(session, job_id, (RUNNING,), done=done, total=total, updated_at=now):
        raise JobLost(f"job {job_id} is no longer running")


def finish(session: Session, job_id: int, now: datetime, result_path: str | None) -> bool:
    return _move(
        session, job_id, (RUNNING,), status=DONE, result_path=result_path, updated_at=now,
        finished_at=now,
    )  # fmt: skip


def fail(session: Session, job_id: int, now: datetime, code: str, error: str) -> bool:
    return _move(
        session, job_id, (QUEUED, RUNNING), status=FAILED, error_code=code, error=error,
        updated_at=now, finished_at=now,
    )  # fmt: skip


def requeue(session: Session, job_id: int, now: datetime) -> bool:
    """Give a running job back to the queue (its process is stopping)."""
    return _move(session, job_id, (RUNNING,), status=QUEUED, done=0, updated_at=now)


def expire_stale(session: Session, now: datetime, after: timedelta = STALE) -> int:
    """Fail the running jobs with no progress for `after`: their process died."""
    error = STALE_TEXT.format(minutes=int(after.total_seconds() // 60))
    silent = update(Job).where(Job.status == RUNNING, Job.updated_at < now - after)
    moved = session.execute(
        silent.values(status=FAILED, error_code=STALE_ERROR, error=error, finished_at=now)
    )
    return int(moved.rowcount)  # type: ignore[attr-defined]


def prune_files(
    session: Session, data_dir: Path, now: datetime, keep: timedelta = KEEP_FILES
) -> int:
    """Delete the files of jobs done more than `keep` ago (the row stays, without its
    file); how many."""
    old = session.execute(
        select(Job.id, Job.result_path).where(
            Job.status == DONE, Job.result_path.is_not(None), Job.finished_at < now - keep
        )
    ).all()
    for _, path in old:
        (data_dir / str(path)).unlink(missing_ok=True)
    ids = [job_id for job_id, _ in old]
    if ids:
        session.execute(update(Job).where(Job.id.in_(ids)).values(result_path=None))
    return len(ids)


def get(session: Session, actor: Actor, job_id: int) -> Job:
    """A job its owner or an administrator asks for; NotFound for anyone else."""
    job = session.get(Job, job_id)
    if job is None or (job.requested_by != actor.name and actor.role != Role.ADMIN):
        raise NotFound(f"no job {job_id}")
    return job


# --- running ------------------------------------------------------------------------------


class Reporter:
    """A progress callback writing the job's row about every 1% (and at the end), and
    stopping the work when the process is shutting down."""

    def __init__(self, loa: Loa, job_id: int, stop: threading.Event | None = None) -> None:
        self.loa, self.job_id, self.stop = loa, job_id, stop
        self.written = -1

    def __call__(self, done: int, total: int) -> None:
        if self.stop is not None and self.stop.is_set():
            raise Stopping
        small = done < total and done - self.written < max(1, total // 100)
        if self.written >= 0 and (done == self.written or small):
            return
        self.written = done
        with self.loa.transaction() as session:
            report_progress(session, self.job_id, done, total, self.loa.now())


def export(loa: Loa, job: Job, progress: Progress) -> str:
    """Export a report as asked (format, period, commune, topic, language) into the
    exports folder; the path written, under the data dir. Progress: rows written (CSV,
    XLSX), stages (DOCX)."""
    p, actor = params(job), owner(job)
    fmt, tz = p["format"], loa.settings.timezone
    period = reports.Period(date.fromisoformat(p["from"]), date.fromisoformat(p["to"]))
    f = reports.period_filter(tz, period, p.get("commune"), p.get("topic"))
    with loa.transaction() as session:
        report = reports.build(session, actor, f, tz, loa.now(), lang=p["lang"], export=fmt)
    rows = len(report.rows) if fmt != "docx" else None  # the DOCX reports its stages
    if rows is not None:
        progress(0, rows)
    data = reports.export_bytes(
        report, fmt, date.fromisoformat(p["issued"]), loa.settings.report, progress=progress
    )
    if rows is not None:
        progress(rows, rows)
    path = f"{EXPORTS}/{job.id}-{reports.filename(report, fmt)}"
    (loa.settings.data_dir / EXPORTS).mkdir(parents=True, exist_ok=True)
    atomic_write(loa.settings.data_dir / path, data)
    return path


def render(loa: Loa, job: Job, progress: Progress) -> None:
    """Render a bulletin's speech in the voice asked; progress in steps (voice, speech)."""
    p = params(job)
    progress(0, 1)
    service.render_bulletin(loa, owner(job), p["bulletin_id"], bulletins.Voice(**p["voice"]))
    progress(1, 1)


def render_params(bulletin_id: int, voice: bulletins.Voice) -> dict[str, Any]:
    return {"bulletin_id": bulletin_id, "voice": asdict(voice)}


def run(loa: Loa, job_id: int, stop: threading.Event | None = None) -> None:
    """Run a job this process has claimed, to done or failed (or back to the queue when
    `stop` is set)."""
    with loa.transaction() as session:
        job = session.get(Job, job_id)
        if job is None:
            return
        session.expunge(job)
    progress = Reporter(loa, job_id, stop)
    code = error = None
    result = None
    try:
        if job.kind == EXPORT:
            result = export(loa, job, progress)
        elif job.kind == RENDER:
            render(loa, job, progress)
        else:
            code, error = "job_unknown", f"no job of kind {job.kind!r}"
    except Stopping:
        with loa.transaction() as session:
            requeue(session, job_id, loa.now())
        return
    except LoaError as exc:
        code, error = exc.code, exc.detail
    except RenderError as exc:
        code, error = "invalid_speech_request", str(exc)
    except TtsError as exc:
        code, error = "speech_unavailable", str(exc)
    except Exception as exc:  # anything else: the job failed, the process goes on
        log.exception("job %s (%s) failed", job_id, job.kind)
        code, error = "job_failed", f"{type(exc).__name__}: {exc}"
    with loa.transaction() as session:
        if code is None:
            finish(session, job_id, loa.now(), result)
        else:
            fail(session, job_id, loa.now(), code, error or "")
