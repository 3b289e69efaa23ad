"""MQTT through a real Mosquitto: commands to endpoints, device events into the as-run log,
wake-ups for agents, and what happens when the broker or the server goes away."""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import MQTTProtocolVersion
from sqlalchemy import select

from audio.playout import SilentOutput
from loa.agent import Agent, AgentClient
from loa.agent_mqtt import CommandListener
from scheduler import broadcasts as bc
from scheduler import service
from scheduler.clock import SystemClock
from scheduler.context import Loa, build_loa
from scheduler.dispatch import Dispatcher
from scheduler.drivers.base import PlayItem
from scheduler.drivers.mqtt import MqttDriver, install_mqtt
from scheduler.errors import InvalidInput
from scheduler.models import (
    Broadcast,
    BroadcastEvent,
    DeliveryAttempt,
    Endpoint,
    Priority,
    Status,
)
from scheduler.mqtt import BrokerAddress, MqttBridge, apply_events
from scheduler.settings import Settings
from tests.conftest import ADMIN, CENTRE, THO_BINH, THO_SON, free_port, make_settings
from tests.mqtt_broker import FakeDevice, Mosquitto, client, mosquitto, wait_for
from tests.test_dispatch import broadcast, wait_for_status
from tests.test_scheduling import make_bulletin
from web import create_app
from web.server import make_server, serve_in_thread

pytestmark = pytest.mark.realtime  # scripts/test runs it one test at a time

__all__ = ["mosquitto"]  # the fixture, imported for pytest


def event(endpoint_id: int | str, payload: Any) -> tuple[str, bytes]:
    data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return f"loa/ep/{endpoint_id}/event", data


def report(delivery_id: Any, kind: str, at: datetime, **extra: Any) -> dict[str, Any]:
    return {"delivery_id": delivery_id, "kind": kind, "at": at.isoformat(), **extra}


def two_devices_and_a_broadcast(loa: Loa) -> tuple[Broadcast, int, int]:
    """Thọ Sơn with two MQTT devices and one broadcast for both: (broadcast, a, b)."""
    a, _ = service.create_endpoint(loa, ADMIN, THO_SON, "Cụm A", "mqtt")
    b, _ = service.create_endpoint(loa, ADMIN, THO_SON, "Cụm B", "mqtt")
    (made,) = service.schedule_bulletin(loa, CENTRE, make_bulletin(loa), [THO_SON], None)
    return broadcast(loa, made.id), a.id, b.id


def history(loa: Loa, delivery_id: int) -> list[str]:
    with loa.transaction() as s:
        return list(
            s.scalars(
                select(BroadcastEvent.to_status)
                .where(BroadcastEvent.delivery_id == delivery_id)
                .order_by(BroadcastEvent.id)
            )
        )


# --- validation shared with the HTTP API -------------------------------------------------


@pytest.mark.parametrize(
    ("data", "why"),
    [
        ([], "JSON object"),
        ({"delivery_id": 1, "kind": "started"}, "ISO 8601"),
        ({"delivery_id": "1", "kind": "started", "at": "2026-11-26T01:00:00+00:00"}, "whole"),
        ({"delivery_id": True, "kind": "started", "at": "2026-11-26T01:00:00+00:00"}, "whole"),
        ({"delivery_id": 2**70, "kind": "started", "at": "2026-11-26T01:00:00+00:00"}, "whole"),
        ({"delivery_id": 1, "kind": "exploded", "at": "2026-11-26T01:00:00+00:00"}, "kind"),
        ({"delivery_id": 1, "kind": "started", "at": "2026-11-26T01:00:00"}, "offset"),
        ({"delivery_id": 1, "kind": "started", "at": "yesterday"}, "ISO 8601"),
        ({"delivery_id": 1, "kind": "failed", "at": "2026-11-26T01:00:00Z", "detail": 5}, "text"),
        ({"delivery_id": 1, "kind": "started", "at": "2026-11-26T01:00:00Z", "x": 1}, "x"),
        (
            {"delivery_id": 1, "kind": "started", "at": "2026-11-26T01:00:00Z",
             "clock_offset_seconds": "fast"},
            "seconds",
        ),
    ],
)  # fmt: skip
def test_a_malformed_report_is_refused_with_the_reason(data: Any, why: str) -> None:
    with pytest.raises(InvalidInput, match=why) as caught:
        bc.parse_report(data)
    assert caught.value.code == "invalid_report"


def test_a_well_formed_report_is_read_in_utc() -> None:
    parsed = bc.parse_report(
        {"delivery_id": 7, "kind": "started", "at": "2026-11-26T08:00:00+07:00",
         "clock_offset_seconds": -1}
    )  # fmt: skip
    assert parsed == bc.PlayReport(7, "started", datetime(2026, 11, 26, 1, tzinfo=UTC), None,
                                   None, -1.0)  # fmt: skip


# --- device events -> as-run log (no broker needed) ----------------------------------------


def test_one_bad_event_in_a_batch_is_rejected_alone_and_the_rest_applied(loa: Loa) -> None:
    b, a, other = two_devices_and_a_broadcast(loa)
    mine, theirs = (d.id for d in b.deliveries)
    now = loa.now()
    outcomes = apply_events(
        loa,
        [
            event(a, report(mine, "started", now)),
            event(a, b"{not json"),
            event(a, b"\xff\xfe"),
            event(a, [1, 2]),
            event(a, report(999999, "started", now)),  # unknown delivery
            event(a, report(theirs, "started", now)),  # another endpoint's delivery
            event(a, report(mine, "exploded", now)),  # unknown kind
            event(4242, report(mine, "started", now)),  # unknown endpoint
            event("x", report(mine, "started", now)),  # not an endpoint's topic
            event(a, report(mine, "finished", now + timedelta(seconds=3))),
            event(a, report(mine, "finished", now + timedelta(seconds=3))),  # a QoS 1 repeat
            event(other, report(theirs, "missed", now, detail="no power")),
        ],
    )
    assert [o.error for o in outcomes] == [
        None, "invalid_json", "invalid_json", "invalid_report", "unknown_delivery",
        "wrong_endpoint", "invalid_report", "unknown_endpoint", "invalid_topic",
        None, None, None,
    ]  # fmt: skip
    assert [o.changed for o in outcomes if o.accepted] == [True, True, False, True]
    assert history(loa, mine) == [Status.PLAYING, Status.PLAYED]
    assert history(loa, theirs) == [Status.MISSED]
    after = broadcast(loa, b.id)
    assert after.status == Status.PARTIAL
    assert after.started_at == now and after.finished_at == now + timedelta(seconds=3)


# --- through the broker --------------------------------------------------------------------


def bridge_for(
    broker: Mosquitto,
    loa: Loa | None,
    client_id: str = "loa-test",
    protocol: MQTTProtocolVersion = MQTTProtocolVersion.MQTTv5,
) -> MqttBridge:
    address = BrokerAddress.parse(broker.url)
    bridge = MqttBridge(address, client_id, loa, protocol=protocol, reconnect_max_seconds=1)
    bridge.start()
    assert bridge.wait_connected(10)
    return bridge


def test_device_events_reach_the_log_and_a_malformed_one_is_answered_on_the_error_topic(
    loa: Loa, mosquitto: Mosquitto
) -> None:
    b, a, _ = two_devices_and_a_broadcast(loa)
    mine = b.deliveries[0].id
    bridge = bridge_for(mosquitto, loa)
    device = client(mosquitto, "device-a")
    errors: list[dict[str, Any]] = []
    device.on_message = lambda c, u, m: errors.append(json.loads(m.payload))
    device.subscribe(f"loa/ep/{a}/error", qos=1)
    wait_for(lambda: bool(device.is_connected()))
    now = loa.now()
    for payload in (report(mine, "started", now), b"\x00garbage", report(mine, "finished", now)):
        data = payload if isinstance(payload, bytes) else json.dumps(payload)
        device.publish(f"loa/ep/{a}/event", data, qos=1).wait_for_publish(5)
    wait_for(lambda: bridge.stats["received"] == 3, what="three events ingested")
    assert bridge.stats["applied"] == 2 and bridge.stats["rejected:invalid_json"] == 1
    assert history(loa, mine) == [Status.PLAYING, Status.PLAYED]
    wait_for(lambda: len(errors) == 1, what="the rejection on the error topic")
    assert errors[0]["error"] == "invalid_json"
    device.disconnect()
    bridge.close()


def test_a_heartbeat_on_mqtt_shows_an_idle_device_up_with_what_it_says_of_itself(
    loa: Loa, mosquitto: Mosquitto
) -> None:
    device, _ = service.create_endpoint(loa, ADMIN, THO_SON, "Cụm A", "mqtt")
    bridge = bridge_for(mosquitto, loa)
    raw = client(mosquitto, "device-a")
    topic = f"loa/ep/{device.id}/heartbeat"
    raw.publish(topic, b"[not, json", qos=1).wait_for_publish(5)  # ignored
    raw.publish(topic, json.dumps({"agent_version": "acme-2.1", "cache_free_bytes": 10**9}))

    def state() -> Endpoint:
        service.sweep_health(loa)
        with loa.transaction() as s:
            found = s.get(Endpoint, device.id)
            assert found is not None
            return found

    wait_for(lambda: state().state == "up", what="the device up")
    assert (state().agent_version, state().cache_free_bytes) == ("acme-2.1", 10**9)
    raw.disconnect()
    bridge.close()


@pytest.mark.parametrize("protocol", [paho.MQTTv5, paho.MQTTv311])
def test_events_published_while_the_server_is_down_are_applied_when_it_returns(
    loa: Loa, mosquitto: Mosquitto, protocol: MQTTProtocolVersion
) -> None:
    b, a, _ = two_devices_and_a_broadcast(loa)
    mine = b.deliveries[0].id
    bridge_for(mosquitto, loa, "loa-scheduler-1", protocol).close()  # its session stays
    device = client(mosquitto, "device-a")
    now = loa.now()
    for kind in ("started", "finished"):  # in the broker (acknowledged) before it goes
        event = json.dumps(report(mine, kind, now))
        device.publish(f"loa/ep/{a}/event", event, qos=1).wait_for_publish(5)
    device.disconnect()
    bridge = bridge_for(mosquitto, loa, "loa-scheduler-1", protocol)
    wait_for(lambda: bridge.stats["applied"] == 2, what="the queued events")
    assert history(loa, mine) == [Status.PLAYING, Status.PLAYED]
    bridge.close()


def play_item(delivery_id: int, endpoint_id: int, priority: Priority, seconds: float) -> PlayItem:
    now = SystemClock().now()
    return PlayItem(
        delivery_id=delivery_id,
        broadcast_id=delivery_id,
        endpoint_id=endpoint_id,
        title="Thông báo",
        priority=priority,
        scheduled_at=now,
        play_until=now + timedelta(seconds=60),
        audio_path=Path("/nonexistent.mp3"),
        sha256="ab" * 32,
        duration_seconds=seconds,
        delivered=False,
    )


def test_an_emergency_stops_what_the_endpoint_plays_then_plays(mosquitto: Mosquitto) -> None:
    bridge = bridge_for(mosquitto, None)
    driver = MqttDriver(bridge, SystemClock().now)
    busy, idle = FakeDevice(mosquitto, 11), FakeDevice(mosquitto, 12)
    driver.start(play_item(1, 11, Priority.NORMAL, 30))
    wait_for(lambda: busy.played == [1], what="the first item playing")
    errors = driver.start_many(
        [play_item(2, 11, Priority.EMERGENCY, 1), play_item(3, 12, Priority.EMERGENCY, 1)]
    )
    assert errors == {}
    wait_for(lambda: busy.played == [1, 2] and idle.played == [3], what="both emergencies")
    assert [(c["action"], c["delivery_id"]) for c in busy.commands] == [
        ("play", 1), ("stop", 1), ("play", 2),
    ]  # fmt: skip
    assert [c["action"] for c in idle.commands] == ["play"]
    busy.close()
    idle.close()
    bridge.close()


def test_a_batch_of_plays_reaches_each_endpoint_once_with_everything_it_needs(
    mosquitto: Mosquitto,
) -> None:
    bridge = bridge_for(mosquitto, None)
    driver = MqttDriver(bridge, SystemClock().now, audio_base_url="http://loa.example:8080/")
    seen: dict[str, list[dict[str, Any]]] = {}
    lock = threading.Lock()

    def record(c: paho.Client, u: Any, m: paho.MQTTMessage) -> None:
        with lock:
            seen.setdefault(m.topic, []).append(json.loads(m.payload))

    listener = client(mosquitto, "recorder")
    listener.on_message = record
    subscribed = threading.Event()
    listener.on_subscribe = lambda *_: subscribed.set()
    listener.subscribe("loa/ep/+/cmd", qos=1)
    assert subscribed.wait(5)
    items = [play_item(1000 + n, n, Priority.NORMAL, 5) for n in range(1, 501)]
    assert driver.start_many(items) == {}
    wait_for(lambda: sum(map(len, seen.values())) >= 500, what="500 plays")
    assert sorted(seen) == sorted(f"loa/ep/{n}/cmd" for n in range(1, 501))
    (play,) = seen["loa/ep/7/cmd"]
    assert play == {
        "action": "play", "delivery_id": 1007, "broadcast_id": 1007,
        "audio_url": f"http://loa.example:8080/api/v1/audio/{'ab' * 32}.mp3",
        "sha256": "ab" * 32, "stream_url": None, "at": items[6].scheduled_at.isoformat(),
        "play_until": items[6].play_until.isoformat(), "priority": "normal",
        "duration_seconds": 5, "title": "Thông báo",
    }  # fmt: skip
    listener.disconnect()
    bridge.close()


@pytest.fixture
def live_loa(tmp_path: Path, seeded_db: Path) -> Iterator[Loa]:
    """A context on the real clock (the dispatcher's timers run)."""
    shutil.copyfile(seeded_db, tmp_path / "loa.db")
    ctx = build_loa(make_settings(tmp_path), clock=SystemClock())
    yield ctx
    ctx.close()


def test_a_broker_killed_and_restarted_during_a_slot_still_gets_each_device_its_play_once(
    live_loa: Loa, mosquitto: Mosquitto
) -> None:
    loa = live_loa
    bridge = bridge_for(mosquitto, loa, "loa-scheduler")
    loa.drivers["mqtt"] = MqttDriver(bridge, loa.now)
    endpoints = [
        service.create_endpoint(loa, ADMIN, commune, "Loa IoT", "mqtt")[0].id
        for commune in (THO_SON, THO_BINH)
    ]
    devices = [FakeDevice(mosquitto, e) for e in endpoints]
    dispatcher = Dispatcher(loa)
    dispatcher.start()
    bulletin = make_bulletin(loa)
    service.render_bulletin(loa, CENTRE, bulletin)
    at = loa.now() + timedelta(seconds=2.5)
    made = service.schedule_bulletin(loa, CENTRE, bulletin, [THO_SON, THO_BINH], at)
    wait_for(lambda: sum(len(d.commands) for d in devices) == 2, what="the syncs")
    threading.Event().wait(1.2)  # the broker saves its sessions every second
    mosquitto.kill()

    def attempts() -> list[DeliveryAttempt]:
        with loa.transaction() as s:
            return list(s.scalars(select(DeliveryAttempt)))

    wait_for(lambda: len(attempts()) == 2, what="the dispatcher's attempts")  # broker down
    assert all("unreachable" in (a.error or "") for a in attempts())
    mosquitto.start()
    for b in made:
        played = wait_for_status(loa, b.id, Status.PLAYED, timeout=20)
        (delivery,) = played.deliveries
        assert history(loa, delivery.id) == [Status.PLAYING, Status.PLAYED]
    for device in devices:
        assert len(device.played) == 1
        assert [c["action"] for c in device.commands if c["action"] == "play"] in (
            ["play"], ["play", "play"],  # QoS 1 may repeat; the device ignores the repeat
        )  # fmt: skip
        device.close()
    dispatcher.shutdown()
    bridge.close()


def test_an_agent_is_woken_over_mqtt_when_its_schedule_changes(
    loa: Loa, mosquitto: Mosquitto
) -> None:
    loa.settings = replace(loa.settings, mqtt_url=mosquitto.url)
    bridge = install_mqtt(loa, client_id="loa-test-web")
    assert bridge is not None and bridge.wait_connected(10)
    agent, _ = service.create_endpoint(loa, ADMIN, THO_SON, "Cụm loa 1", "agent")
    woken: list[dict[str, Any]] = []
    connected = threading.Event()
    listener = CommandListener(mosquitto.url, agent.id, woken.append, on_connect=connected.set)
    listener.start()
    assert connected.wait(10) and listener.connected
    raw = client(mosquitto, "someone")
    raw.publish(f"loa/ep/{agent.id}/cmd", b"not json", qos=1).wait_for_publish(5)
    raw.publish(f"loa/ep/{agent.id}/cmd", b'{"action": "dance"}', qos=1).wait_for_publish(5)
    service.schedule_bulletin(loa, CENTRE, make_bulletin(loa), [THO_SON], None)
    wait_for(lambda: woken == [{"action": "sync"}], what="the sync")
    raw.disconnect()
    listener.stop()
    bridge.close()


def test_the_reference_agent_listens_for_sync_instead_of_holding_a_long_poll(
    settings: Settings, mosquitto: Mosquitto, tmp_path: Path
) -> None:
    pushed = make_settings(settings.data_dir, LOA_MQTT_URL=mosquitto.url)
    loa = build_loa(pushed, clock=SystemClock())
    bridge = install_mqtt(loa, client_id="loa-test-serve")
    assert bridge is not None and bridge.wait_connected(10)
    port = free_port()
    server = make_server(loa, create_app(loa), "127.0.0.1", port)
    serve_in_thread(server)
    endpoint, token = service.create_endpoint(loa, ADMIN, THO_SON, "Cụm loa 1", "agent")
    agent = Agent(
        AgentClient(f"http://127.0.0.1:{port}", token), tmp_path / "cache", SilentOutput()
    )
    runner = threading.Thread(target=agent.run, daemon=True)
    runner.start()
    try:
        wait_for(
            lambda: isinstance(agent.wakeups, CommandListener) and agent.wakeups.connected,
            what="the agent's subscription",
        )
        made = service.schedule_bulletin(
            loa, CENTRE, make_bulletin(loa), [THO_SON], loa.now() + timedelta(minutes=5)
        )
        delivery_id = made[0].deliveries[0].id
        wait_for(lambda: delivery_id in agent.items, what="the item, after `sync`", timeout=3)
    finally:
        agent.stop()
        runner.join(timeout=10)
        server.should_exit = True
        bridge.close()
        loa.close()
    assert endpoint.id == made[0].deliveries[0].endpoint_id
