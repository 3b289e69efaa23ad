"""Helpers shared by the panel's blueprints."""

from __future__ import annotations

from datetime import datetime

from flask import current_app, flash

from scheduler.context import Loa
from scheduler.errors import InvalidInput, LoaError
from web.i18n import error_text, translate


def loa() -> Loa:
    ctx: Loa = current_app.extensions["loa"]
    return ctx


def flash_error(exc: LoaError) -> None:
    flash(error_text(exc.code, exc.detail), "error")


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
    """'endpoint:Cụm 1' -> 'Thiết bị: Cụm 1', 'user:thoson' -> 'thoson' (for display)."""
    if not actor:
        return ""
    kind, _, name = actor.partition(":")
    if kind == "user":
        return name
    label = {"endpoint": "Endpoint", "token": "API", "dispatcher": "Dispatcher"}.get(kind, kind)
    return f"{translate(label)}: {name}" if name else translate(label)
