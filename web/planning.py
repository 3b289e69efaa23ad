"""The district's week in the panel: the calendar, placing a bulletin, cancelling, the slots
and quiet hours."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from datetime import date, datetime, time, timedelta
from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Response

from audio.render import RenderError
from audio.tts import TtsError
from scheduler import areas, calendar, planning, service
from scheduler.auth import MANAGERS, Actor
from scheduler.bulletins import parse_priority
from scheduler.errors import Forbidden, InvalidInput, LoaError
from scheduler.models import Priority, Role, Status
from scheduler.planning import RANK
from web.auth import current_actor, login_required
from web.common import actor_label, flash_error, loa, local, parse_local
from web.i18n import error_text, translate

bp = Blueprint("plan", __name__, url_prefix="/plan")

DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
DAY_SHORT = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
WHEN = "%H:%M %d/%m/%Y"


def may_manage(actor: Actor) -> bool:
    return actor.role in MANAGERS


def _int(value: str | None, code: str) -> int:
    try:
        return int(value or "")
    except ValueError:
        raise InvalidInput(f"{value!r} is not a whole number", code) from None


def _date(value: str | None) -> date:
    try:
        return date.fromisoformat(value or "")
    except ValueError:
        raise InvalidInput(f"{value!r} is not a date (YYYY-MM-DD)", "invalid_date") from None


# --- words for a placement ----------------------------------------------------------------


def rule_words(p: calendar.PlacementInfo) -> str:
    if p.rule == "once":
        return translate("Once at {at}").format(at=local(p.at, WHEN))
    if p.rule == "repeat":
        every = p.every_seconds or 0
        step = f"{every // 60} {translate('min')}" if every % 60 == 0 else f"{every} s"
        return translate("{n} times, every {step}, from {at}").format(
            n=p.repeat, step=step, at=local(p.at, WHEN)
        )
    assert p.date_from is not None and p.date_to is not None
    words = translate("In {slots}, {first} to {last}").format(
        slots=", ".join(p.slots),
        first=p.date_from.strftime("%d/%m"),
        last=p.date_to.strftime("%d/%m/%Y"),
    )
    if p.weekdays and p.weekdays != planning.ALL_DAYS:
        words += " (" + ", ".join(translate(DAY_SHORT[int(d) - 1]) for d in p.weekdays) + ")"
    return words


def target_words(p: calendar.PlacementInfo) -> str:
    if p.target == "all":
        return translate("All communes")
    if p.target == "group":
        return translate("Group: {name}").format(name=p.group)
    return _some(p.communes, 4)


def _some(names: Sequence[str], shown: int = 3) -> str:
    """'A, B, C and 4 more communes'."""
    more = len(names) - shown
    rest = " " + translate("and {n} more communes").format(n=more) if more > 0 else ""
    return ", ".join(names[:shown]) + rest


def placement_view(p: calendar.PlacementInfo) -> dict[str, Any]:
    """A placement as the panel's tables show it."""
    counts = Counter(p.counts)
    waiting = sum(counts.pop(s, 0) for s in planning.OPEN)
    return {
        "id": p.id,
        "bulletin_id": p.bulletin_id,
        "title": p.title,
        "priority": p.priority,
        "rule": rule_words(p),
        "targets": target_words(p),
        "waiting": waiting,
        "played": counts.pop(Status.PLAYED.value, 0),
        "cancelled": counts.pop(Status.CANCELLED.value, 0),
        "other": sorted(counts.items()),
        "created_by": actor_label(p.created_by),
        "created": local(p.created_at, "%d/%m/%Y %H:%M"),
        "cancelled_at": local(p.cancelled_at, "%d/%m/%Y %H:%M"),
    }


def hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def actor_commune(actor: Actor) -> int | None:
    """An operator sees their own commune only."""
    return actor.commune_id if actor.role == Role.OPERATOR else None


# --- the week -----------------------------------------------------------------------------


def _item_entry(item: calendar.Item, clash: str | None) -> dict[str, Any]:
    return {
        "id": item.id,
        "time": local(item.scheduled_at, "%H:%M"),  # local; the second is in `at`
        "at": item.scheduled_at.astimezone(loa().settings.timezone).isoformat(),
        "title": item.title,
        "priority": item.priority,
        "status": item.status,
        "seconds": round(item.seconds),
        "position": item.position,
        "overflow": item.overflow and item.status != Status.CANCELLED.value,
        "planned": local(item.planned_at, "%H:%M %d/%m"),
        "clash": clash,
        "open": item.open,
    }


def _district_entries(found: Sequence[calendar.Item], clash: Mapping[int, str]) -> list[Any]:
    """A cell of the whole district: one line per bulletin and time, counting communes,
    higher priorities first as in each commune's queue."""
    groups: dict[tuple[int, datetime], dict[str, Any]] = {}
    for i in found:
        g = groups.setdefault(
            (i.bulletin_id, i.slot_at or i.scheduled_at),
            {"title": i.title, "priority": i.priority, "time": local(i.scheduled_at, "%H:%M"),
             "communes": set(), "statuses": Counter(), "overflow": set(), "clash": set(),
             "cancelled_in": set()},
        )  # fmt: skip
        g["statuses"][i.status] += 1
        if i.status == Status.CANCELLED.value:
            g["cancelled_in"].add((i.commune_id, i.commune))
        else:
            g["communes"].add(i.commune_id)
            if i.overflow:
                g["overflow"].add(i.commune_id)
        if i.id in clash:
            g["clash"].add(i.commune_id)
    ordered = sorted(groups.items(), key=lambda kv: (kv[0][1], -RANK[kv[1]["priority"]]))
    return [
        {**g, "communes": len(g["communes"]), "overflow": len(g["overflow"]),
         "clash": len(g["clash"]), "statuses": sorted(g["statuses"].items()),
         "cancelled_in": _some(sorted(name for commune, name in g["cancelled_in"]
                                      if commune not in g["communes"]))}
        for _, g in ordered
    ]  # fmt: skip


def _week_start(value: str | None, today: date) -> date:
    day = today
    if value:
        try:
            day = _date(value)
        except LoaError as exc:
            flash_error(exc)
    return day - timedelta(days=day.weekday())


@bp.get("")
@login_required
def week() -> str:
    ctx = loa()
    tz = ctx.settings.timezone
    actor = current_actor()
    today = ctx.now().astimezone(tz).date()
    monday = _week_start(request.args.get("date"), today)
    days = [monday + timedelta(days=n) for n in range(7)]
    start = datetime.combine(monday, time(), tz)
    with ctx.transaction() as session:
        communes = [(c.id, c.code, c.name) for c in areas.communes(session)]
        commune_id = actor_commune(actor)
        if commune_id is None and (code := request.args.get("commune")):
            commune_id = next((c[0] for c in communes if c[1] == code), None)
            if commune_id is None:
                flash_error(InvalidInput(f"no commune has the code {code!r}", "unknown_commune"))
        found = calendar.items(session, start, start + timedelta(days=7), commune_id)
        slots = calendar.slots(session, {i.slot_id for i in found if i.slot_id is not None})
    commune = next((c for c in communes if c[0] == commune_id), None)
    clash = calendar.clashes(found, {s.id: s.minutes for s in slots})
    used = {i.slot_id for i in found}
    rows = [s for s in slots if s.serves(commune_id) or s.id in used]
    grid = _grid(days, rows, slots, found, clash, commune_id)
    live = [i for i in found if i.status != Status.CANCELLED.value]
    overlapping = sum(len(c["overlaps"]) for d in grid for c in d["cells"]) // 2  # pairs
    for d in grid:
        d["today"] = d["day"] == today
    # Placements become broadcasts LOA_PLAN_DAYS ahead: a later week is not empty for good.
    horizon = (ctx.now() + timedelta(days=ctx.settings.plan_days)).astimezone(tz).date()
    return render_template(
        "plan_week.html",
        planned_until=horizon.strftime("%d/%m/%Y") if days[-1] > horizon else None,
        monday=monday.isoformat(),
        heading=translate("Week {n}").format(n=monday.isocalendar().week)
        + f" · {monday:%d/%m} – {days[-1]:%d/%m/%Y}",
        prev=(monday - timedelta(days=7)).isoformat(),
        next=(monday + timedelta(days=7)).isoformat(),
        this_week=today - timedelta(days=today.weekday()) == monday,
        rows=[
            *({"label": s.name, "span": f"{s.start}–{hhmm(s.finish)}"} for s in rows),
            {"label": translate("Outside slots"), "span": ""},
        ],
        grid=grid,
        commune={"code": commune[1], "name": commune[2]} if commune else None,
        communes=[{"code": c[1], "name": c[2]} for c in communes],
        locked=actor.role == Role.OPERATOR,
        manage=may_manage(actor),
        total=len(live),
        overflow=sum(i.overflow for i in live),
        conflicts=len([i for i in live if i.id in clash]) + overlapping,
    )


def _grid(
    days: Sequence[date],
    rows: Sequence[calendar.SlotInfo],
    slots: Sequence[calendar.SlotInfo],
    found: Sequence[calendar.Item],
    clash: Mapping[int, str],
    commune_id: int | None,
) -> list[dict[str, Any]]:
    """Day by day, a cell per slot row and one for what is outside slots."""
    tz = loa().settings.timezone
    cells: dict[tuple[int | None, date], list[calendar.Item]] = defaultdict(list)
    for i in found:
        cells[(i.slot_id, (i.slot_at or i.scheduled_at).astimezone(tz).date())].append(i)
    grid = []
    for day in days:
        overlaps = calendar.slot_overlaps(slots, day, commune_id)
        day_cells: list[dict[str, Any]] = []
        for slot in [*rows, None]:
            here = cells.get((slot.id if slot else None, day), [])
            day_cells.append(
                {
                    "runs": slot is None or (slot.runs_on(day) and slot.serves(commune_id)),
                    "entries": [_item_entry(i, clash.get(i.id)) for i in here]
                    if commune_id is not None
                    else _district_entries(here, clash),
                    "overlaps": overlaps.get(slot.id, []) if slot else [],
                    "over": any(clash.get(i.id) == "over" for i in here),
                }
            )
        grid.append(
            {
                "day": day,
                "name": translate(DAY_NAMES[day.weekday()]),
                "date": day.strftime("%d/%m"),
                "empty": not any(c["entries"] for c in day_cells),
                "cells": day_cells,
            }
        )
    return grid


def back_to_week(form: Mapping[str, str]) -> Response:
    return redirect(
        url_for("plan.week", date=form.get("date") or None, commune=form.get("commune") or None)
    )


@bp.post("/broadcasts/<int:broadcast_id>/cancel")
@login_required
def cancel_broadcast(broadcast_id: int) -> Response:
    try:
        service.cancel_broadcast(loa(), current_actor(), broadcast_id)
        flash(translate("Broadcast cancelled; the rest of the queue moved up."), "ok")
    except LoaError as exc:
        flash_error(exc)
    return back_to_week(request.form)


# --- placing a bulletin -------------------------------------------------------------------


def read_targets(form: MultiDict[str, str]) -> planning.Targets:
    kind = form.get("target")
    if kind == "all":
        return planning.Targets(all=True)
    if kind == "group":
        return planning.Targets(group=form.get("group", ""))
    return planning.Targets(communes=tuple(form.getlist("communes")))


def read_rule(form: MultiDict[str, str]) -> tuple[planning.Rule, date]:
    """The rule a form asks for, and the first local day it plays on."""
    tz = loa().settings.timezone
    kind = form.get("rule")
    if kind in ("once", "repeat"):
        at = parse_local(form.get(f"{kind}_at", ""))
        if at is None:
            raise InvalidInput("choose the date and time", "invalid_time")
        if kind == "once":
            return planning.Rule(once=at), at.astimezone(tz).date()
        repeat = _int(form.get("repeat"), "invalid_repeat")
        every = _int(form.get("every"), "invalid_repeat") * 60
        return planning.Rule(at=at, repeat=repeat, every_seconds=every), at.astimezone(tz).date()
    if kind == "slots":
        ids = tuple(_int(v, "unknown_slot") for v in form.getlist("slots"))
        if not ids:
            raise InvalidInput("tick at least one slot", "no_slots")
        first, last = _date(form.get("from")), _date(form.get("to"))
        days = tuple(_int(d, "invalid_days") for d in form.getlist("weekdays")) or None
        return planning.Rule(slot_ids=ids, date_from=first, date_to=last, weekdays=days), first
    raise InvalidInput("choose when it plays", "invalid_rule")


def form_page(values: MultiDict[str, str], status: int = 200) -> tuple[str, int]:
    with loa().transaction() as session:
        choices = calendar.approved_bulletins(session)
        groups = calendar.group_names(session)
        slots = calendar.slots(session)
        communes = [{"code": c.code, "name": c.name} for c in areas.communes(session)]
    page = render_template(
        "placement_form.html",
        v=values,
        bulletins=choices,
        groups=groups,
        slots=slots,
        communes=communes,
        priorities=[p.value for p in Priority],
        weekdays=list(enumerate(DAY_SHORT, start=1)),
    )
    return page, status


@bp.route("/new", methods=["GET", "POST"])
@login_required
def new() -> Response | tuple[str, int]:
    ctx = loa()
    actor = current_actor()
    if not may_manage(actor):
        flash_error(Forbidden(f"{actor.name} may not place bulletins"))
        return redirect(url_for("plan.week"))
    if request.method == "GET":
        now = ctx.now().astimezone(ctx.settings.timezone)
        soon = (now + timedelta(minutes=15)).strftime("%Y-%m-%dT%H:%M")
        tomorrow = now.date() + timedelta(days=1)
        defaults = {
            "bulletin": request.args.get("bulletin", ""), "target": "all", "priority": "",
            "rule": "slots", "from": tomorrow.isoformat(),
            "to": (tomorrow + timedelta(days=6)).isoformat(),
            "once_at": soon, "repeat_at": soon, "repeat": "3", "every": "30",
        }  # fmt: skip
        return form_page(MultiDict(defaults))
    form = request.form
    try:
        rule, first = read_rule(form)
        placed = service.place(
            ctx,
            actor,
            _int(form.get("bulletin"), "no_bulletin"),
            read_targets(form),
            rule,
            parse_priority(form["priority"]) if form.get("priority") else None,
        )
    except LoaError as exc:
        flash_error(exc)
        return form_page(form, 422)
    except (RenderError, TtsError) as exc:
        key = "invalid_speech_request" if isinstance(exc, RenderError) else "speech_unavailable"
        flash(f"{error_text(key, '')} ({exc})", "error")
        return form_page(form, 422)
    message = translate("Created {n} broadcasts, {m} moved on to a later slot.").format(
        n=placed.broadcasts, m=placed.overflow
    )
    if placed.planned_until:
        message += " " + translate("Planned until {d}; later days are added day by day.").format(
            d=placed.planned_until.strftime("%d/%m/%Y")
        )
    flash(message, "ok")
    return redirect(url_for("plan.week", date=first.isoformat()))


# --- placements ---------------------------------------------------------------------------


@bp.get("/placements")
@login_required
def placements() -> str:
    actor = current_actor()
    with loa().transaction() as session:
        rows = calendar.placements(session, commune_id=actor_commune(actor))
    return render_template(
        "placements.html", rows=[placement_view(p) for p in rows], manage=may_manage(actor)
    )


@bp.post("/placements/<int:placement_id>/cancel")
@login_required
def cancel_placement(placement_id: int) -> Response:
    try:
        n = service.cancel_placement(loa(), current_actor(), placement_id)
        flash(translate("Placement cancelled: {n} broadcasts not played yet were cancelled.")
              .format(n=n), "ok")  # fmt: skip
    except LoaError as exc:
        flash_error(exc)
    target = request.form.get("next", "")
    local_path = target.startswith("/") and not target.startswith("//")
    return redirect(target if local_path else url_for("plan.placements"))


# --- slots (khung giờ) and quiet hours (giờ yên tĩnh) --------------------------------------


def days_words(weekdays: str) -> str:
    if weekdays == planning.ALL_DAYS:
        return translate("Every day")
    return ", ".join(translate(DAY_SHORT[int(d) - 1]) for d in weekdays)


def chosen_communes(form: MultiDict[str, str]) -> list[str] | None:
    """The communes a form's target asks for: None for all of them."""
    if form.get("target", "all") == "all":
        return None
    codes = form.getlist("communes")
    if not codes:
        raise InvalidInput("tick at least one commune", "no_communes")
    return codes


def slots_page(
    slot_form: MultiDict[str, str] | None = None,
    quiet_form: MultiDict[str, str] | None = None,
    status: int = 200,
) -> tuple[str, int]:
    """The slots and quiet hours, with their forms (filled as typed when one failed)."""
    with loa().transaction() as session:
        found = calendar.slots(session)
        communes = areas.communes(session)
        names = {c.id: c.name for c in communes}
        choices = [{"code": c.code, "name": c.name} for c in communes]
        quiet = [
            {"name": c.name, "start": c.quiet_start, "end": c.quiet_end}
            for c in communes
            if c.quiet_start
        ]
    rows = []
    for s in found:
        served = None if s.communes is None else sorted(names[i] for i in s.communes)
        rows.append(
            {
                "id": s.id,
                "name": s.name,
                "start": s.start,
                "end": hhmm(s.finish),
                "minutes": s.minutes,
                "days": days_words(s.weekdays),
                "communes": translate("All communes") if served is None else ", ".join(served),
            }
        )
    slot_defaults = {"target": "all", "minutes": "30", "weekdays": list(planning.ALL_DAYS)}
    page = render_template(
        "slots.html",
        rows=rows,
        quiet=quiet,
        communes=choices,
        weekdays=list(enumerate(DAY_SHORT, start=1)),
        s=slot_form or MultiDict(slot_defaults),
        q=quiet_form or MultiDict({"target": "all"}),
        manage=may_manage(current_actor()),
    )
    return page, status


@bp.get("/slots")
@login_required
def slots() -> tuple[str, int]:
    return slots_page()


@bp.post("/slots")
@login_required
def add_slot() -> Response | tuple[str, int]:
    ctx = loa()
    form = request.form
    try:
        days = tuple(_int(d, "invalid_days") for d in form.getlist("weekdays")) or None
        with ctx.transaction() as session:
            slot = planning.create_slot(
                session,
                current_actor(),
                name=form.get("name", ""),
                start=form.get("start", ""),
                minutes=_int(form.get("minutes"), "invalid_minutes"),
                weekdays=days,
                communes=chosen_communes(form),
                now=ctx.now(),
            )
            name = slot.name
    except LoaError as exc:
        flash_error(exc)
        return slots_page(slot_form=form, status=422)
    flash(translate("Slot {name} added.").format(name=name), "ok")
    return redirect(url_for("plan.slots"))


@bp.post("/slots/<int:slot_id>/remove")
@login_required
def remove_slot(slot_id: int) -> Response:
    ctx = loa()
    try:
        with ctx.transaction() as session:
            name = planning.remove_slot(session, current_actor(), slot_id, ctx.now()).name
        flash(translate("Slot {name} retired.").format(name=name), "ok")
    except LoaError as exc:
        flash_error(exc)
    return redirect(url_for("plan.slots"))


@bp.post("/quiet-hours")
@login_required
def quiet_hours() -> Response | tuple[str, int]:
    form = request.form
    start = form.get("start", "").strip() or None
    end = form.get("end", "").strip() or None
    try:
        if (start is None) != (end is None):
            raise InvalidInput("give a start and an end, or neither", "quiet_incomplete")
        n, cancelled = service.set_quiet_hours(
            loa(), current_actor(), chosen_communes(form), start, end
        )
    except LoaError as exc:
        flash_error(exc)
        return slots_page(quiet_form=form, status=422)
    if start:
        message = "Quiet hours set for {n} communes; {m} broadcasts in them were cancelled."
        flash(translate(message).format(n=n, m=cancelled), "ok")
    else:
        flash(translate("Quiet hours cleared for {n} communes.").format(n=n), "ok")
    return redirect(url_for("plan.slots"))
