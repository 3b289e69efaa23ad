"""Loa's reference agent: it pulls its schedule and audio ahead and plays by its own clock."""

from __future__ import annotations

from scheduler.drivers.base import Driver, DriverError, PlayItem
from scheduler.notify import ChangeNotifier


class AgentDriver(Driver):
    kind = "agent"

    def __init__(self, notifier: ChangeNotifier) -> None:
        self.notifier = notifier

    def announce(self, endpoint_id: int) -> None:
        self.notifier.notify(endpoint_id)  # wakes the agent's long-poll

    def start(self, item: PlayItem) -> None:
        # The agent needs no command to play; at the due time the server only checks
        # that the agent holds the audio, so the panel can warn while there is time.
        self.notifier.notify(item.endpoint_id)
        if not item.delivered:
            raise DriverError(
                "the agent has not confirmed it holds the audio; "
                "it will play only if it fetches it before the grace period ends"
            )
