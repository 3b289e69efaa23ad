"""Relays (tiếp sóng): every player reads a live stream for the item's duration and proves
it by the bytes received. The provincial radio is a throttled HTTP server on loopback
(tests/relay_stream.py); the agent's network to the server is test_agent's `Link`, its
speaker a file sink; icecast and Mosquitto are the real servers the other tests use."""

from __future__ import annotations

import json
import re
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from audio import playout
from audio.playout import Cue, PlayEvent, Playout, SilentOutput, file_sink_output
from loa.agent import Agent, AgentClient, Item
from scheduler import service
from scheduler.context import Loa
from scheduler.drivers.base import PlayItem
from scheduler.drivers.icecast import IcecastDriver, Mount
from scheduler.drivers.local import LocalDriver
from scheduler.drivers.mqtt import MqttDriver
from scheduler.models import Delivery, Priority, Status
from tests.conftest import ADMIN, CENTRE, THO_SON, free_port
from tests.icecast_server import running_icecast
from tests.mqtt_broker import FakeDevice, Mosquitto, mosquitto, wait_for
from tests.relay_stream import Radio, running_radio
from tests.test_agent import SERVER, Link, lines, scheduled, wait_until
from tests.test_dispatch import broadcast
from tests.test_icecast import wait_for_title
from tests.test_local_driver import Recorder, item, tones
from tests.test_mqtt import bridge_for

pytestmark = pytest.mark.realtime  # scripts/test runs it one test at a time

__all__ = ["mosquitto"]  # the fixture, imported for pytest


@pytest.fixture
def radio(tmp_path: Path) -> Iterator[Radio]:
    with running_radio(tmp_path) as provincial:
        yield provincial


def now() -> datetime:
    return datetime.now(UTC)


def relay_item(delivery_id: int, url: str, seconds: float, endpoint_id: int = 7) -> PlayItem:
    at = now()
    return PlayItem(
        delivery_id=delivery_id, broadcast_id=delivery_id, endpoint_id=endpoint_id,
        title="Tiếp sóng Đài tỉnh", priority=Priority.NORMAL, scheduled_at=at,
        play_until=at + timedelta(seconds=60), audio_path=None, sha256="ab" * 32,
        duration_seconds=seconds, delivered=True, stream_url=url,
    )  # fmt: skip


def received(detail: str | None) -> int:
    """The bytes a proof of play says were relayed."""
    found = re.search(r"relayed ([\d,]+) bytes", detail or "")
    assert found, detail
    return int(found[1].replace(",", ""))


# --- the players -------------------------------------------------------------------------


def test_a_stream_that_ends_early_is_reported_for_what_it_was(radio: Radio) -> None:
    events: list[PlayEvent] = []
    playout = Playout(SilentOutput(), events.append, now)
    playout.start()
    at = now()
    url = radio.url + "?seconds=1"  # the programme ends after a second
    cue = Cue("1", None, 3.0, 0, at, at + timedelta(seconds=60), stream_url=url)
    playout.submit(cue)
    wait_until(lambda: len(events) == 2)
    playout.close()
    finished = events[1]
    assert finished.kind == "finished"
    assert re.fullmatch(
        rf"relayed 8,000 bytes from {re.escape(url)} over 1\.\d s "
        r"of 3\.0 s: the stream ended",
        finished.detail or "",
    )


def test_a_stalled_stream_is_given_up_after_the_read_timeout_and_reported(
    radio: Radio, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(playout, "RELAY_TIMEOUT", 1.0)
    url = radio.url + "?seconds=0.5&stall=1"
    at = now()
    cue = Cue("1", None, 3.0, 0, at, at + timedelta(seconds=60), stream_url=url)
    detail = SilentOutput().play(cue, threading.Event())
    assert re.fullmatch(
        rf"relayed 4,000 bytes from {re.escape(url)} over 1\.\d s of 3\.0 s: "
        r"the stream broke off \(timed out\)",
        detail or "",
    )


def test_a_stalled_stream_never_holds_up_an_interruption(radio: Radio) -> None:
    events: list[PlayEvent] = []
    speaker = Playout(SilentOutput(), events.append, now)
    speaker.start()
    at = now()
    url = radio.url + "?seconds=0.5&stall=1"
    speaker.submit(Cue("1", None, 8.0, 0, at, at + timedelta(seconds=60), stream_url=url))
    wait_until(lambda: sum(len(x.sent) for x in radio.listeners) >= 4000)
    time.sleep(0.5)  # the stream is silent now, its socket waiting
    asked = time.monotonic()
    speaker.cancel("1")
    wait_until(lambda: len(events) == 2)
    assert time.monotonic() - asked < 0.5
    speaker.close()
    assert events[1].kind == "interrupted"
    assert (events[1].detail or "").startswith(f"cancelled; relayed 4,000 bytes from {url}")


def test_an_emergency_cuts_a_relay_on_the_sound_card_and_the_proof_says_how_much_came(
    radio: Radio, tmp_path: Path
) -> None:
    recorder = Recorder()
    driver = LocalDriver(recorder, now, lambda endpoint_id: "null")
    driver.start(relay_item(1, radio.url, 8))
    recorder.event("1", "started")
    wait_until(lambda: sum(len(x.sent) for x in radio.listeners) > 8000)
    driver.start(item(2, tones(tmp_path)(0.5), 0.5, Priority.EMERGENCY))
    interrupted = recorder.event("1", "interrupted")
    recorder.event("2", "finished")
    driver.close()
    assert re.fullmatch(
        rf"interrupted by Bản tin 2; relayed [\d,]+ bytes from {re.escape(radio.url)} over "
        r"\d\.\d s; ffmpeg wrote \d\.\d s of audio to ALSA device 'null'",
        interrupted.detail or "",
    )
    assert 8000 < received(interrupted.detail) <= len(radio.listeners[0].sent)


def test_a_listener_of_the_icecast_mount_hears_valid_mp3_while_a_relay_streams(
    radio: Radio,
) -> None:
    recorder = Recorder()
    with running_icecast() as icecast:
        address = icecast.mount_address("thoson.mp3")
        driver = IcecastDriver(recorder, now, lambda endpoint_id: address)
        driver.start(relay_item(12, radio.url, 3))
        wait_for_title(Mount.parse(address), "Tiếp sóng Đài tỉnh")
        probe = subprocess.run(
            ["ffprobe", "-v", "error", "-read_intervals", "%+1", "-count_packets",
             "-show_entries", "stream=codec_name,sample_rate,channels,nb_read_packets",
             "-of", "json", icecast.listen_url("thoson.mp3")],
            capture_output=True, text=True, timeout=10, check=True,
        )  # fmt: skip
        finished = recorder.event("12", "finished")
        driver.close()
    assert probe.stderr == ""
    (stream,) = json.loads(probe.stdout)["streams"]
    assert int(stream.pop("nb_read_packets")) > 30
    assert stream == {"codec_name": "mp3", "sample_rate": "22050", "channels": 1}
    assert (finished.detail or "").startswith(
        f"icecast listed the source 'Loa delivery 12' on 127.0.0.1:{icecast.port}/thoson.mp3"
    )
    assert re.search(
        rf"; relayed [\d,]+ bytes from {re.escape(radio.url)} over 3\.\d s; ffmpeg sent 3\.\d s",
        finished.detail or "",
    )


# --- the reference agent -------------------------------------------------------------------


@pytest.fixture
def agent(loa: Loa, tmp_path: Path) -> Iterator[Agent]:
    """Thọ Sơn's agent, talking to the real app in process, playing into a sink."""
    _, token = service.create_endpoint(loa, ADMIN, THO_SON, "Cụm loa 1", "agent")
    session = requests.Session()
    session.mount(SERVER, Link(loa))
    box = Agent(
        AgentClient(SERVER, token, session),
        tmp_path / "cache",
        file_sink_output(tmp_path / "sink"),
        clock=loa.clock,
    )
    box.playout.start()
    yield box
    box.playout.close()


def schedule_relay(loa: Loa, url: str, seconds: float) -> int:
    """A relay broadcast in Thọ Sơn now; its agent delivery id."""
    relay = service.create_relay(loa, CENTRE, title="Tiếp sóng Đài tỉnh", stream_url=url,
                                 seconds=seconds)  # fmt: skip
    service.approve_bulletin(loa, ADMIN, relay.id)
    (made,) = service.schedule_bulletin(loa, CENTRE, relay.id, [THO_SON], loa.now())
    (mine,) = [d for d in broadcast(loa, made.id).deliveries if d.endpoint.kind == "agent"]
    return mine.id


def report(agent: Agent, delivery_id: int, kind: str, timeout: float = 10) -> dict[str, Any]:
    def found() -> dict[str, Any] | None:
        mine = [r for r in lines(agent.outbox) if r["delivery_id"] == delivery_id]
        mine = [r for r in mine if r["kind"] == kind]
        return mine[0] if mine else None

    wait_until(lambda: found() is not None, timeout)
    result = found()
    assert result is not None
    return result


def test_the_agent_relays_a_stream_into_its_sink_byte_for_byte_and_reports_the_bytes(
    loa: Loa, agent: Agent, radio: Radio, tmp_path: Path
) -> None:
    delivery_id = schedule_relay(loa, radio.url, 2)
    agent.sync_once(0)
    assert agent.items[delivery_id].stream_url == radio.url
    assert agent.missing_audio() == 0  # nothing to fetch, nothing missing
    assert list(agent.audio_dir.iterdir()) == []
    report(agent, delivery_id, "delivered")
    agent.play_due()
    finished = report(agent, delivery_id, "finished")
    (listener,) = radio.listeners
    assert "Authorization" not in listener.headers  # the agent's token stays home
    (file,) = (tmp_path / "sink").glob(f"*-{delivery_id}.mp3")
    data = file.read_bytes()
    assert len(data) == received(finished["detail"]) > 12_000
    assert data == bytes(listener.sent[: len(data)])
    assert "sha256" not in finished
    agent.flush()
    with loa.transaction() as s:
        assert s.get(Delivery, delivery_id).status == Status.PLAYED  # type: ignore[union-attr]


@pytest.mark.parametrize("where", ["closed port", "no such stream", "a web page"])
def test_a_stream_that_cannot_be_opened_fails_the_item_with_the_reason(
    loa: Loa, agent: Agent, radio: Radio, tmp_path: Path, where: str
) -> None:
    url = f"http://127.0.0.1:{free_port()}/live.mp3"
    if where != "closed port":
        url = radio.url.replace("live.mp3", "gone.mp3" if where == "no such stream" else "")
    delivery_id = schedule_relay(loa, url, 2)
    agent.sync_once(0)
    agent.play_due()
    failed = report(agent, delivery_id, "failed")
    reason = {"closed port": "Connection refused", "no such stream": "HTTP 404 no such stream",
              "a web page": "it answers text/html"}[where]  # fmt: skip
    assert failed["detail"].startswith(f"cannot open the relay stream {url}: ")
    assert reason in failed["detail"]
    assert list((tmp_path / "sink").iterdir()) == []


def test_an_emergency_interrupts_a_relay_on_the_agent(
    loa: Loa, agent: Agent, radio: Radio, tmp_path: Path
) -> None:
    delivery_id = schedule_relay(loa, radio.url, 8)
    agent.sync_once(0)
    agent.play_due()
    report(agent, delivery_id, "started")
    wait_until(lambda: sum(len(x.sent) for x in radio.listeners) > 8000)
    alarm = scheduled(loa, "Khẩn cấp: bão số ba đổ bộ.", 0, Priority.EMERGENCY)
    agent.sync_once(0)
    agent.play_due()
    interrupted = report(agent, delivery_id, "interrupted")
    report(agent, alarm.delivery_id, "finished")
    assert re.fullmatch(
        rf"interrupted by Thông báo; relayed [\d,]+ bytes from {re.escape(radio.url)} "
        r"over \d\.\d s",  # and no "of 8.0 s: the stream ended"
        interrupted["detail"],
    )
    (file,) = (tmp_path / "sink").glob(f"*-{delivery_id}.mp3")
    assert file.stat().st_size == received(interrupted["detail"])


GOOD = {
    "delivery_id": 1, "title": "Tiếp sóng", "rank": 0,
    "scheduled_at": "2026-11-26T10:00:00+00:00", "play_until": "2026-11-26T10:05:00+00:00",
    "duration_seconds": 60.0, "sha256": None, "audio_url": None,
    "stream_url": "https://radio.example/live.mp3",
}  # fmt: skip


def test_a_relay_item_is_taken_with_its_stream_and_no_file() -> None:
    item = Item.from_json(GOOD)
    assert (item.stream_url, item.sha256, item.audio_url) == (GOOD["stream_url"], None, None)
    assert Item.from_json(item.to_json()) == item


@pytest.mark.parametrize(
    "change",
    [
        {"stream_url": "ftp://radio.example/live.mp3"},
        {"stream_url": "http://user:secret@radio.example/live.mp3"},
        {"stream_url": "/api/v1/live.mp3"},
        {"stream_url": 5},
        {"sha256": "ab" * 32},
        {"audio_url": "/api/v1/audio/x.mp3"},
        {"duration_seconds": 0},
        {"stream_url": None},  # a file item then, without its file
    ],
)
def test_a_malformed_relay_item_is_refused(change: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        Item.from_json({**GOOD, **change})


# --- MQTT devices ---------------------------------------------------------------------------


def test_the_mqtt_play_command_of_a_relay_carries_the_stream_and_its_duration(
    mosquitto: Mosquitto,
) -> None:
    bridge = bridge_for(mosquitto, None)
    device = FakeDevice(mosquitto, 7)
    MqttDriver(bridge, now).start(relay_item(1, "http://radio.example/live.mp3", 1.5))
    wait_for(lambda: device.played == [1], what="the relay playing")
    (play,) = device.commands
    assert play["stream_url"] == "http://radio.example/live.mp3"
    assert (play["duration_seconds"], play["audio_url"], play["sha256"]) == (1.5, None, None)
    device.close()
    bridge.close()
