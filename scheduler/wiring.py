"""The endpoint drivers a dispatching process runs, built in one place."""

from __future__ import annotations

from scheduler.context import Loa
from scheduler.drivers.virtual import VirtualDriver
from scheduler.service import record_play_event


def install_drivers(loa: Loa, *, virtual_speakers: bool) -> None:
    """Give `loa` a driver for every endpoint kind this process dispatches to."""
    if virtual_speakers:
        loa.drivers["virtual"] = VirtualDriver(
            lambda endpoint_id, event: record_play_event(loa, endpoint_id, event), loa.now
        )
