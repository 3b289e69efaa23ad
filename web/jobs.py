"""Background jobs in the panel: the pool that runs them in the web process, starting one
from a page, and the job's page (progress, refreshed every 2 s; then its file)."""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    redirect,
    render_template,
    send_file,
    url_for,
)
from werkzeug.wrappers import Response

from scheduler import jobs, reports
from scheduler.context import Loa
from scheduler.errors import NotFound
from web.auth import current_actor, login_required
from web.common import loa, local
from web.i18n import error_text, translate

bp = Blueprint("jobs", __name__, url_prefix="/jobs")
log = logging.getLogger(__name__)

WORKERS = 2
REFRESH_SECONDS = 2


class JobPool:
    """A few threads of the web process running queued jobs. Its threads start with the
    first job; `close` stops them (a job cut short goes back to the queue)."""

    def __init__(self, loa: Loa, workers: int = WORKERS) -> None:
        self.loa = loa
        self.stop = threading.Event()
        self.executor = ThreadPoolExecutor(workers, thread_name_prefix="loa-job")

    def wake(self) -> None:
        """Run what is queued (the job just made, and any a stopped process left)."""
        if not self.stop.is_set():
            self.executor.submit(self.drain)

    def drain(self) -> None:
        try:
            while not self.stop.is_set():
                with self.loa.transaction() as session:
                    job_id = jobs.claim_next(session, self.loa.now())
                if job_id is None:
                    return
                jobs.run(self.loa, job_id, self.stop)
        except Exception:  # the database went away: the next job's wake tries again
            log.exception("the job pool could not run the queued jobs")

    def close(self) -> None:
        self.stop.set()
        self.executor.shutdown(wait=True, cancel_futures=True)


def pool() -> JobPool:
    found: JobPool = current_app.extensions["loa_jobs"]
    return found


def init_app(app: Flask, ctx: Loa) -> None:
    app.extensions["loa_jobs"] = JobPool(ctx)


def start(kind: str, params: dict[str, Any]) -> Response:
    """Queue a job for the user, wake the pool, and go to the job's page."""
    ctx = loa()
    with ctx.transaction() as session:
        job_id = jobs.create(session, current_actor(), kind, params, ctx.now()).id
        jobs.prune_files(session, ctx.settings.data_dir, ctx.now())
    pool().wake()
    return redirect(url_for("jobs.detail", job_id=job_id))


def _job(job_id: int) -> dict[str, Any]:
    ctx = loa()
    with ctx.transaction() as session:
        jobs.expire_stale(session, ctx.now())
    with ctx.transaction() as session:
        try:
            job = jobs.get(session, current_actor(), job_id)
        except NotFound:
            abort(404)
        p = jobs.params(job)
        return {
            "id": job.id,
            "kind": job.kind,
            "format": p.get("format"),
            "bulletin_id": p.get("bulletin_id"),
            "report": {k: p[k] for k in ("from", "to", "commune", "topic") if p.get(k)},
            "status": job.status,
            "finished": job.status in (jobs.DONE, jobs.FAILED),
            "done": job.done,
            "total": job.total,
            "result_path": job.result_path,
            "error": error_text(job.error_code or "job_failed", job.error or "")
            if job.status == jobs.FAILED
            else "",
            "detail": job.error or "",
            "created": local(job.created_at, "%H:%M:%S %d/%m/%Y"),
            "finished_at": local(job.finished_at, "%H:%M:%S %d/%m/%Y"),
        }


@bp.get("/<int:job_id>")
@login_required
def detail(job_id: int) -> Response:
    job = _job(job_id)
    if job["status"] == jobs.QUEUED:  # e.g. left queued by a process that stopped
        pool().wake()
    title = translate("Export {fmt}").format(fmt=(job["format"] or "").upper())
    if job["kind"] == jobs.RENDER:
        title = translate("Speech of a long bulletin")
    keep_days = jobs.KEEP_FILES.days
    page = render_template(
        "job.html", job=job, title=title, refresh=REFRESH_SECONDS, keep_days=keep_days
    )
    response = Response(page, mimetype="text/html")
    if not job["finished"]:
        response.headers["Refresh"] = str(REFRESH_SECONDS)  # the page reloads itself
    return response


@bp.get("/<int:job_id>/download")
@login_required
def download(job_id: int) -> Response:
    job = _job(job_id)
    if job["status"] != jobs.DONE or not job["result_path"]:
        abort(404)
    path: Path = loa().settings.data_dir / job["result_path"]
    if not path.is_file():
        abort(404)
    name = path.name.split("-", 1)[1]  # "12-nhat-ky-phat-….xlsx" -> "nhat-ky-phat-….xlsx"
    fmt = path.suffix.lstrip(".")
    return send_file(path, mimetype=reports.MIME.get(fmt), as_attachment=True, download_name=name)
