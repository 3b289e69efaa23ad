"""Helpers shared by the panel's blueprints."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import current_app, flash, g

from scheduler import asrun
from scheduler.context import Loa
from scheduler.errors import InvalidInput, LoaError
from scheduler.models import Broadcast, Status
from web.i18n import error_text, message, number, seconds, translate


def loa() -> Loa:
    ctx: Loa = current_app.extensions["loa"]
    return ctx


def flash_error(exc: LoaError, about: str = "") -> None:
    """The error in the panel's language; `about`, if given, says what it was about."""
    flash(error_text(exc.code, exc.detail) + (f" ({about})" if about else ""), "error")


def parse_local(value: str) -> datetime | None:
    """A datetime-local form value ('2026-11-26T06:30') in the configured zone; '' is None."""
    if not value.strip():
        return None
    try:
        naive = datetime.fromisoformat(value.strip())
    except ValueError:
        raise InvalidInput(f"{value!r} is not a date and time", "invalid_time") from None
    if naive.tzinfo is not None:
        return naive
    return naive.replace(tzinfo=loa().settings.timezone)


def local(moment: datetime | None, fmt: str = "%H:%M:%S") -> str:
    return moment.astimezone(loa().settings.timezone).strftime(fmt) if moment else ""


def actor_label(actor: str | None) -> str:
    """'endpoint:Cụm 1' -> 'Thiết bị: Cụm 1', 'user:thoson' -> the user's name, as the
    exports give it (for display)."""
    if not actor:
        return ""
    kind, _, name = actor.partition(":")
    if kind == "user":  # the names web.auth.load_user read with the signed-in user
        return str(g.get("user_names", {}).get(actor, name))
    label = {"endpoint": "Endpoint", "token": "API", "dispatcher": "Dispatcher"}.get(kind, kind)
    return f"{translate(label)}: {name}" if name else translate(label)


def lateness(late: float | None) -> str:
    """How late a broadcast started, as people say it: '28,6 giây', 'sớm 1,5 giây', 'đúng giờ'."""
    if late is None:
        return ""
    if abs(late) < 0.05:
        return translate("on time")
    gap = abs(late)
    amount = seconds(gap) if gap < 90 else f"{number(gap / 60, 0)} {translate('min')}"
    return amount if late > 0 else f"{translate('early by')} {amount}"


def broadcast_row(b: Broadcast, now: datetime, awaiting: bool = False) -> dict[str, Any]:
    """A broadcast as the panel's tables show it, in local time; `awaiting`: it waits
    for the commune operator's word (scheduler.watch)."""
    late = asrun.lateness_seconds(b)
    return {
        "id": b.id,
        "time": local(b.scheduled_at, "%H:%M"),
        "title": b.bulletin.title,
        "priority": b.priority,
        "status": b.status,
        "awaiting": awaiting,
        "started": local(b.started_at),
        "finished": local(b.finished_at),
        # The operator gives the time it aired; how late that was is not measured.
        "late": lateness(late) if b.confirmation != "operator" else "",
        "confirmed_by": actor_label(b.confirmed_by),
        "reason": message(b.reason),
        # The operator's word is asked for once the time has come, unless a device proved play.
        "can_confirm": b.scheduled_at <= now
        and b.confirmation != "device"
        and b.status not in (Status.PLAYED, Status.PLAYING, Status.CANCELLED),
    }
