"""Today's broadcasts per commune; operators confirm what their commune aired."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, time, timedelta
from typing import Any
from urllib.parse import quote

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from scheduler import asrun, watch
from scheduler import broadcasts as bc
from scheduler.auth import Actor
from scheduler.errors import Conflict, InvalidInput, LoaError
from scheduler.models import Area, Broadcast, Role, Status
from scheduler.service import confirm_broadcast
from web.auth import current_actor, login_required
from web.common import actor_label, broadcast_row, flash_error, loa, local, parse_local
from web.i18n import message, translate

bp = Blueprint("today", __name__)

READINESS_AHEAD = timedelta(hours=36)  # tomorrow morning's slot, seen from this afternoon
DETAIL_COMMUNES = 40  # up to a district's communes, each broadcast is listed; past it, counts
WAITING_SHOWN = 100  # the rest of the waiting list is in the as-run log
ALERTS_SINCE = timedelta(hours=24)


@bp.get("/")
@login_required
def index() -> str:
    ctx = loa()
    settings = ctx.settings
    tz = settings.timezone
    now = ctx.now()
    day = now.astimezone(tz).date()
    start = datetime.combine(day, time(0), tz)
    f = asrun.LogFilter(start=start, end=start + timedelta(days=1))
    actor = current_actor()
    confirm_after = timedelta(minutes=settings.confirm_after_minutes)
    escalate_after = timedelta(minutes=settings.escalate_after_minutes)
    groups: dict[str, dict[str, Any]] = {}
    totals: Counter[str] = Counter()
    with ctx.transaction() as session:
        asked = watch.waiting_for_operator(
            session, actor, now, confirm_after, escalate_after, WAITING_SHOWN
        )
        # Fewer than a list's worth (an operator, a district): all of them are here.
        everyone = len(asked) < WAITING_SHOWN
        if everyone:
            waiting_total, escalated = len(asked), sum(w.escalated for w in asked)
        else:
            waiting_total, escalated = watch.count_waiting(
                session, actor, now, confirm_after, escalate_after
            )
        summary = _per_commune(session, actor, f)
        for counts in summary:  # every commune's, added up
            totals.update(dict(counts["counts"]))
        if len(summary) <= DETAIL_COMMUNES:  # up to a district: every broadcast is listed
            awaiting = (
                {w.broadcast.id for w in asked}
                if everyone
                else watch.waiting_ids(session, actor, now, confirm_after)
            )
            for b in asrun.query(session, actor, f, deliveries=False):
                group = groups.setdefault(b.commune.code, {"name": b.commune.name, "rows": []})
                group["rows"].append(broadcast_row(b, now, b.id in awaiting))
            summary = []
        waiting = [_waiting_row(w) for w in asked]
        mine = actor.communes if actor.role == Role.OPERATOR else None
        ready = [
            {
                "at": local(r.at, "%H:%M %d/%m"),
                "ready": len(r.ready),
                "total": len(r.ready) + len(r.not_ready),
                "not_ready": ", ".join(a.name for a in r.not_ready[:8])
                + (" …" if len(r.not_ready) > 8 else ""),
            }
            # An operator sees their own commune's readiness only.
            for r in watch.readiness(session, now, READINESS_AHEAD, mine)[:6]
        ]
        alerts = [
            {
                "at": local(a.at, "%H:%M %d/%m"),
                "endpoint": a.endpoint.name,
                "commune": a.endpoint.commune.name,
                "state": a.to_state,
            }
            for a in watch.endpoint_alerts(session, actor, now, ALERTS_SINCE)
        ]
    return render_template(
        "today.html",
        waiting=waiting,
        listed={r["id"] for r in waiting},
        waiting_total=waiting_total,
        summary=summary,
        escalated=escalated,
        ready=ready,
        alerts=alerts,
        groups=groups,
        totals=sorted(totals.items(), key=lambda kv: list(Status).index(Status(kv[0]))),
        # Each status said once, not once a cell (a province's day is 559 rows of them).
        status_labels={s.value: translate(s.value) for s in Status},
        day=day.strftime("%d/%m/%Y"),
        may_confirm=actor.role in (Role.ADMIN, Role.CENTRE, Role.OPERATOR),
    )


def _waiting_row(w: watch.Waiting) -> dict[str, Any]:
    """A broadcast of the waiting list: only what its table shows."""
    b = w.broadcast
    return {
        "id": b.id,
        "time": local(b.scheduled_at, "%H:%M"),
        "day": local(b.scheduled_at, "%d/%m"),
        "title": b.title,
        "priority": b.priority,
        "status": b.status,
        "commune": b.commune,
        "escalated": w.escalated,
    }


def _per_commune(session: Session, actor: Actor, f: asrun.LogFilter) -> list[dict[str, Any]]:
    """Today's broadcasts counted per commune and status, in one query."""
    q = (
        select(Area.code, Area.name, Broadcast.status, func.count())
        .join(Area, Broadcast.commune_id == Area.id)
        .group_by(Area.code, Area.name, Broadcast.status)
        .order_by(Area.name)
    )
    log = url_for("log.index")
    rows: dict[str, dict[str, Any]] = {}
    for code, name, status, n in session.execute(asrun.restrict(q, actor, f)):
        row = rows.get(code)
        if row is None:
            url = f"{log}?commune={quote(code)}"  # its log: one url_for, not 559
            row = rows[code] = {"name": name, "url": url, "counts": []}
        row["counts"].append((status, n))
    return list(rows.values())


@bp.post("/broadcasts/<int:broadcast_id>/confirm")
@login_required
def confirm(broadcast_id: int) -> Response:
    form = request.form
    try:
        confirm_broadcast(
            loa(),
            current_actor(),
            broadcast_id,
            aired=form.get("aired") == "yes",
            reason=form.get("reason"),
            at=parse_local(form.get("at", "")),
        )
        flash(translate("Confirmation saved."), "ok")
    except (InvalidInput, Conflict) as exc:  # which broadcast, when the user may see it
        flash_error(exc, _which(broadcast_id))
    except LoaError as exc:
        flash_error(exc)
    return redirect(request.referrer or url_for("today.index"))


def _which(broadcast_id: int) -> str:
    """'06:00 27/11, Xã Thọ Sơn': a broadcast as the dashboard lists it ('' if the user
    may not see it, or it does not exist)."""
    try:
        with loa().transaction() as session:
            b = bc.get_broadcast(session, broadcast_id)
            current_actor().require_commune(b.commune_id)
            return f"{local(b.scheduled_at, '%H:%M %d/%m')}, {b.commune.name}"
    except LoaError:
        return ""


@bp.get("/broadcasts/<int:broadcast_id>")
@login_required
def detail(broadcast_id: int) -> str:
    ctx = loa()
    fmt = "%d/%m/%Y %H:%M:%S"
    with ctx.transaction() as session:
        try:
            b = bc.get_broadcast(session, broadcast_id)
            current_actor().require_commune(b.commune_id)
        except LoaError:
            abort(404)
        summary = broadcast_row(b, ctx.now())
        summary.update(commune=b.commune.name, day=local(b.scheduled_at, "%d/%m/%Y"))
        deliveries = [
            {
                "endpoint": d.endpoint.name,
                "kind": d.endpoint.kind,
                "status": d.status,
                "started": local(d.started_at),
                "finished": local(d.finished_at),
                "error": message(d.error),
                "attempts": [
                    {
                        "at": local(a.at, fmt),
                        # A manual endpoint has no device: its "start" asks the operator.
                        "action": translate(
                            "attempt:ask" if d.endpoint.kind == "manual" else f"attempt:{a.action}"
                        ),
                        "result": message(a.error) if a.error else translate("succeeded"),
                    }
                    for a in d.attempts
                ],
            }
            for d in b.deliveries
        ]
        history = _history(b, fmt)
    return render_template("broadcast.html", b=summary, deliveries=deliveries, history=history)


def _history(b: Broadcast, fmt: str) -> list[dict[str, str]]:
    """The broadcast's status changes, each once: a delivery's change moves the broadcast
    with it (same time, same change, same actor), so that second row is left out, and a
    delivery's row is labelled with its endpoint."""
    endpoints = {d.id: d.endpoint.name for d in b.deliveries}
    seen = set()
    rows = []
    for e in b.events:
        change = (e.at, e.from_status, e.to_status, e.actor)
        if e.delivery_id is None and change in seen:
            continue
        seen.add(change)
        rows.append(
            {
                "at": local(e.at, fmt),
                "from": e.from_status or "",
                "to": e.to_status,
                "endpoint": endpoints.get(e.delivery_id, "") if e.delivery_id else "",
                "actor": actor_label(e.actor),
                "reason": message(e.reason),
            }
        )
    return rows
