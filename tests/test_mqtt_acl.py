"""The broker ACL Loa ships (deploy/mosquitto/loa.acl) on a real Mosquitto: a device reads
only its own commands and reports only for itself; the server's account sees everything."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from tests.mqtt_broker import Mosquitto, wait_for

ACL = Path(__file__).parent.parent / "deploy" / "mosquitto" / "loa.acl"
PASSWORDS = {"loa-server": "server-secret", "35": "token-of-35", "36": "token-of-36"}


@pytest.fixture
def broker() -> Iterator[Mosquitto]:
    data = Path(tempfile.mkdtemp(prefix="loa-mosquitto-acl-"))
    broker = Mosquitto(data)
    passwd = data / "passwd"
    passwd.touch()
    for user, password in PASSWORDS.items():
        subprocess.run(["mosquitto_passwd", "-b", str(passwd), user, password], check=True)
    shutil.copy(ACL, data / "loa.acl")
    config = broker.config.read_text().replace("allow_anonymous true", "allow_anonymous false")
    config += f"password_file {passwd}\nacl_file {data / 'loa.acl'}\n"
    broker.config.write_text(config)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()
        shutil.rmtree(data, ignore_errors=True)


class Client:
    """A logged-in client that keeps what it receives and its subscriptions' answers."""

    def __init__(self, broker: Mosquitto, user: str, password: str | None = None) -> None:
        self.received: list[tuple[str, bytes]] = []
        self.granted: dict[int, list[ReasonCode]] = {}
        self.connected = threading.Event()
        self.refused: ReasonCode | None = None
        self.c = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"acl-{user}")
        self.c.username_pw_set(user, PASSWORDS.get(user) if password is None else password)
        self.c.on_connect = self._on_connect
        self.c.on_message = lambda _c, _u, m: self.received.append((m.topic, m.payload))
        self.c.on_subscribe = lambda _c, _u, mid, codes, _p: self.granted.__setitem__(mid, codes)
        self.c.connect("127.0.0.1", broker.port)
        self.c.loop_start()

    def _on_connect(
        self, _c: paho.Client, _u: object, _f: object, code: ReasonCode, _p: object
    ) -> None:
        if code.is_failure:
            self.refused = code
        self.connected.set()

    def subscribe(self, topic: str) -> bool:
        """Whether the broker grants the subscription."""
        _, mid = self.c.subscribe(topic, qos=1)
        wait_for(lambda: mid in self.granted, what=f"SUBACK for {topic}")
        return not self.granted[mid][0].is_failure

    def publish(self, topic: str, payload: bytes) -> None:
        self.c.publish(topic, payload, qos=1).wait_for_publish(timeout=5)

    def close(self) -> None:
        self.c.loop_stop()
        self.c.disconnect()


def test_a_device_reads_its_own_commands_and_reports_only_for_itself(broker: Mosquitto) -> None:
    server, device, other = (Client(broker, user) for user in ("loa-server", "35", "36"))
    try:
        for c in (server, device, other):
            assert c.connected.wait(5) and c.refused is None
        assert server.subscribe("loa/ep/+/event")
        assert device.subscribe("loa/ep/35/cmd")
        # Another loudspeaker's commands: Mosquitto may grant the subscription (MQTT 3.1.1)
        # but never delivers what the ACL does not let the device read.
        device.subscribe("loa/ep/36/cmd")
        device.subscribe("loa/#")
        server.publish("loa/ep/35/cmd", b'{"action": "sync"}')
        server.publish("loa/ep/36/cmd", b'{"action": "sync"}')
        wait_for(lambda: device.received, what="the device's own command")
        device.publish("loa/ep/36/event", b'{"delivery_id": 1, "kind": "played"}')  # forged
        device.publish("loa/ep/35/event", b'{"delivery_id": 2, "kind": "started"}')
        wait_for(lambda: server.received, what="the device's own event")
        server.publish("loa/ep/35/cmd", b'{"action": "stop"}')  # after the rest, in order
        wait_for(lambda: len(device.received) == 2, what="the device's second command")
        assert device.received == [
            ("loa/ep/35/cmd", b'{"action": "sync"}'),
            ("loa/ep/35/cmd", b'{"action": "stop"}'),
        ]
        assert server.received == [("loa/ep/35/event", b'{"delivery_id": 2, "kind": "started"}')]
    finally:
        for c in (server, device, other):
            c.close()


def test_a_device_with_a_wrong_password_cannot_connect(broker: Mosquitto) -> None:
    intruder = Client(broker, "35", "guessed")
    try:
        assert intruder.connected.wait(5)
        assert intruder.refused is not None
    finally:
        intruder.close()
