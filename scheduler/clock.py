"""Injectable clocks: domain code takes `now` from one of these, never from datetime.now()."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, time, timedelta
from typing import Protocol

from scheduler.errors import InvalidInput


def parse_hhmm(text: str) -> time:
    """A local time of day written HH:MM; InvalidInput("invalid_time") otherwise."""
    try:
        hours, minutes = (int(part) for part in text.split(":"))
        return time(hours, minutes)
    except ValueError:
        raise InvalidInput(
            f"a time of day is written HH:MM, got {text!r}", "invalid_time"
        ) from None


class Clock(Protocol):
    def now(self) -> datetime:
        """Return the current time as an aware UTC datetime."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class ManualClock:
    """A clock that only moves when told to (tests, simulations)."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("ManualClock needs an aware datetime")
        self._now = start.astimezone(UTC)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += timedelta(seconds=seconds)
