"""The contract every endpoint driver keeps, run against each driver for real:
a broadcast scheduled for a commune is played by its endpoint at its time, and the
endpoint's proof of play reaches the as-run log."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
import waitress

from audio.playout import file_sink_output
from loa.agent import Agent, AgentClient
from scheduler import service
from scheduler.clock import SystemClock
from scheduler.context import Loa, build_loa
from scheduler.dispatch import Dispatcher
from scheduler.models import Status
from scheduler.settings import Settings
from tests.conftest import ADMIN, CENTRE, THO_SON, free_port
from tests.test_dispatch import wait_for_status, with_virtual_speakers
from tests.test_scheduling import make_bulletin
from web import create_app


@dataclass
class Endpoint:
    loa: Loa
    kind: str
    sink: Path | None = None


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
        poll_wait=2,
    )
    thread = threading.Thread(target=agent.run, daemon=True)
    thread.start()
    yield Endpoint(loa, "agent", sink)
    agent.stop()
    thread.join(timeout=15)
    server.close()


DRIVERS = {"virtual": run_virtual, "agent": run_agent}


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
