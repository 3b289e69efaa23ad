"""Drivers that play on the server itself: one Playout (queue + output) per endpoint.

The icecast and local drivers differ only in their Output, made from the endpoint's
address. Items due together start in priority order (rank, then delivery order); an
emergency interrupts what plays. Every outcome is reported like a virtual speaker's.
A relay item (tiếp sóng) plays its stream through the same output (audio.playout.Relay).
"""

from __future__ import annotations

import threading
from abc import abstractmethod
from collections.abc import Callable
from datetime import datetime

from audio.playout import Cue, Output, PlayEvent, Playout
from scheduler.drivers.base import Driver, DriverError, PlayItem

Reporter = Callable[[int, PlayEvent], None]  # (endpoint id, event)
AddressOf = Callable[[int], str | None]  # endpoint id -> its address column

SETTLE_SECONDS = 0.25  # how long a silent endpoint gathers items due together


class PlayoutDriver(Driver):
    def __init__(self, report: Reporter, now: Callable[[], datetime], address_of: AddressOf):
        self.report = report
        self.now = now
        self.address_of = address_of
        self._playouts: dict[int, tuple[str | None, Playout]] = {}
        self._lock = threading.Lock()

    @abstractmethod
    def output(self, address: str | None) -> Output:
        """The output for an endpoint at `address`; DriverError(permanent) if unusable."""

    def start(self, item: PlayItem) -> None:
        # A relay has no file: its stream is opened when it plays (failed if it cannot be).
        if not item.stream_url and (item.audio_path is None or not item.audio_path.is_file()):
            raise DriverError(f"the audio file {item.audio_path} is missing", permanent=True)
        playout = self._playout(item.endpoint_id, self.address_of(item.endpoint_id))
        playout.submit(
            Cue(
                key=str(item.delivery_id),
                path=item.audio_path,
                stream_url=item.stream_url,
                duration_seconds=item.duration_seconds,
                rank=item.priority.rank,
                due_at=item.scheduled_at,
                play_until=item.play_until,
                label=item.title,
                order=item.delivery_id,
            )
        )

    def _playout(self, endpoint_id: int, address: str | None) -> Playout:
        """The endpoint's playout; a new one (the old one shut) when its address changed."""
        with self._lock:
            known = self._playouts.get(endpoint_id)
            if known is not None and known[0] == address:
                return known[1]
            output = self.output(address)
            playout = Playout(
                output,
                lambda event: self.report(endpoint_id, event),
                self.now,
                name=f"{self.kind}-endpoint-{endpoint_id}",
                settle_seconds=SETTLE_SECONDS,
            )
            playout.start()
            self._playouts[endpoint_id] = (address, playout)
        if known is not None:
            known[1].close()
        return playout

    def close(self) -> None:
        with self._lock:
            playouts, self._playouts = list(self._playouts.values()), {}
        for _, playout in playouts:
            playout.close()
