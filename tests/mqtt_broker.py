"""MQTT for tests: a real Mosquitto on a free loopback port, and a fake third-party device.

Mosquitto gets a generated config in a temporary directory, with persistence on and
saved every second, so a broker killed with SIGKILL and started again on the same port
comes back with the sessions it had (as a production broker with autosave would). As
root it is told to stay root, so it can write its persistence file there.

Use the `mosquitto` fixture by importing it into a test module
(`from tests.mqtt_broker import mosquitto`), or `running_mosquitto()` directly.
"""

from __future__ import annotations

import getpass
import json
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from scheduler.clock import Clock, SystemClock
from tests.conftest import free_port

MOSQUITTO = "/usr/sbin/mosquitto"

CONFIG = """\
listener {port} 127.0.0.1
allow_anonymous true
user {user}
persistence true
persistence_location {data}/
autosave_interval 1
max_queued_messages 1000000
max_inflight_messages 1000
log_dest file {data}/mosquitto.log
log_type error
log_type warning
log_type notice
"""


class Mosquitto:
    """One broker; `kill` and `start` again keep its port and its saved state."""

    def __init__(self, data: Path, port: int | None = None) -> None:
        self.data = data
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.config = data / "mosquitto.conf"
        self.config.write_text(CONFIG.format(port=self.port, user=getpass.getuser(), data=data))

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self, timeout: float = 10) -> None:
        self.process = subprocess.Popen(
            [MOSQUITTO, "-c", str(self.config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"mosquitto exited at start: {self.log()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError(f"mosquitto did not listen on {self.port}: {self.log()}")

    def kill(self) -> None:
        """SIGKILL: no goodbye to clients, no last save."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None

    def log(self) -> str:
        path = self.data / "mosquitto.log"
        return path.read_text(errors="replace") if path.exists() else ""


@contextmanager
def running_mosquitto() -> Iterator[Mosquitto]:
    data = Path(tempfile.mkdtemp(prefix="loa-mosquitto-"))
    broker = Mosquitto(data)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()
        shutil.rmtree(data, ignore_errors=True)


@pytest.fixture
def mosquitto() -> Iterator[Mosquitto]:
    with running_mosquitto() as broker:
        yield broker


def client(broker: Mosquitto, client_id: str, clean: bool = True) -> paho.Client:
    """A paho client (MQTT 3.1.1), connected with its network thread running."""
    c = paho.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=paho.MQTTv311,
        clean_session=clean,
    )
    c.max_inflight_messages_set(0)
    c.reconnect_delay_set(1, 2)
    c.connect("127.0.0.1", broker.port)
    c.loop_start()
    return c


def wait_for(condition: Callable[[], bool], timeout: float = 10, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or condition}")
        time.sleep(0.02)


class FakeDevice:
    """A third-party loudspeaker that speaks Loa's MQTT protocol (docs/mqtt.md) and
    nothing else: persistent session, `play` at its time (in real time, for its
    duration), `stop`, started/finished/interrupted/missed reports at QoS 1; a command
    for a delivery it already handled is ignored (QoS 1 may deliver twice)."""

    def __init__(self, broker: Mosquitto, endpoint_id: int, clock: Clock | None = None) -> None:
        self.endpoint_id = endpoint_id
        self.clock = clock or SystemClock()
        self.commands: list[dict[str, Any]] = []  # every command received, repeats included
        self.played: list[int] = []  # deliveries it started
        self._handled: set[int] = set()
        self._stops: dict[int, threading.Event] = {}
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"device-{endpoint_id}",
            protocol=paho.MQTTv311,
            clean_session=False,
        )
        self.client.reconnect_delay_set(1, 2)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = lambda *_: self._subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", broker.port)
        self.client.loop_start()
        assert self._subscribed.wait(10), "the fake device could not subscribe"

    def close(self) -> None:
        self.client.disconnect()
        with self._lock:
            for stop in self._stops.values():
                stop.set()
        self.client.loop_stop()

    def report(self, delivery_id: int, kind: str, at: datetime, **extra: Any) -> None:
        event = {"delivery_id": delivery_id, "kind": kind, "at": at.isoformat(), **extra}
        self.client.publish(f"loa/ep/{self.endpoint_id}/event", json.dumps(event), qos=1)

    def _on_connect(self, client: paho.Client, *_: Any) -> None:
        client.subscribe(f"loa/ep/{self.endpoint_id}/cmd", qos=1)

    def _on_message(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        command = json.loads(message.payload)
        with self._lock:
            self.commands.append(command)
            delivery_id = command.get("delivery_id")
            if command["action"] == "stop":
                stop = self._stops.get(delivery_id)
                if stop is not None:
                    stop.set()
                return
            if command["action"] != "play" or delivery_id in self._handled:
                return
            self._handled.add(delivery_id)
            stop = self._stops[delivery_id] = threading.Event()
        threading.Thread(target=self._play, args=(command, stop), daemon=True).start()

    def _play(self, command: dict[str, Any], stop: threading.Event) -> None:
        delivery_id = command["delivery_id"]
        at = datetime.fromisoformat(command["at"])
        until = datetime.fromisoformat(command["play_until"])
        wait = (at - self.clock.now()).total_seconds()
        if wait > 0 and stop.wait(wait):
            self.report(delivery_id, "missed", self.clock.now(), detail="stopped before it started")
            return
        started = self.clock.now()
        if started > until:
            self.report(delivery_id, "missed", started, detail="the command came too late")
            return
        with self._lock:
            self.played.append(delivery_id)
        self.report(delivery_id, "started", started)
        interrupted = stop.wait(command["duration_seconds"])
        ended = self.clock.now()
        if interrupted:
            self.report(delivery_id, "interrupted", ended, detail="stopped by the server")
        else:
            self.report(delivery_id, "finished", ended, sha256=command["sha256"])
