"""The endpoint drivers a dispatching process runs, built in one place."""

from __future__ import annotations

from audio.playout import PlayEvent
from scheduler.context import Loa
from scheduler.drivers.icecast import IcecastDriver
from scheduler.drivers.local import LocalDriver
from scheduler.drivers.mqtt import install_mqtt
from scheduler.drivers.virtual import VirtualDriver
from scheduler.models import Endpoint
from scheduler.service import record_play_event


def install_drivers(loa: Loa, *, virtual_speakers: bool) -> None:
    """Give `loa` a driver for every endpoint kind this process dispatches to."""
    if virtual_speakers:
        loa.drivers["virtual"] = VirtualDriver(
            lambda endpoint_id, event: record_play_event(loa, endpoint_id, event), loa.now
        )

    def report(endpoint_id: int, event: PlayEvent) -> None:
        record_play_event(loa, endpoint_id, event)

    def address_of(endpoint_id: int) -> str | None:
        with loa.transaction() as session:
            endpoint = session.get(Endpoint, endpoint_id)
            return endpoint.address if endpoint is not None else None

    # Streams to icecast and the server's own sound card need nothing but this process.
    loa.drivers["icecast"] = IcecastDriver(report, loa.now, address_of)
    loa.drivers["local"] = LocalDriver(report, loa.now, address_of)
    install_mqtt(loa)  # with LOA_MQTT_URL: MQTT devices, and agents' wake-ups
