"""In-process virtual speakers: a silent playout per endpoint, so a demo visibly plays."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime

from audio.playout import Cue, PlayEvent, Playout, SilentOutput
from scheduler.drivers.base import Driver, PlayItem

Reporter = Callable[[int, PlayEvent], None]  # (endpoint id, event)


class VirtualDriver(Driver):
    kind = "virtual"

    def __init__(self, report: Reporter, now: Callable[[], datetime]) -> None:
        self.report = report
        self.now = now
        self._playouts: dict[int, Playout] = {}
        self._lock = threading.Lock()

    def _playout(self, endpoint_id: int) -> Playout:
        with self._lock:
            playout = self._playouts.get(endpoint_id)
            if playout is None:
                playout = Playout(
                    SilentOutput(),
                    lambda event: self.report(endpoint_id, event),
                    self.now,
                    name=f"virtual-speaker-{endpoint_id}",
                )
                playout.start()
                self._playouts[endpoint_id] = playout
            return playout

    def start(self, item: PlayItem) -> None:
        self._playout(item.endpoint_id).submit(
            Cue(
                key=str(item.delivery_id),
                path=item.audio_path,
                duration_seconds=item.duration_seconds,
                rank=item.priority.rank,
                due_at=item.scheduled_at,
                play_until=item.play_until,
                label=item.title,
            )
        )

    def close(self) -> None:
        with self._lock:
            playouts, self._playouts = list(self._playouts.values()), {}
        for playout in playouts:
            playout.close()
