"""/api/v1 planning: communes, groups, slots (khung giờ), placements (lịch phát), the plan."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any, Literal

from flask import Blueprint, Response, jsonify, request
from pydantic import AwareDatetime, Field

from scheduler import areas, asrun, planning, service
from scheduler.errors import InvalidInput
from scheduler.models import Group, Placement, Priority, Role, Slot
from web.api.common import Body, Id, actor, body, created, loa

bp = Blueprint("planning", __name__)

Weekday = Field(ge=1, le=7)


class SlotIn(Body):
    name: str = Field(min_length=1, max_length=120)
    start: str = Field(pattern=r"^\d{1,2}:\d{2}$", description="local time, HH:MM")
    minutes: int = Field(ge=1, le=24 * 60)
    weekdays: list[int] | None = Field(default=None, min_length=1, description="ISO, 1 = Monday")
    communes: list[str] | None = Field(default=None, min_length=1)


class GroupIn(Body):
    name: str = Field(min_length=1, max_length=120)
    communes: list[str] = Field(min_length=1)


class OnceRule(Body):
    once: AwareDatetime


class SlotsRule(Body):
    slots: list[Id] = Field(min_length=1)
    from_: date = Field(alias="from")
    to: date
    weekdays: list[int] | None = Field(default=None, min_length=1)


class RepeatRule(Body):
    at: AwareDatetime
    repeat: int = Field(ge=1, le=planning.MAX_REPEAT)
    every_seconds: int = Field(ge=1, le=7 * 86400)


class PlacementRuleIn(Body):
    communes: list[str] | Literal["all"] | None = None
    group: str | None = Field(default=None, min_length=1)
    priority: Priority | None = None
    rule: OnceRule | SlotsRule | RepeatRule

    def targets(self) -> planning.Targets:
        if self.communes is not None and self.group is not None:
            raise InvalidInput("give communes or a group, not both", "invalid_targets")
        if self.communes == "all":
            return planning.Targets(all=True)
        return planning.Targets(group=self.group, communes=tuple(self.communes or ()))

    def plan_rule(self) -> planning.Rule:
        r = self.rule
        if isinstance(r, OnceRule):
            return planning.Rule(once=r.once)
        if isinstance(r, RepeatRule):
            return planning.Rule(at=r.at, repeat=r.repeat, every_seconds=r.every_seconds)
        weekdays = tuple(r.weekdays) if r.weekdays is not None else None
        return planning.Rule(
            slot_ids=tuple(r.slots), date_from=r.from_, date_to=r.to, weekdays=weekdays
        )


class QuietIn(Body):
    """Quiet hours, local HH:MM to HH:MM (across midnight when the end is earlier);
    null and null: none."""

    start: str | None
    end: str | None
    communes: list[str] | Literal["all"] = "all"


class PlacementIn(PlacementRuleIn):
    bulletin_id: Id


class PlacementEditIn(PlacementRuleIn):
    bulletin_id: Id | None = None  # a placement keeps its bulletin


BODIES = (SlotIn, GroupIn, PlacementIn, PlacementEditIn, QuietIn)


@bp.get("/communes")
def list_communes() -> Response:
    actor()
    with loa().transaction() as session:
        rows = []
        for c in areas.communes(session):
            district = c.parent
            province = district.parent if district else None
            rows.append(
                {
                    "code": c.code,
                    "name": c.name,
                    "kind": c.kind,
                    "district": {"code": district.code, "name": district.name}
                    if district
                    else None,
                    "province": {"code": province.code, "name": province.name}
                    if province
                    else None,
                    "quiet_hours": {"start": c.quiet_start, "end": c.quiet_end}
                    if c.quiet_start
                    else None,
                }
            )
    return jsonify(rows)


def slot_json(s: Slot) -> dict[str, Any]:
    return {
        "id": s.id,
        "name": s.name,
        "start": s.start,
        "minutes": s.minutes,
        "weekdays": [int(d) for d in s.weekdays],
        "communes": "all" if s.all_communes else [c.code for c in s.communes],
    }


@bp.post("/slots")
def create_slot() -> tuple[Response, int]:
    data = body(SlotIn)
    ctx = loa()
    with ctx.transaction() as session:
        slot = planning.create_slot(
            session, actor(), name=data.name, start=data.start, minutes=data.minutes,
            weekdays=data.weekdays, communes=data.communes, now=ctx.now(),
        )  # fmt: skip
        return created(slot_json(slot))


@bp.get("/slots")
def list_slots() -> Response:
    actor()
    with loa().transaction() as session:
        return jsonify([slot_json(s) for s in planning.active_slots(session)])


@bp.delete("/slots/<int:slot_id>")
def delete_slot(slot_id: int) -> Response:
    ctx = loa()
    with ctx.transaction() as session:
        return jsonify(slot_json(planning.remove_slot(session, actor(), slot_id, ctx.now())))


def group_json(g: Group) -> dict[str, Any]:
    return {"id": g.id, "name": g.name, "communes": [c.code for c in g.communes]}


@bp.post("/groups")
def create_group() -> tuple[Response, int]:
    data = body(GroupIn)
    ctx = loa()
    with ctx.transaction() as session:
        group = planning.create_group(session, actor(), data.name, data.communes, ctx.now())
        return created(group_json(group))


@bp.get("/groups")
def list_groups() -> Response:
    actor()
    with loa().transaction() as session:
        return jsonify([group_json(g) for g in session.query(Group).order_by(Group.name)])


@bp.put("/quiet-hours")
def put_quiet_hours() -> Response:
    data = body(QuietIn)
    codes = None if data.communes == "all" else data.communes
    communes, cancelled = service.set_quiet_hours(loa(), actor(), codes, data.start, data.end)
    return jsonify(communes=communes, cancelled=cancelled)


@bp.post("/placements")
def create_placement() -> tuple[Response, int]:
    data = body(PlacementIn)
    placed = service.place(
        loa(), actor(), data.bulletin_id, data.targets(), data.plan_rule(), data.priority
    )
    until = placed.planned_until
    return created(
        {
            "id": placed.placement_id,
            "broadcasts": placed.broadcasts,
            "overflow": placed.overflow,
            "quiet": placed.quiet,
            "planned_until": until.isoformat() if until else None,
        }
    )


def placement_json(p: Placement) -> dict[str, Any]:
    tz = loa().settings.timezone
    rule: dict[str, Any]
    if p.rule == "slots":
        rule = {
            "slots": [s.id for s in p.slots],
            "from": p.date_from.isoformat() if p.date_from else None,
            "to": p.date_to.isoformat() if p.date_to else None,
            "weekdays": [int(d) for d in p.weekdays] if p.weekdays else None,
        }
    elif p.rule == "repeat":
        rule = {
            "at": asrun.local_iso(p.at, tz),
            "repeat": p.repeat,
            "every_seconds": p.every_seconds,
        }
    else:
        rule = {"once": asrun.local_iso(p.at, tz)}
    return {
        "id": p.id,
        "bulletin_id": p.bulletin_id,
        "title": p.bulletin.title,
        "priority": p.priority,
        "communes": "all" if p.target == "all" else [c.code for c in p.communes] or None,
        "group": p.group.name if p.group else None,
        "rule": rule,
        "created_by": p.created_by,
        "created_at": asrun.local_iso(p.created_at, tz),
        "cancelled_at": asrun.local_iso(p.cancelled_at, tz),
    }


@bp.get("/placements")
def list_placements() -> Response:
    actor()
    with loa().transaction() as session:
        rows = session.query(Placement).order_by(Placement.id.desc())
        return jsonify([placement_json(p) for p in rows])


@bp.get("/placements/<int:placement_id>")
def get_placement(placement_id: int) -> Response:
    actor()
    with loa().transaction() as session:
        return jsonify(placement_json(planning.get_placement(session, placement_id)))


@bp.put("/placements/<int:placement_id>")
def edit_placement(placement_id: int) -> Response:
    data = body(PlacementEditIn)
    ctx = loa()
    with ctx.transaction() as session:
        bulletin_id = planning.get_placement(session, placement_id).bulletin_id
    if data.bulletin_id not in (None, bulletin_id):
        raise InvalidInput("a placement keeps its bulletin; place the other one", "bulletin_fixed")
    placed = service.edit_placement(
        ctx, actor(), placement_id, data.targets(), data.plan_rule(), data.priority
    )
    with ctx.transaction() as session:
        answer = placement_json(planning.get_placement(session, placement_id))
    answer.update(broadcasts=placed.broadcasts, overflow=placed.overflow, quiet=placed.quiet)
    return jsonify(answer)


@bp.delete("/placements/<int:placement_id>")
def delete_placement(placement_id: int) -> Response:
    return jsonify(cancelled=service.cancel_placement(loa(), actor(), placement_id))


@bp.get("/plan")
def get_plan() -> Response:
    who = actor()
    ctx = loa()
    tz = ctx.settings.timezone
    start = asrun.parse_bound(request.args.get("from"), tz, end=False)
    start = start or planning.local_midnight(ctx.now(), tz)
    end = asrun.parse_bound(request.args.get("to"), tz, end=True) or start + timedelta(days=7)
    with ctx.transaction() as session:
        commune_id = None
        if code := request.args.get("commune"):
            commune_id = areas.commune_by_code(session, code).id
        if who.role == Role.OPERATOR:  # an operator's plan is one of their communes'
            if commune_id is not None:
                who.require_commune(commune_id)
            commune_id = commune_id if commune_id is not None else who.commune_id
        rows = planning.plan(session, start, end, commune_id)
    for row in rows:
        for key in ("scheduled_at", "slot_at"):
            row[key] = asrun.local_iso(row[key], tz)  # type: ignore[arg-type]
    return jsonify(rows)
