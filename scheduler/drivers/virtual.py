"""In-process virtual speakers: a silent playout per endpoint, so a demo visibly plays.
A relay's stream is really read (and discarded): its proof is the bytes received."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from audio.playout import Output, SilentOutput
from scheduler.drivers.playout import PlayoutDriver, Reporter


class VirtualDriver(PlayoutDriver):
    kind = "virtual"

    def __init__(self, report: Reporter, now: Callable[[], datetime]) -> None:
        super().__init__(report, now, lambda _endpoint_id: None)

    def output(self, address: str | None) -> Output:
        return SilentOutput()
