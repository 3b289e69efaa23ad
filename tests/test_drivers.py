"""The contract every endpoint driver keeps, run against each driver for real:
a broadcast scheduled for a commune is played by its endpoint at its time, and the
endpoint's proof of play reaches the as-run log. A relay (tiếp sóng) is played from the
live stream of a radio on loopback (tests/relay_stream.py)."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path

import pytest
import waitress
from sqlalchemy import select

from audio.playout import file_sink_output
from loa.agent import Agent, AgentClient
from scheduler import service
from scheduler.clock import SystemClock
from scheduler.context import Loa, build_loa
from scheduler.dispatch import Dispatcher
from scheduler.drivers.mqtt import install_mqtt
from scheduler.models import BroadcastEvent, Status
from scheduler.settings import Settings
from scheduler.wiring import install_drivers
from tests.conftest import ADMIN, CENTRE, THO_SON, free_port
from tests.icecast_server import running_icecast
from tests.mqtt_broker import FakeDevice, running_mosquitto
from tests.relay_stream import Radio, running_radio
from tests.test_dispatch import wait_for_status, with_virtual_speakers
from tests.test_scheduling import make_bulletin
from web import create_app

pytestmark = pytest.mark.realtime  # scripts/test runs it one test at a time


@dataclass
class Endpoint:
    loa: Loa
    kind: str
    sink: Path | None = None
    proof: str | None = None  # what the played event's detail must say
    relays: bool = True  # it reads a relay's stream itself (the fake MQTT device does not)


def run_virtual(loa: Loa, tmp_path: Path) -> Iterator[Endpoint]:
    with_virtual_speakers(loa)
    yield Endpoint(loa, "virtual")


def run_agent(loa: Loa, tmp_path: Path) -> Iterator[Endpoint]:
    """A real web server in a thread and Loa's agent in another, on loopback."""
    port = free_port()
    server = waitress.create_server(create_app(loa), host="127.0.0.1", port=port, threads=8)
    threading.Thread(target=server.run, daemon=True).start()
    _, token = service.create_endpoint(loa, ADMIN, THO_SON, "Cụm loa 1", "agent")
    sink = tmp_path / "sink"
    agent = Agent(
        AgentClient(f"http://127.0.0.1:{port}", token),
        tmp_path / "cache",
        file_sink_output(sink),
        poll_wait=1,  # a stopped agent waits out its poll: short, or teardown takes seconds
    )
    thread = threading.Thread(target=agent.run, daemon=True)
    thread.start()
    yield Endpoint(loa, "agent", sink)
    agent.stop()
    thread.join(timeout=15)
    server.close()


def run_icecast(loa: Loa, tmp_path: Path) -> Iterator[Endpoint]:
    """A real icecast2 server; the commune's mount is the endpoint's address."""
    with running_icecast() as icecast:
        install_drivers(loa, virtual_speakers=False)
        address = icecast.mount_address("thoson.mp3")
        service.create_endpoint(loa, ADMIN, THO_SON, "Đài xã (icecast)", "icecast", address)
        yield Endpoint(loa, "icecast", proof="icecast listed the source 'Loa delivery ")


def run_local(loa: Loa, tmp_path: Path) -> Iterator[Endpoint]:
    """The server's sound card, faked at the device: ALSA's null PCM."""
    install_drivers(loa, virtual_speakers=False)
    service.create_endpoint(loa, ADMIN, THO_SON, "Phòng máy huyện", "local", "null")
    yield Endpoint(loa, "local", proof="to ALSA device 'null'")


def run_mqtt(loa: Loa, tmp_path: Path) -> Iterator[Endpoint]:
    """A real Mosquitto between the server's MQTT bridge and a third-party device that
    only obeys `play` (a paho client in this process)."""
    with running_mosquitto() as broker:
        loa.settings = replace(loa.settings, mqtt_url=broker.url)
        bridge = install_mqtt(loa, client_id="loa-test-scheduler")
        assert bridge is not None and bridge.wait_connected(10)
        endpoint, _ = service.create_endpoint(loa, ADMIN, THO_SON, "Loa IoT", "mqtt")
        device = FakeDevice(broker, endpoint.id)
        yield Endpoint(loa, "mqtt", relays=False)
        device.close()
        bridge.close()


DRIVERS = {"virtual": run_virtual, "agent": run_agent, "icecast": run_icecast, "local": run_local}
DRIVERS["mqtt"] = run_mqtt


@pytest.fixture(params=list(DRIVERS))
def endpoint(
    request: pytest.FixtureRequest, settings: Settings, tmp_path: Path
) -> Iterator[Endpoint]:
    loa = build_loa(settings, clock=SystemClock())
    dispatcher = Dispatcher(loa)
    dispatcher.start()
    yield from DRIVERS[request.param](loa, tmp_path)
    dispatcher.shutdown()
    loa.close()


def test_the_endpoint_plays_at_the_scheduled_time_and_proves_it(endpoint: Endpoint) -> None:
    loa = endpoint.loa
    bulletin_id = make_bulletin(loa)
    service.render_bulletin(loa, CENTRE, bulletin_id)
    at = loa.now() + timedelta(seconds=3)
    (made,) = service.schedule_bulletin(loa, CENTRE, bulletin_id, [THO_SON], at)
    played = wait_for_status(loa, made.id, Status.PLAYED, timeout=20)
    (delivery,) = played.deliveries
    assert delivery.endpoint.kind == endpoint.kind
    assert played.started_at is not None and played.finished_at is not None
    assert 0 <= (played.started_at - at).total_seconds() < 1.0
    length = (played.finished_at - played.started_at).total_seconds()
    assert abs(length - made.audio.duration_seconds) < 1.0
    if endpoint.sink is not None:
        assert len(list(endpoint.sink.glob("*.mp3"))) == 1
    if endpoint.proof is not None:
        with loa.transaction() as session:
            (reason,) = session.scalars(
                select(BroadcastEvent.reason).where(
                    BroadcastEvent.delivery_id == delivery.id,
                    BroadcastEvent.to_status == Status.PLAYED,
                )
            )
        assert endpoint.proof in (reason or "")


@pytest.fixture
def radio(tmp_path: Path) -> Iterator[Radio]:
    with running_radio(tmp_path) as provincial:
        yield provincial


def played_reason(loa: Loa, delivery_id: int) -> str:
    with loa.transaction() as session:
        (reason,) = session.scalars(
            select(BroadcastEvent.reason).where(
                BroadcastEvent.delivery_id == delivery_id,
                BroadcastEvent.to_status == Status.PLAYED,
            )
        )
    return reason or ""


def test_the_endpoint_relays_a_live_stream_for_its_duration_and_proves_it(
    endpoint: Endpoint, radio: Radio
) -> None:
    loa = endpoint.loa
    relay = service.create_relay(
        loa, CENTRE, title="Tiếp sóng Đài tỉnh", stream_url=radio.url, seconds=2
    )
    service.approve_bulletin(loa, ADMIN, relay.id)
    at = loa.now() + timedelta(seconds=3)
    (made,) = service.schedule_bulletin(loa, CENTRE, relay.id, [THO_SON], at)
    played = wait_for_status(loa, made.id, Status.PLAYED, timeout=20)
    (delivery,) = played.deliveries
    assert played.started_at is not None and played.finished_at is not None
    assert 0 <= (played.started_at - at).total_seconds() < 1.0
    assert abs((played.finished_at - played.started_at).total_seconds() - 2) < 1.0
    if not endpoint.relays:
        return
    (listener,) = radio.listeners
    assert "Authorization" not in listener.headers  # no token ever goes to the radio
    reason = played_reason(loa, delivery.id)
    said = rf"relayed ([\d,]+) bytes from {re.escape(radio.url)} over 2\.\d s"
    received = re.search(said, reason)
    assert received, reason
    assert 12_000 < int(received[1].replace(",", "")) <= len(listener.sent)
    if endpoint.proof is not None:
        assert endpoint.proof in reason
    if endpoint.sink is not None:
        (file,) = endpoint.sink.glob("*.mp3")
        assert file.read_bytes() == bytes(listener.sent[: file.stat().st_size])
        assert file.stat().st_size == int(received[1].replace(",", ""))
