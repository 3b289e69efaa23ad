"""Third-party MQTT loudspeakers: `play` at the due time, `stop` when an emergency interrupts.

Such a device keeps no schedule: at a broadcast's time the dispatcher calls `start`, and
the driver publishes `play` to `loa/ep/{id}/cmd` (QoS 1) through the process's bridge.
The device fetches the audio over HTTP (or, for a relay, plays `stream_url` for
`duration_seconds`), plays it, and reports back on `loa/ep/{id}/event` (docs/mqtt.md).

How the driver knows what an endpoint is playing when an emergency comes: it remembers
what it last told each endpoint to play and when that should end (the later of now and
the due time, plus the audio's length), and forgets it when the device reports that
delivery finished, interrupted, failed or missed. An emergency for an endpoint still
inside that window first gets `stop` for that delivery. A process only knows what it
commanded itself; the `play` of an emergency also carries `priority: "emergency"`, so a
device that can preempt by itself does so anyway.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from scheduler.context import Loa
from scheduler.drivers.agent import AgentDriver
from scheduler.drivers.base import Driver, DriverError, PlayItem
from scheduler.models import Priority
from scheduler.mqtt import BrokerAddress, EventOutcome, MqttBridge, default_client_id, encode

AUDIO_PATH = "/api/v1/audio/{sha256}.mp3"
END_MARGIN = timedelta(seconds=2)  # the device's own latency in starting and reporting
DONE = frozenset({"finished", "interrupted", "failed", "missed"})
PLAY = b'{"action":"play","delivery_id":%d'  # + what the broadcast's deliveries share


def play_command(item: PlayItem, audio_base_url: str = "") -> dict[str, Any]:
    # A relay (tiếp sóng) has a stream to play for duration_seconds instead of a file.
    relay = item.stream_url is not None
    return {
        "action": "play",
        "delivery_id": item.delivery_id,
        "broadcast_id": item.broadcast_id,
        "audio_url": None if relay else audio_base_url + AUDIO_PATH.format(sha256=item.sha256),
        "sha256": None if relay else item.sha256,
        "stream_url": item.stream_url,
        "at": item.scheduled_at.isoformat(),
        "play_until": item.play_until.isoformat(),
        "priority": item.priority.value,
        "duration_seconds": item.duration_seconds,
        "title": item.title,
    }


def stop_command(delivery_id: int, reason: str) -> dict[str, Any]:
    return {"action": "stop", "delivery_id": delivery_id, "reason": reason}


@dataclass(frozen=True)
class _Told:
    delivery_id: int
    until: datetime  # when it should be over, at the latest


class MqttDriver(Driver):
    kind = "mqtt"

    def __init__(
        self, bridge: MqttBridge, now: Callable[[], datetime], audio_base_url: str = ""
    ) -> None:
        """`audio_base_url`: prefix of the audio URL in `play` (e.g. http://district:8080);
        empty, the URL is a path on the server the device is configured with."""
        self.bridge = bridge
        self.now = now
        self.audio_base_url = audio_base_url.rstrip("/")
        self._told: dict[int, _Told] = {}
        self._lock = threading.Lock()
        bridge.listeners.append(self._on_event)

    def announce(self, endpoint_id: int) -> None:
        self.announce_many([endpoint_id])

    def announce_many(self, endpoint_ids: list[int]) -> None:
        # `sync`: a device that prefetches (through the HTTP schedule) may act on it, and
        # report `delivered`; a play-only device ignores it.
        sync = encode({"action": "sync"})
        self.bridge.publish_payloads((endpoint_id, sync) for endpoint_id in endpoint_ids)

    def start(self, item: PlayItem) -> None:
        error = self.start_many([item]).get(item.delivery_id)
        if error is not None:
            raise error

    def start_many(self, items: list[PlayItem]) -> dict[int, DriverError]:
        """Publish the `play` of every item (and the `stop`s emergencies need) in one go.
        An item's error says its command waits in memory for the broker to come back (not
        permanent), or could not be queued at all. The part of `play` that all deliveries
        of a broadcast share is encoded once."""
        now = self.now()
        payloads: list[tuple[int, bytes]] = []
        owners: list[int] = []  # the delivery each command is for
        shared: dict[int, bytes] = {}
        with self._lock:
            for item in items:
                if item.priority == Priority.EMERGENCY:
                    told = self._told.get(item.endpoint_id)
                    if told and told.delivery_id != item.delivery_id and told.until > now:
                        reason = f"interrupted by emergency delivery {item.delivery_id}"
                        stop = encode(stop_command(told.delivery_id, reason))
                        payloads.append((item.endpoint_id, stop))
                        owners.append(item.delivery_id)
                tail = shared.get(item.broadcast_id)
                if tail is None:
                    tail = shared[item.broadcast_id] = encode(
                        play_command(item, self.audio_base_url)
                    )
                    tail = shared[item.broadcast_id] = tail[tail.index(b',"broadcast_id"') :]
                payloads.append((item.endpoint_id, PLAY % item.delivery_id + tail))
                owners.append(item.delivery_id)
                length = timedelta(seconds=item.duration_seconds)
                until = max(now, item.scheduled_at) + length + END_MARGIN
                self._told[item.endpoint_id] = _Told(item.delivery_id, until)
        errors: dict[int, DriverError] = {}
        for delivery_id, error in zip(owners, self.bridge.publish_payloads(payloads), strict=True):
            if error is not None:
                errors.setdefault(delivery_id, error)
        return errors

    def _on_event(self, outcome: EventOutcome) -> None:
        report = outcome.report
        if report is None or outcome.endpoint_id is None or report.kind not in DONE:
            return
        with self._lock:
            told = self._told.get(outcome.endpoint_id)
            if told is not None and told.delivery_id == report.delivery_id:
                del self._told[outcome.endpoint_id]

    def close(self) -> None:
        self.bridge.close()


def install_mqtt(loa: Loa, client_id: str | None = None) -> MqttBridge | None:
    """When LOA_MQTT_URL is set: a started bridge that ingests device events, the `mqtt`
    driver for third-party devices, and MQTT wake-ups (`sync`) for Loa's agents."""
    if not loa.settings.mqtt_url:
        return None
    bridge = MqttBridge(
        BrokerAddress.parse(loa.settings.mqtt_url),
        client_id or default_client_id("scheduler"),
        loa,
    )
    loa.drivers["mqtt"] = MqttDriver(bridge, loa.now, loa.settings.public_url or "")
    agent = loa.drivers.get("agent")
    if isinstance(agent, AgentDriver):
        agent.push = bridge.wake
    bridge.start()
    return bridge
