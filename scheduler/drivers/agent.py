"""Loa's reference agent: it pulls its schedule and audio ahead and plays by its own clock."""

from __future__ import annotations

from collections.abc import Callable

from scheduler.drivers.base import Driver, DriverError, PlayItem
from scheduler.notify import ChangeNotifier


class AgentDriver(Driver):
    kind = "agent"
    push: Callable[[int], None] | None = None  # an MQTT wake-up (`sync`), when a broker is set

    def __init__(self, notifier: ChangeNotifier) -> None:
        self.notifier = notifier

    def announce(self, endpoint_id: int) -> None:
        self.announce_many([endpoint_id])

    def announce_many(self, endpoint_ids: list[int]) -> None:
        self.notifier.notify_many(endpoint_ids)  # wakes their long-polls, in one batch
        if self.push is not None:
            for endpoint_id in endpoint_ids:
                self.push(endpoint_id)

    def start(self, item: PlayItem) -> None:
        error = self.start_many([item]).get(item.delivery_id)
        if error is not None:
            raise error

    def start_many(self, items: list[PlayItem]) -> dict[int, DriverError]:
        # The agent needs no command to play; at the due time the server only checks
        # that the agent holds the audio, so the panel can warn while there is time.
        self.notifier.notify_many(item.endpoint_id for item in items)
        return {item.delivery_id: NOT_CACHED for item in items if not item.delivered}


NOT_CACHED = DriverError(
    "the agent has not confirmed it holds the audio; "
    "it will play only if it fetches it before the grace period ends"
)
