"""No device: the commune operator confirms "đã phát / không phát" in the panel."""

from __future__ import annotations

from scheduler.drivers.base import Driver, PlayItem


class ManualDriver(Driver):
    kind = "manual"

    def start(self, item: PlayItem) -> None:
        # Nothing to send. The attempt row the dispatcher writes marks the moment the
        # operator is asked; the delivery stays open until the operator answers, and the
        # close job leaves it alone (scheduler.watch lists it as waiting).
        return None
