"""The server's MQTT bridge: commands out to endpoints, device events into the as-run log.

One paho client per process, with a stable client id given by the caller (one per
process role: `loa-<host>-scheduler`, ...) and a persistent session (MQTT 5:
clean_start off and a session expiry; MQTT 3.1.1: clean_session off), so events that
devices publish while this process is down wait for it at the broker.

- Out: `publish_command(endpoint_id, payload)` sends JSON to `loa/ep/{id}/cmd` at QoS 1.
  paho keeps every QoS 1 message until the broker acknowledges it and sends it again
  after a reconnect; no limit on messages in flight, so a slot's thousands of `play`
  commands leave at once.
- In: `loa/ep/+/event`, one report per message (the HTTP `reports` element). Messages
  are handed to one ingest thread and applied in batches, one transaction per batch and
  a SAVEPOINT per event, so one bad event is rejected alone. Each message is
  acknowledged to the broker only after its batch is committed (paho's manual ack): a
  crash between receipt and commit makes the broker deliver it again, and applying a
  report twice changes nothing.

Topics and payloads for device vendors: docs/mqtt.md.
"""

from __future__ import annotations

import json
import logging
import math
import queue
import re
import socket
import threading
from collections import Counter, deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from sqlalchemy import select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from scheduler import broadcasts as bc
from scheduler.context import Loa
from scheduler.drivers.base import DriverError
from scheduler.errors import InvalidInput, LoaError, NotFound
from scheduler.health import Beat, Facts
from scheduler.models import Endpoint

log = logging.getLogger(__name__)

COMMAND_TOPIC = "loa/ep/{endpoint_id}/cmd"
EVENT_TOPIC = "loa/ep/{endpoint_id}/event"
ERROR_TOPIC = "loa/ep/{endpoint_id}/error"  # why an event was rejected (QoS 0, informative)
HEARTBEAT_TOPIC = "loa/ep/{endpoint_id}/heartbeat"  # "I am alive" (QoS 0), no database write
EVENTS = "loa/ep/+/event"
HEARTBEATS = "loa/ep/+/heartbeat"
_EVENT_TOPIC = re.compile(r"loa/ep/([1-9][0-9]{0,17})/event")
_HEARTBEAT_TOPIC = re.compile(r"loa/ep/([1-9][0-9]{0,17})/heartbeat")
_FACTS = frozenset(
    ("agent_version", "cache_free_bytes", "clock_offset_seconds", "missing_audio", "cache_error")
)

QOS = 1
KEEPALIVE_SECONDS = 30
SESSION_EXPIRY_SECONDS = 7 * 24 * 3600  # MQTT 5: how long the broker keeps our session
BATCH_SIZE = 5000  # events per transaction, at most (it is whatever is waiting)
QUEUED = "the MQTT broker is unreachable; the command waits to be sent when it is back"
RETRY_SECONDS = 1.0  # after the database refused a whole batch (locked, unreachable)


@dataclass(frozen=True)
class BrokerAddress:
    """`mqtt://[user[:password]@]host[:1883]` or `mqtts://…` (TLS, default port 8883)."""

    host: str
    port: int
    tls: bool = False
    username: str | None = None
    password: str | None = None

    @classmethod
    def parse(cls, url: str) -> BrokerAddress:
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
            raise ValueError(f"an MQTT URL looks like mqtt://host:1883, got {url!r}")
        tls = parts.scheme == "mqtts"
        return cls(
            host=parts.hostname,
            port=parts.port or (8883 if tls else 1883),
            tls=tls,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
        )


def encode(payload: dict[str, Any]) -> bytes:
    """A command or event as compact UTF-8 JSON."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


def default_client_id(role: str) -> str:
    """A client id stable across restarts of one process role on one host."""
    return f"loa-{socket.gethostname()}-{role}"[:64]


# --- device events -> as-run log -----------------------------------------------------------


@dataclass(frozen=True)
class EventOutcome:
    """What became of one device event: applied (maybe changing nothing), or rejected."""

    endpoint_id: int | None
    report: bc.PlayReport | None
    changed: bool = False
    error: str | None = None  # a machine code (unknown_delivery, invalid_json, ...)
    detail: str | None = None

    @property
    def accepted(self) -> bool:
        return self.error is None


def endpoint_of(topic: str) -> int:
    """The endpoint id in `loa/ep/{id}/event`; InvalidInput for any other topic."""
    match = _EVENT_TOPIC.fullmatch(topic)
    if match is None:
        raise InvalidInput(f"not an endpoint event topic: {topic!r}", "invalid_topic")
    return int(match.group(1))


def decode_event(topic: str, payload: bytes) -> tuple[int, bc.PlayReport]:
    """The endpoint and the report of one event message; InvalidInput when malformed."""
    endpoint_id = endpoint_of(topic)
    try:
        data = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise InvalidInput("the payload must be one JSON object in UTF-8", "invalid_json") from None
    return endpoint_id, bc.parse_report(data)


def decode_heartbeat(topic: str, payload: bytes, now: datetime) -> tuple[int, Beat] | None:
    """The endpoint and what it says of itself in `loa/ep/{id}/heartbeat`: an empty payload
    (alive, nothing more), or the facts an agent's poll gives (`agent_version`,
    `cache_free_bytes`, `clock_offset_seconds`, `missing_audio`, `cache_error`; absent
    ones are cleared). None when malformed."""
    match = _HEARTBEAT_TOPIC.fullmatch(topic)
    if match is None:
        return None
    endpoint_id = int(match.group(1))
    if not payload.strip():
        return endpoint_id, Beat(now)
    try:
        data = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    if not isinstance(data, dict) or set(data) - _FACTS:
        return None
    texts = {k: data.get(k) for k in ("agent_version", "cache_error")}
    counts = {k: data.get(k) for k in ("cache_free_bytes", "missing_audio")}
    offset = data.get("clock_offset_seconds")
    limits = {"agent_version": 64, "cache_error": 32}  # the columns' sizes
    if any(
        v is not None and not (isinstance(v, str) and len(v) <= limits[k]) for k, v in texts.items()
    ):
        return None
    if any(v is not None and not (type(v) is int and 0 <= v < 2**63) for v in counts.values()):
        return None
    if offset is not None and not (type(offset) in (int, float) and math.isfinite(offset)):
        return None
    facts = Facts(
        agent_version=texts["agent_version"],
        cache_free_bytes=counts["cache_free_bytes"],
        clock_offset_seconds=None if offset is None else float(offset),
        missing_audio=counts["missing_audio"],
        cache_error=texts["cache_error"],
    )
    return endpoint_id, Beat(now, facts)


def _rejected(endpoint_id: int | None, exc: Exception) -> EventOutcome:
    if isinstance(exc, LoaError):
        return EventOutcome(endpoint_id, None, error=exc.code, detail=exc.detail)
    return EventOutcome(endpoint_id, None, error="internal_error", detail=repr(exc))


def apply_events(loa: Loa, events: Sequence[tuple[str, bytes]]) -> list[EventOutcome]:
    """Apply device events `(topic, payload)` in one transaction, exactly as the HTTP API
    applies reports (`broadcasts.record_report`). A malformed event, an unknown endpoint
    or delivery, another endpoint's delivery: that event is rejected, the others applied.
    Each event's endpoint counts as seen (a heartbeat). Raises only when the database
    refuses the whole batch (OperationalError: locked, unreachable).

    `record_report` refuses an event before it changes anything, so the batch is first
    applied without savepoints and flushed once (a SAVEPOINT makes the session flush
    before it, per event, at ten times the cost). If anything else fails, the batch is
    rolled back and applied again with a SAVEPOINT per event: the culprit alone is rejected.
    """
    outcomes: list[EventOutcome | None] = [None] * len(events)
    parsed: list[tuple[int, int, bc.PlayReport]] = []
    for i, (topic, payload) in enumerate(events):
        try:
            endpoint_id, report = decode_event(topic, payload)
        except LoaError as exc:
            try:
                known: int | None = endpoint_of(topic)
            except LoaError:
                known = None
            outcomes[i] = _rejected(known, exc)
        else:
            parsed.append((i, endpoint_id, report))
    if parsed:
        now = loa.now()
        try:
            with loa.transaction() as session:
                seen = _record(session, parsed, outcomes, now, savepoints=False)
        except OperationalError:
            raise
        except Exception:
            log.exception(
                "a batch of %d device events failed; again, one SAVEPOINT each", len(parsed)
            )
            with loa.transaction() as session:
                seen = _record(session, parsed, outcomes, now, savepoints=True)
        for endpoint_id in seen:
            loa.heartbeats.beat(endpoint_id, Beat(now))
    assert all(o is not None for o in outcomes)
    return [o for o in outcomes if o is not None]


def _record(
    session: Session,
    parsed: list[tuple[int, int, bc.PlayReport]],
    outcomes: list[EventOutcome | None],
    now: datetime,
    *,
    savepoints: bool,
) -> set[int]:
    """Apply parsed events in `session`, filling `outcomes`; returns the endpoints seen."""
    endpoint_ids = sorted({e for _, e, _ in parsed})
    if savepoints:
        # pysqlite opens its transaction only at the first write: without this one, the
        # first RELEASE SAVEPOINT would commit on its own.
        session.execute(
            update(Endpoint)
            .where(Endpoint.id.in_(endpoint_ids))
            .values(last_seen_at=now)
            .execution_options(synchronize_session=False)
        )
    endpoints = {
        e.id: e for e in session.scalars(select(Endpoint).where(Endpoint.id.in_(endpoint_ids)))
    }
    # The deliveries, their broadcasts and those broadcasts' deliveries in a few queries,
    # not a few per event; held here, as the session's identity map holds them weakly.
    loaded = bc.load_deliveries(session, [r.delivery_id for _, _, r in parsed])
    for i, endpoint_id, report in parsed:
        endpoint = endpoints.get(endpoint_id)
        if endpoint is None:
            unknown = NotFound(f"no endpoint has the id {endpoint_id}", "unknown_endpoint")
            outcomes[i] = _rejected(endpoint_id, unknown)
            continue
        try:
            if savepoints:
                with session.begin_nested():
                    changed = bc.record_report(session, endpoint, report, now)
            else:
                changed = bc.record_report(session, endpoint, report, now)
        except LoaError as exc:  # refused before it changed anything
            outcomes[i] = _rejected(endpoint_id, exc)
        except Exception as exc:
            if not savepoints:
                raise  # the batch is rolled back and applied again, a SAVEPOINT each
            log.exception("endpoint %s: event %r failed", endpoint_id, report)
            outcomes[i] = _rejected(endpoint_id, exc)
        else:
            outcomes[i] = EventOutcome(endpoint_id, report, changed=changed)
    session.flush()
    del loaded
    return set(endpoints)


# --- the bridge ---------------------------------------------------------------------------

EventListener = Callable[[EventOutcome], None]


@dataclass(frozen=True)
class _Received:
    topic: str
    payload: bytes
    mid: int
    qos: int
    connection: int  # which connection it came on: a mid means nothing on another one


class MqttBridge:
    """One process's MQTT client: QoS 1 commands out, device events in (see module doc)."""

    def __init__(
        self,
        address: BrokerAddress,
        client_id: str,
        loa: Loa | None = None,
        *,
        protocol: MQTTProtocolVersion = MQTTProtocolVersion.MQTTv5,
        share_group: str | None = None,
        batch_size: int = BATCH_SIZE,
        reconnect_max_seconds: int = 8,
    ) -> None:
        """With `loa`, the bridge ingests device events into its database; without, it only
        publishes. `share_group` makes several server processes share the event stream
        (`$share/<group>/loa/ep/+/event`) instead of each receiving every event."""
        self.address = address
        self.client_id = client_id
        self.loa = loa
        self.protocol = protocol
        self.batch_size = batch_size
        share = f"$share/{share_group}/" if share_group else ""
        self.event_filter = share + EVENTS
        self.heartbeat_filter = share + HEARTBEATS
        self.listeners: list[EventListener] = []
        self.stats: Counter[str] = Counter()  # received, applied, changed, rejected:<code>
        self.rejections: deque[EventOutcome] = deque(maxlen=100)  # the latest, for the record
        self._inbox: queue.Queue[_Received | None] = queue.Queue()
        self._connected = threading.Event()
        self._closed = threading.Event()
        self._ack_lock = threading.Lock()
        self._connection = 0
        self._worker: threading.Thread | None = None
        self._started = False

        client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=protocol,
            clean_session=None if protocol == paho.MQTTv5 else False,
            manual_ack=True,
        )
        client.max_inflight_messages_set(0)  # no limit: paho's limit costs O(n) per ack
        client.max_queued_messages_set(0)
        client.reconnect_delay_set(1, reconnect_max_seconds)
        if address.username is not None:
            client.username_pw_set(address.username, address.password)
        if address.tls:
            client.tls_set()
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        self.client = client

    # lifecycle

    def start(self) -> None:
        """Connect in the background (retrying while the broker is away) and start ingesting."""
        if self._started:
            return
        self._started = True
        properties = None
        if self.protocol == paho.MQTTv5:
            properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            properties.SessionExpiryInterval = SESSION_EXPIRY_SECONDS
        self.client.connect_async(
            self.address.host,
            self.address.port,
            keepalive=KEEPALIVE_SECONDS,
            clean_start=False if self.protocol == paho.MQTTv5 else paho.MQTT_CLEAN_START_FIRST_ONLY,
            properties=properties,
        )
        if self.loa is not None:
            self._worker = threading.Thread(
                target=self._ingest_loop, name=f"mqtt-ingest-{self.client_id}", daemon=True
            )
            self._worker.start()
        self.client.loop_start()

    def wait_connected(self, timeout: float) -> bool:
        return self._connected.wait(timeout)

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def close(self) -> None:
        """Stop ingesting and disconnect; the session stays at the broker. Events received
        and not yet committed were not acknowledged: the broker sends them again."""
        if self._closed.is_set():
            return
        self._closed.set()
        self._inbox.put(None)
        if self._worker is not None:
            self._worker.join(timeout=30)
        if self._started:
            self.client.disconnect()
            self.client.loop_stop()
        self._connected.clear()

    # out

    def publish_command(self, endpoint_id: int, payload: dict[str, Any]) -> None:
        """Send a command to `loa/ep/{endpoint_id}/cmd` at QoS 1. Raises DriverError when
        the broker is unreachable (the command waits in memory and goes out when the
        connection is back) or when it cannot even be queued."""
        (error,) = self.publish_commands([(endpoint_id, payload)])
        if error is not None:
            raise error

    def publish_commands(
        self, commands: Iterable[tuple[int, dict[str, Any]]]
    ) -> list[DriverError | None]:
        """`publish_command` for many, in order: one error (or None) per command, no raise."""
        return self.publish_payloads((e, encode(payload)) for e, payload in commands)

    def publish_payloads(self, payloads: Iterable[tuple[int, bytes]]) -> list[DriverError | None]:
        """Commands already encoded as JSON, in order: one error (or None) per command."""
        if self._closed.is_set():
            return [DriverError("the MQTT bridge is closed") for _ in payloads]
        errors: list[DriverError | None] = []
        publish = self.client.publish
        for endpoint_id, data in payloads:
            rc = publish(f"loa/ep/{endpoint_id}/cmd", data, qos=QOS).rc
            if rc == MQTTErrorCode.MQTT_ERR_SUCCESS:
                errors.append(None)
            elif rc == MQTTErrorCode.MQTT_ERR_NO_CONN:
                errors.append(DriverError(QUEUED, retry=False))  # paho sends it on reconnect
            else:
                errors.append(DriverError(f"MQTT refused the command: {paho.error_string(rc)}"))
        return errors

    def wake(self, endpoint_id: int) -> None:
        """Tell an endpoint its schedule changed (`{"action": "sync"}`); never raises."""
        (error,) = self.publish_commands([(endpoint_id, {"action": "sync"})])
        if error is not None:
            log.debug("sync for endpoint %s: %s", endpoint_id, error)

    # paho callbacks (the network thread)

    def _on_connect(
        self,
        client: paho.Client,
        userdata: Any,
        flags: paho.ConnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason_code.is_failure:
            log.error("MQTT broker %s refused us: %s", self.address.host, reason_code)
            return
        with self._ack_lock:
            self._connection += 1
        log.info(
            "MQTT connected to %s:%s as %s (session %s)",
            self.address.host,
            self.address.port,
            self.client_id,
            "resumed" if flags.session_present else "new",
        )
        if self.loa is not None:
            # Always: a broker killed before it saved our session has forgotten it.
            # Connected counts from the broker's SUBACK: an event published before it
            # would be lost on a new session.
            client.subscribe([(self.event_filter, QOS), (self.heartbeat_filter, 0)])
        else:
            self._connected.set()

    def _on_subscribe(
        self,
        client: paho.Client,
        userdata: Any,
        mid: int,
        reason_codes: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        if any(code.is_failure for code in reason_codes):
            log.error("MQTT broker %s refused our subscriptions: %s", self.address.host,
                      reason_codes)  # fmt: skip
        self._connected.set()

    def _on_disconnect(
        self,
        client: paho.Client,
        userdata: Any,
        flags: paho.DisconnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        self._connected.clear()
        if not self._closed.is_set():
            log.warning(
                "MQTT connection to %s lost (%s); reconnecting", self.address.host, reason_code
            )

    def _on_message(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        if self.loa is None:
            return
        if message.topic.endswith("/heartbeat"):  # only held in memory: no need to queue it
            beat = decode_heartbeat(message.topic, bytes(message.payload), self.loa.now())
            if beat is not None:
                self.loa.heartbeats.beat(*beat)
            if message.qos > 0:
                client.ack(message.mid, message.qos)
            return
        self._inbox.put(
            _Received(
                message.topic, bytes(message.payload), message.mid, message.qos, self._connection
            )
        )

    # in

    def _ingest_loop(self) -> None:
        while True:
            first = self._inbox.get()
            if first is None:
                return
            batch = [first]
            while len(batch) < self.batch_size:
                try:
                    more = self._inbox.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._inbox.put(None)  # seen again after this batch
                    break
                batch.append(more)
            if not self._ingest(batch):
                return

    def _ingest(self, batch: list[_Received]) -> bool:
        """Apply a batch, then acknowledge it to the broker. False when closing before the
        database took it (the broker keeps the messages for the next connection)."""
        assert self.loa is not None
        events = [(m.topic, m.payload) for m in batch]
        while True:
            try:
                outcomes = apply_events(self.loa, events)
                break
            except OperationalError as exc:  # the database is locked or away: not the events' fault
                log.warning("device events wait for the database: %s", exc)
                if self._closed.wait(RETRY_SECONDS):
                    return False
            except Exception:  # find the culprit by applying one at a time
                log.exception("a batch of %d device events failed; applying one by one", len(batch))
                outcomes = [self._apply_alone(event) for event in events]
                break
        with self._ack_lock:
            for m in batch:
                if m.qos > 0 and m.connection == self._connection:
                    self.client.ack(m.mid, m.qos)
        self._account(outcomes)
        return True

    def _apply_alone(self, event: tuple[str, bytes]) -> EventOutcome:
        assert self.loa is not None
        try:
            return apply_events(self.loa, [event])[0]
        except Exception as exc:
            log.exception("device event on %s failed", event[0])
            return _rejected(None, exc)

    def _account(self, outcomes: list[EventOutcome]) -> None:
        for outcome in outcomes:
            self.stats["received"] += 1
            if outcome.accepted:
                self.stats["applied"] += 1
                self.stats["changed"] += outcome.changed
            else:
                self.stats[f"rejected:{outcome.error}"] += 1
                self.rejections.append(outcome)
                log.warning(
                    "endpoint %s: event rejected (%s): %s",
                    outcome.endpoint_id,
                    outcome.error,
                    outcome.detail,
                )
                if outcome.endpoint_id is not None:
                    error = {"error": outcome.error, "detail": outcome.detail}
                    self.client.publish(
                        ERROR_TOPIC.format(endpoint_id=outcome.endpoint_id),
                        json.dumps(error, ensure_ascii=False).encode(),
                        qos=0,
                    )
            for listener in self.listeners:
                try:
                    listener(outcome)
                except Exception:  # a listener never stops ingestion
                    log.exception("MQTT event listener failed")
