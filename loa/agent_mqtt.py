"""MQTT wake-ups for the reference agent: commands on `loa/ep/{id}/cmd` call back at once.

The agent still takes its schedule and audio over HTTP; MQTT only tells it *when* to
look (`sync`), so an emergency reaches it within the broker's latency without a
long-poll held open. `play` and `stop` are passed on too, for a caller that wants them.
A persistent session (clean_session off, a stable client id) keeps commands sent while
the agent is offline; after every (re)subscription `on_connect` is called, because some
may still have been lost (a broker restarted without its saved state): the agent
should sync once then.

Only paho and the standard library: the agent does not import the server's packages.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

log = logging.getLogger("loa.agent.mqtt")

ACTIONS = ("sync", "play", "stop")
Command = dict[str, Any]


class CommandListener:
    """Subscribes to one endpoint's command topic and calls `on_command` for each command
    it understands, from paho's network thread (hand the work over, do not block)."""

    def __init__(
        self,
        url: str,
        endpoint_id: int,
        on_command: Callable[[Command], None],
        *,
        on_connect: Callable[[], None] | None = None,
        client_id: str | None = None,
        reconnect_max_seconds: int = 30,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
            raise ValueError(f"an MQTT URL looks like mqtt://host:1883, got {url!r}")
        self.host = parts.hostname
        self.port = parts.port or (8883 if parts.scheme == "mqtts" else 1883)
        self.topic = f"loa/ep/{endpoint_id}/cmd"
        self.on_command = on_command
        self.on_connect = on_connect
        self._connected = threading.Event()
        self._stopped = False
        client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id or f"loa-agent-{endpoint_id}",
            protocol=paho.MQTTv311,
            clean_session=False,
        )
        if parts.username:
            client.username_pw_set(
                unquote(parts.username), unquote(parts.password) if parts.password else None
            )
        if parts.scheme == "mqtts":
            client.tls_set()
        client.reconnect_delay_set(1, reconnect_max_seconds)
        client.on_connect = self._connected_cb
        client.on_disconnect = self._disconnected_cb
        client.on_message = self._message_cb
        client.on_subscribe = self._subscribed_cb
        self.client = client

    def start(self) -> None:
        """Connect in the background; paho retries while the broker is unreachable."""
        self.client.connect_async(self.host, self.port, keepalive=60)
        self.client.loop_start()

    def stop(self) -> None:
        self._stopped = True
        self.client.disconnect()
        self.client.loop_stop()
        self._connected.clear()

    @property
    def connected(self) -> bool:
        """Connected and subscribed: commands published from now on arrive."""
        return self._connected.is_set()

    def wait_connected(self, timeout: float) -> bool:
        return self._connected.wait(timeout)

    def _connected_cb(
        self,
        client: paho.Client,
        userdata: Any,
        flags: paho.ConnectFlags,
        reason_code: ReasonCode,
        properties: Any,
    ) -> None:
        if reason_code.is_failure:
            log.error("MQTT broker refused the agent: %s", reason_code)
            return
        client.subscribe(self.topic, qos=1)  # always: the broker may have lost our session

    def _subscribed_cb(
        self, client: paho.Client, userdata: Any, mid: int, reason_codes: Any, properties: Any
    ) -> None:
        self._connected.set()
        log.info("MQTT wake-ups on %s", self.topic)
        if self.on_connect is not None:
            self._call(self.on_connect)

    def _disconnected_cb(
        self,
        client: paho.Client,
        userdata: Any,
        flags: paho.DisconnectFlags,
        reason_code: ReasonCode,
        properties: Any,
    ) -> None:
        self._connected.clear()
        if not self._stopped:
            log.warning("MQTT connection lost (%s); reconnecting", reason_code)

    def _message_cb(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        try:
            command = json.loads(message.payload.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            log.warning("ignored a command that is not JSON on %s", message.topic)
            return
        if not isinstance(command, dict) or command.get("action") not in ACTIONS:
            log.warning("ignored an unknown command on %s: %.200r", message.topic, command)
            return
        self._call(lambda: self.on_command(command))

    @staticmethod
    def _call(callback: Callable[[], None]) -> None:
        try:
            callback()
        except Exception:  # the network thread must survive a failing callback
            log.exception("MQTT command callback failed")
