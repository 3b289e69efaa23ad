"""Helpers shared by the panel's blueprints."""

from __future__ import annotations

from datetime import datetime

from flask import current_app, flash

from scheduler.context import Loa
from scheduler.errors import InvalidInput, LoaError
from web.i18n import error_text


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
