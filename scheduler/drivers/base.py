"""The driver interface every endpoint kind implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import ClassVar

from scheduler.models import Priority


@dataclass(frozen=True)
class PlayItem:
    """Everything a driver needs to make one endpoint play one broadcast."""

    delivery_id: int
    broadcast_id: int
    endpoint_id: int
    title: str
    priority: Priority
    scheduled_at: datetime
    play_until: datetime  # latest start; after it the broadcast is missed, not aired late
    audio_path: Path | None  # None for a relay
    sha256: str
    duration_seconds: float  # a relay: how long to relay the stream
    delivered: bool  # the endpoint has confirmed it holds the audio
    # A relay (tiếp sóng): the live stream to play for `duration_seconds` instead of a file.
    stream_url: str | None = None


class DriverError(Exception):
    """The endpoint could not be reached or refused; `permanent` means retrying is useless,
    `retry=False` that the driver itself will still deliver it (a command queued for a
    broker), so the dispatcher must not start it again."""

    def __init__(self, message: str, permanent: bool = False, *, retry: bool = True) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.retry = retry and not permanent


class Driver(ABC):
    kind: ClassVar[str]

    def announce(self, endpoint_id: int) -> None:  # noqa: B027 - optional hook
        """The endpoint's schedule changed; push-capable drivers tell it now."""

    def announce_many(self, endpoint_ids: list[int]) -> None:
        """Several endpoints' schedules changed together (a district-wide bulletin)."""
        for endpoint_id in endpoint_ids:
            self.announce(endpoint_id)

    @abstractmethod
    def start(self, item: PlayItem) -> None:
        """It is the item's time: make the endpoint play it. Raises DriverError."""

    def start_many(self, items: list[PlayItem]) -> dict[int, DriverError]:
        """Start several items due together; returns the error of each delivery that failed.
        Drivers that can send a batch faster than one by one override this."""
        errors = {}
        for item in items:
            try:
                self.start(item)
            except DriverError as exc:
                errors[item.delivery_id] = exc
        return errors

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release threads and connections."""
