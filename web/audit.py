"""The audit log in the panel, for the administrator: each entry's action, object and
detail in the panel's language. The domain writes details in English for the API (kept as
they are there); here they are matched and said again from the catalog, their values made
readable (roles, fields, local times, commune names)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime

from flask import Blueprint, abort, render_template, request
from sqlalchemy import select

from scheduler import audit
from scheduler.errors import Forbidden
from scheduler.models import Area, AuditEntry
from web.auth import current_actor, login_required
from web.common import actor_label, loa, local
from web.i18n import number, translate

bp = Blueprint("audit", __name__)

ANY = ""
FIELDS = {"title": "Title", "text": "Text", "topic": "Topic", "priority": "Priority"}
SHOWN_COMMUNES = 5  # more are counted, not named

# The details scheduler.* writes (action, object kind, the whole detail), the catalog's
# message for them, and how each group is shown.
DETAILS = tuple((a, t, re.compile(p), m, k) for a, t, p, m, k in (
    ("create", "user", r"(.+) \((\w+)\)", "account {0}, role {1}", ("text", "role")),
    ("edit", "user", r"(\w+), (active|disabled), communes (.+)",
     "role {0}, {1}, communes: {2}", ("role", "account", "communes")),
    ("create", "bulletin", r"(speech|recording|relay): (.*)", "{0}: {1}", ("kind", "text")),
    ("edit", "bulletin", r"stream (\S+) for ([\d.]+) s", "stream {0} for {1} seconds",
     ("text", "number")),
    ("edit", "bulletin", r"new recording", "new recording", ()),
    ("edit", "bulletin", r"((?:title|text|topic|priority)(?:, (?:title|text|topic|priority))*)",
     "changed: {0}", ("fields",)),
    ("create", "endpoint", r"(\w+) (.+) in (.+)", "{0} “{1}” in {2}",
     ("endpoint", "text", "text")),
    ("retire", "endpoint", r"(\d+) cancelled", "{0} broadcasts cancelled", ("number",)),
    ("schedule", "bulletin", r"at (\S+) in (.+)", "at {0} in {1}", ("time", "communes")),
    ("confirm", "broadcast", r"aired at (\S+?)(?:; (.*))?", "aired at {0}{1}", ("time", "reason")),
    ("confirm", "broadcast", r"not aired(?:; (.*))?", "not aired{0}", ("reason",)),
    ("quiet_hours", ANY, r"(\d+) communes: (\d\d:\d\d)-(\d\d:\d\d)",
     "{0} communes: quiet from {1} to {2}", ("number", "text", "text")),
    ("quiet_hours", ANY, r"(\d+) communes: none", "{0} communes: no quiet hours", ("number",)),
    ("export", "report", r"(csv|xlsx|docx) (\S+)\.\.(\S+)(?: commune (\S+))?",
     "{0} from {1} to {2}{3}", ("format", "date", "date", "commune")),
    ("create", "slot", r"(.+) (\d\d:\d\d), (\d+) min", "{0} at {1}, {2} minutes",
     ("text", "text", "number")),
    ("place", "placement", r"bulletin (\d+), (once|slots|repeat)", "bulletin {0}, {1}",
     ("text", "rule")),
    (ANY, ANY, r"(\d+) broadcasts cancelled", "{0} broadcasts cancelled", ("number",)),
))  # fmt: skip


def word(key: str, raw: str) -> str:
    """A catalog word ("role:operator"), else the raw value."""
    said = translate(key)
    return raw if said == key else said


def _communes(codes: str, names: Mapping[str, str]) -> str:
    found = [c for c in codes.split(", ") if c and c != "-"]
    if not found:
        return translate("none")
    if len(found) > SHOWN_COMMUNES:
        return translate("{n} communes").format(n=number(len(found)))
    return ", ".join(names.get(c, c) for c in found)


def _time(text: str) -> str:
    try:
        return local(datetime.fromisoformat(text), "%H:%M %d/%m/%Y")
    except ValueError:
        return text


def _date(text: str) -> str:
    try:
        return date.fromisoformat(text).strftime("%d/%m/%Y")
    except ValueError:
        return text


def _number(text: str) -> str:
    try:
        value = float(text)
    except ValueError:
        return text
    return number(value, 0 if value.is_integer() else 1)


def _shape(kind: str, value: str | None, names: Mapping[str, str]) -> str:
    if value is None:
        return ""
    shapes: dict[str, Callable[[str], str]] = {
        "text": str,
        "number": _number,
        "role": lambda v: word(f"role:{v}", v),
        "account": lambda v: word(f"account:{v}", v),
        "kind": lambda v: word(f"kind:{v}", v),
        "endpoint": lambda v: word(f"endpoint-kind:{v}", v),
        "rule": lambda v: word(f"rule:{v}", v),
        "format": str.upper,
        "fields": lambda v: ", ".join(translate(FIELDS[f]).lower() for f in v.split(", ")),
        "time": _time,
        "date": _date,
        "communes": lambda v: _communes(v, names),
        "commune": lambda v: ", " + names.get(v, v),
        "reason": lambda v: "; " + v,
    }
    return shapes[kind](value)


def _match(e: AuditEntry) -> tuple[str, tuple[str, ...], tuple[str | None, ...]] | None:
    for action, target, pattern, msgid, kinds in DETAILS:
        if action in (ANY, e.action) and target in (ANY, e.target):
            found = pattern.fullmatch(e.detail or "")
            if found:
                return msgid, kinds, found.groups()
    return None


def _codes(
    matches: Iterable[tuple[str, tuple[str, ...], tuple[str | None, ...]] | None],
) -> set[str]:
    codes: set[str] = set()
    for m in matches:
        for kind, value in zip(*m[1:], strict=True) if m else ():
            if kind in ("communes", "commune") and value:
                codes.update(value.split(", "))
    return codes


def detail(e: AuditEntry, names: Mapping[str, str]) -> str:
    """An entry's detail in the panel's language; one not known shows as written."""
    m = _match(e)
    if m is None:
        return e.detail or ""
    msgid, kinds, values = m
    shown = [_shape(k, v, names) for k, v in zip(kinds, values, strict=True)]
    return translate(msgid).format(*shown)


def target(e: AuditEntry) -> str:
    what = word(f"target:{e.target}", e.target)
    return f"{what} {e.target_id}" if e.target_id else what


@bp.get("/audit")
@login_required
def index() -> str:
    page = request.args.get("page", "1")
    number_ = int(page) if page.isdigit() and int(page) > 0 else 1
    who = request.args.get("actor", "").strip()
    with loa().transaction() as session:
        try:
            found = audit.entries(session, current_actor(), who=who, page=number_)
        except Forbidden:
            abort(403)
        codes = _codes(_match(e) for e in found)
        named = select(Area.code, Area.name).where(Area.code.in_(codes))
        names = {code: name for code, name in session.execute(named)} if codes else {}
        rows = [
            {
                "at": local(e.at, "%d/%m/%Y %H:%M:%S"),
                "actor": actor_label(e.actor),
                "action": word(f"audit:{e.action}", e.action),
                "target": target(e),
                "detail": detail(e, names),
            }
            for e in found
        ]
    return render_template(
        "audit.html", rows=rows, who=who, page=number_, more=len(rows) == audit.PAGE
    )
