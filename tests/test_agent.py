"""The reference agent's reliability: what it does when files, reports, the disk, the
link, its own process or the server's answers go wrong.

The outside world is faked at one seam each: the network between agent and server is
`Link`, a requests transport into the real app in process (it can be cut, held, or
made to answer badly); the loudspeaker is `Speaker` (plays at once); the disk is the
agent's `Disk` seam (`FullDisk`); the clock is the ManualClock that server and agent
share. One test runs real `loa serve` and `loa agent` processes and kills the agent.
"""

from __future__ import annotations

import errno
import importlib.metadata
import json
import logging
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from requests.structures import CaseInsensitiveDict

from audio.playout import Cue
from loa.agent import Agent, AgentClient, Disk, ServerUnreachable
from scheduler import bulletins, service
from scheduler.clock import ManualClock
from scheduler.context import Loa
from scheduler.models import Delivery, Priority
from tests.conftest import ADMIN, CENTRE, START, THO_BINH, THO_SON, THO_TIEN, new_token
from tests.test_dispatch import broadcast
from tests.test_e2e import LOA, Server, start_server
from web import create_app

pytestmark = pytest.mark.realtime  # scripts/test runs it one test at a time

SERVER = "http://loa.test"
SCHEDULE_PATH = "/api/v1/agent/schedule"
REPORTS_PATH = "/api/v1/agent/reports"
START_ISO = START.isoformat()


class Link(requests.adapters.BaseAdapter):
    """The network between agent and server: each request goes to the real app in process.
    A test may cut it (`up`), act on each request (`on_request`: hold it, fail it) or
    garble the schedule answers (`garble`)."""

    def __init__(self, loa: Loa) -> None:
        super().__init__()
        self.client = create_app(loa).test_client()
        self.up = True
        self.on_request: Callable[[requests.PreparedRequest], None] = lambda request: None
        self.garble: Callable[[Any], Any] | None = None
        self.sent: list[requests.PreparedRequest] = []

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> Any:
        self.sent.append(request)
        if not self.up:
            raise requests.ConnectionError("the link is down")
        self.on_request(request)
        answer = self.client.open(
            request.path_url,
            method=request.method,
            headers=dict(request.headers),
            data=request.body,
        )
        body = answer.get_data()
        if self.garble and path_of(request) == SCHEDULE_PATH and answer.status_code == 200:
            body = json.dumps(self.garble(json.loads(body))).encode()
        response = requests.Response()
        response.status_code = answer.status_code
        response.headers = CaseInsensitiveDict(answer.headers)
        response._content = body
        response._content_consumed = True  # type: ignore[attr-defined]
        response.encoding = "utf-8"
        response.url = request.url or ""
        response.request = request
        return response

    def close(self) -> None:
        pass

    def heartbeats(self) -> list[dict[str, list[str]]]:
        return [parse_qs(urlsplit(r.url).query) for r in self.sent if path_of(r) == SCHEDULE_PATH]


def path_of(request: requests.PreparedRequest) -> str:
    return urlsplit(request.url).path


class Speaker:
    """The loudspeaker: plays each cue at once, or holds it while `hold` is set."""

    def __init__(self) -> None:
        self.played: list[int] = []
        self.hold = threading.Event()
        self.release = threading.Event()

    def play(self, cue: Cue, stop: threading.Event) -> None:
        self.played.append(int(cue.key))
        if self.hold.is_set():
            self.release.wait(10)


class FullDisk(Disk):
    """The cache's filesystem, full when told."""

    full = False

    def free_bytes(self, path: Path) -> int:
        return 0 if self.full else super().free_bytes(path)

    def write(self, fh: IO[bytes], data: bytes) -> None:
        if self.full:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        super().write(fh, data)


@dataclass
class Box:
    """One commune's loudspeaker box (Thọ Sơn) and the server it polls."""

    loa: Loa
    link: Link
    speaker: Speaker
    token: str
    cache: Path
    agents: list[Agent] = field(default_factory=list)

    def agent(
        self, *, token: str | None = None, cache: Path | None = None, playing: bool = True,
        **kw: Any,
    ) -> Agent:  # fmt: skip
        session = requests.Session()
        session.mount(SERVER, self.link)
        kw.setdefault("clock", self.loa.clock)
        agent = Agent(
            AgentClient(SERVER, token or self.token, session),
            cache or self.cache,
            self.speaker,
            **kw,
        )
        if playing:
            agent.playout.start()
        self.agents.append(agent)
        return agent


@pytest.fixture
def box(loa: Loa, tmp_path: Path) -> Iterator[Box]:
    _, token = service.create_endpoint(loa, ADMIN, THO_SON, "Cụm loa 1", "agent")
    b = Box(loa, Link(loa), Speaker(), token, tmp_path / "cache")
    yield b
    b.speaker.release.set()
    for agent in b.agents:
        agent.playout.close()


@dataclass(frozen=True)
class Scheduled:
    delivery_id: int  # the agent's delivery of the broadcast
    sha256: str
    store: Path  # the audio file in the server's store


def new_bulletin(loa: Loa, text: str, priority: Priority = Priority.NORMAL) -> int:
    b = service.create_bulletin(loa, CENTRE, title="Thông báo", text=text, priority=priority)
    with loa.transaction() as s:
        bulletins.approve(s, ADMIN, bulletins.get_bulletin(s, b.id), loa.now())
    return b.id


def schedule(loa: Loa, bulletin_id: int, in_seconds: float, commune: str = THO_SON) -> Scheduled:
    at = loa.now() + timedelta(seconds=in_seconds)
    (made,) = service.schedule_bulletin(loa, CENTRE, bulletin_id, [commune], at)
    (mine,) = [d for d in broadcast(loa, made.id).deliveries if d.endpoint.kind == "agent"]
    store = loa.settings.audio_dir / made.audio.path
    return Scheduled(mine.id, made.audio.sha256, store)


def delivery(loa: Loa, item: Scheduled) -> Delivery:
    """The agent's delivery of a broadcast, as the server has it now."""
    with loa.transaction() as s:
        row = s.get(Delivery, item.delivery_id)
        assert row is not None
        _ = row.broadcast.scheduled_at
        return row


def scheduled(
    loa: Loa, text: str, in_seconds: float, priority: Priority = Priority.NORMAL
) -> Scheduled:
    return schedule(loa, new_bulletin(loa, text, priority), in_seconds)


def wait_until(check: Callable[[], bool], timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def lines(path: Path) -> list[Any]:
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def cached(agent: Agent, item: Scheduled) -> bool:
    return (agent.audio_dir / f"{item.sha256}.mp3").exists()


# --- one item's audio failing --------------------------------------------------------------


@pytest.mark.parametrize("fault", ["gone", "corrupt", "cut"])
def test_a_missing_audio_file_does_not_stop_the_schedule_update(box: Box, fault: str) -> None:
    loa = box.loa
    agent = box.agent()
    normal = scheduled(loa, "Lịch tiếp công dân tháng mười hai.", 600)
    original = normal.store.read_bytes()
    if fault == "gone":
        normal.store.unlink()  # the server answers 404 audio_gone
    elif fault == "corrupt":
        normal.store.write_bytes(original[:-100])
    else:

        def cut(request: requests.PreparedRequest) -> None:
            if normal.sha256 in path_of(request):
                raise requests.ConnectionError("connection reset by peer")

        box.link.on_request = cut
    emergency = scheduled(loa, "Khẩn cấp: bão số ba đổ bộ.", 0, Priority.EMERGENCY)

    agent.sync_once(0)

    assert set(agent.items) == {normal.delivery_id, emergency.delivery_id}
    assert agent.version is not None
    agent.play_due()
    wait_until(lambda: box.speaker.played == [emergency.delivery_id])
    assert not cached(agent, normal)
    assert list(agent.audio_dir.glob(".tmp-*")) == []
    # Repaired on the server: the next poll fetches it.
    normal.store.write_bytes(original)
    box.link.on_request = lambda request: None
    agent.sync_once(0)
    assert cached(agent, normal)


# --- the outbox ----------------------------------------------------------------------------


def test_a_refused_batch_lets_the_good_reports_through_and_keeps_each_bad_one_with_its_reason(
    box: Box,
) -> None:
    loa = box.loa
    mine = scheduled(loa, "Lịch tiếp công dân.", 600)
    service.create_endpoint(loa, ADMIN, THO_BINH, "Cụm loa 1", "agent")
    theirs = schedule(loa, new_bulletin(loa, "Xã Thọ Bình."), 600, THO_BINH)
    agent = box.agent()
    at = loa.now().isoformat()
    for delivery_id, kind in [
        (mine.delivery_id, "delivered"),
        (999_999, "started"),  # 404 unknown_delivery
        (theirs.delivery_id, "started"),  # 403 wrong_endpoint
        (mine.delivery_id, "exploded"),  # 400 invalid_body
        (mine.delivery_id, "started"),
    ]:
        agent.queue_report({"delivery_id": delivery_id, "kind": kind, "at": at})

    agent.flush()

    assert delivery(loa, mine).status == "playing"
    assert delivery(loa, theirs).status == "scheduled"
    rejected = lines(box.cache / "rejected.jsonl")
    assert [(r["report"]["delivery_id"], r["status"], r["error"]) for r in rejected] == [
        (999_999, 404, "unknown_delivery"),
        (theirs.delivery_id, 403, "wrong_endpoint"),
        (mine.delivery_id, 400, "invalid_body"),
    ]
    assert all(r["detail"] for r in rejected)
    assert lines(box.cache / "outbox.jsonl") == []


def test_a_line_torn_by_a_power_cut_is_kept_aside_and_the_rest_is_sent(box: Box) -> None:
    item = scheduled(box.loa, "Lịch tiếp công dân.", 600)
    agent = box.agent()
    box.cache.joinpath("outbox.jsonl").write_text('{"delivery_id": 1, "ki\n')
    agent.queue_report({"delivery_id": item.delivery_id, "kind": "delivered", "at": START_ISO})

    agent.flush()

    assert delivery(box.loa, item).status == "delivered"
    (torn,) = lines(box.cache / "rejected.jsonl")
    assert torn["line"] == '{"delivery_id": 1, "ki' and torn["error"] == "unreadable"
    assert lines(box.cache / "outbox.jsonl") == []


@pytest.mark.parametrize("token", ["unknown", "a person's"])
def test_a_refused_token_stops_the_agent_with_exit_code_2_and_keeps_its_reports(
    box: Box, token: str
) -> None:
    bad = "loa_not-a-real-token" if token == "unknown" else new_token(box.loa, "centre")
    agent = box.agent(token=bad, playing=False)
    report = {"delivery_id": 1, "kind": "delivered", "at": box.loa.now().isoformat()}
    agent.queue_report(report)

    assert agent.run() == 2

    assert lines(box.cache / "outbox.jsonl") == [report]
    assert not (box.cache / "rejected.jsonl").exists()


def test_two_flushes_at_once_lose_no_report(box: Box) -> None:
    """The report thread and the shutdown flush can overlap: a report queued meanwhile
    must reach the server, not vanish when the slower flush rewrites the outbox."""
    item = scheduled(box.loa, "Lịch tiếp công dân.", 600)
    agent = box.agent()
    in_flight, go_on = threading.Event(), threading.Event()

    def hold_the_first_post(request: requests.PreparedRequest) -> None:
        if path_of(request) == REPORTS_PATH and not in_flight.is_set():
            in_flight.set()
            go_on.wait(5)

    box.link.on_request = hold_the_first_post
    at = box.loa.now().isoformat()
    agent.queue_report({"delivery_id": item.delivery_id, "kind": "delivered", "at": at})
    flushes = [threading.Thread(target=agent.flush) for _ in range(2)]
    flushes[0].start()
    assert in_flight.wait(5)
    flushes[1].start()
    time.sleep(0.3)
    agent.queue_report({"delivery_id": item.delivery_id, "kind": "started", "at": at})
    go_on.set()
    for t in flushes:
        t.join(10)

    assert lines(box.cache / "outbox.jsonl") == []
    assert delivery(box.loa, item).status == "playing"


def test_a_full_disk_while_the_outbox_is_rewritten_leaves_every_report_in_it(box: Box) -> None:
    item = scheduled(box.loa, "Lịch tiếp công dân.", 0)
    disk = FullDisk()
    agent = box.agent(disk=disk)
    at = box.loa.now().isoformat()
    agent.queue_report({"delivery_id": item.delivery_id, "kind": "delivered", "at": at})

    def fill_the_disk_during_the_post(request: requests.PreparedRequest) -> None:
        if path_of(request) == REPORTS_PATH:
            agent.queue_report({"delivery_id": item.delivery_id, "kind": "started", "at": at})
            disk.full = True

    box.link.on_request = fill_the_disk_during_the_post
    with pytest.raises(OSError):
        agent.flush()
    box.link.on_request = lambda request: None
    assert [r["kind"] for r in lines(box.cache / "outbox.jsonl")] == ["delivered", "started"]

    disk.full = False
    agent.flush()
    assert lines(box.cache / "outbox.jsonl") == []
    assert delivery(box.loa, item).status == "playing"


def test_an_outbox_larger_than_a_server_batch_is_sent_in_parts(box: Box) -> None:
    item = scheduled(box.loa, "Lịch tiếp công dân.", 600)
    agent = box.agent()
    at = box.loa.now().isoformat()
    agent.queue_report({"delivery_id": item.delivery_id, "kind": "delivered", "at": at})
    outbox = box.cache / "outbox.jsonl"
    # A long outage: more than the 1,000 the server takes at once, each line as the agent
    # wrote it (queued one by one, each append is fsynced: seconds for 1,200).
    outbox.write_text(outbox.read_text() * 1200)

    agent.flush()

    posts = [json.loads(r.body or b"") for r in box.link.sent if path_of(r) == REPORTS_PATH]
    assert [len(p["reports"]) for p in posts] == [500, 500, 200]
    assert lines(box.cache / "outbox.jsonl") == []
    assert not (box.cache / "rejected.jsonl").exists()
    assert delivery(box.loa, item).status == "delivered"


# --- the audio cache and the disk ------------------------------------------------------------


def test_audio_no_item_needs_is_pruned_after_two_days_at_most_every_few_minutes(
    box: Box,
) -> None:
    loa = box.loa
    item = scheduled(loa, "Lịch tiếp công dân.", 3600)
    agent = box.agent()
    agent.sync_once(0)
    now = loa.now().timestamp()

    def aged(name: str, hours: float) -> Path:
        path = agent.audio_dir / name
        if not path.exists():
            path.write_bytes(b"mp3")
        os.utime(path, (now - hours * 3600, now - hours * 3600))
        return path

    needed = aged(f"{item.sha256}.mp3", 72)
    recent = aged("b" * 64 + ".mp3", 47)
    old = aged("c" * 64 + ".mp3", 49)
    partial = aged(".tmp-download", 72)  # left by a download cut by a power loss

    loa.clock.advance(60)  # type: ignore[attr-defined]
    agent.sync_once(0)
    assert old.exists() and partial.exists()  # pruned a minute ago: not yet again

    loa.clock.advance(300)  # type: ignore[attr-defined]
    agent.sync_once(0)
    assert not old.exists() and not partial.exists()
    assert needed.exists() and recent.exists()


def test_a_full_disk_is_reported_in_the_heartbeat_and_the_cached_audio_still_plays(
    box: Box,
) -> None:
    loa = box.loa
    disk = FullDisk()
    agent = box.agent(disk=disk)
    first = scheduled(loa, "Lịch tiếp công dân.", 60)
    agent.sync_once(0)
    assert cached(agent, first)

    disk.full = True
    second = scheduled(loa, "Lịch tiêm chủng.", 120)
    agent.sync_once(0)  # its download fails for lack of space: logged, nothing else
    assert not cached(agent, second)
    agent.sync_once(0)
    beat = box.link.heartbeats()[-1]
    assert beat["cache_free_bytes"] == ["0"]
    assert beat["cache_error"] == ["disk_full"]
    assert beat["missing_audio"] == ["1"]

    loa.clock.advance(60)  # type: ignore[attr-defined]
    agent.play_due()
    wait_until(lambda: box.speaker.played == [first.delivery_id])
    # Its reports waited in memory; once there is room they reach the as-run log.
    disk.full = False
    agent.flush()
    assert delivery(loa, first).status == "played"


def test_a_repeat_whose_audio_is_already_cached_is_reported_delivered_too(box: Box) -> None:
    loa = box.loa
    bulletin_id = new_bulletin(loa, "Lịch tiếp công dân.")
    first = schedule(loa, bulletin_id, 60)
    agent = box.agent()
    agent.sync_once(0)
    agent.flush()
    repeat = schedule(loa, bulletin_id, 120)  # the same audio, another delivery
    agent.sync_once(0)
    agent.flush()
    assert first.sha256 == repeat.sha256
    assert delivery(loa, first).status == delivery(loa, repeat).status == "delivered"


def test_audio_still_missing_minutes_after_scheduling_is_warned_long_before_its_time(
    box: Box, caplog: pytest.LogCaptureFixture
) -> None:
    loa = box.loa
    item = scheduled(loa, "Lịch tiếp công dân.", 3600)
    item.store.unlink()  # the server lost the file
    agent = box.agent(warn_missing_after=timedelta(minutes=3))
    caplog.set_level(logging.WARNING, "loa.agent")

    def warnings() -> list[str]:
        return [r.getMessage() for r in caplog.records if "still not cached" in r.getMessage()]

    agent.sync_once(0)
    agent.play_due()
    loa.clock.advance(170)  # type: ignore[attr-defined]
    agent.play_due()
    assert warnings() == []
    loa.clock.advance(10)  # type: ignore[attr-defined]
    agent.play_due()
    assert len(warnings()) == 1 and f"delivery {item.delivery_id}" in warnings()[0]
    loa.clock.advance(60)  # type: ignore[attr-defined]
    agent.play_due()
    assert len(warnings()) == 1  # once, not every second


def test_every_schedule_request_carries_the_heartbeat(box: Box) -> None:
    loa = box.loa
    scheduled(loa, "Lịch tiếp công dân.", 600)
    scheduled(loa, "Lịch tiêm chủng.", 900).store.unlink()
    behind = ManualClock(loa.now() - timedelta(seconds=30))  # the box's clock is 30 s slow
    agent = box.agent(clock=behind)

    agent.sync_once(0)
    agent.sync_once(0)

    first, second = box.link.heartbeats()
    assert first["clock_offset_seconds"] == ["0.0"]
    assert second["agent_version"] == ["loa-agent/" + importlib.metadata.version("loa")]
    assert int(second["cache_free_bytes"][0]) > 0
    assert float(second["clock_offset_seconds"][0]) == 30.0
    assert second["missing_audio"] == ["1"]
    assert "cache_error" not in second


# --- outages and restarts --------------------------------------------------------------------


def test_a_network_cut_longer_than_the_cache_horizon_plays_everything_held_and_reports_later(
    box: Box,
) -> None:
    loa = box.loa
    hours = [1, 24, 47]
    bulletin_id = new_bulletin(loa, "Lịch tiếp công dân.")
    items = [schedule(loa, bulletin_id, h * 3600) for h in hours]
    agent = box.agent()
    agent.sync_once(0)
    agent.flush()

    box.link.up = False
    elapsed = 0
    for h, item in zip(hours, items, strict=True):
        loa.clock.advance(h * 3600 - elapsed)  # type: ignore[attr-defined]
        elapsed = h * 3600
        with pytest.raises(ServerUnreachable):
            agent.sync_once(0)
        agent.play_due()
        wait_until(lambda item=item: item.delivery_id in box.speaker.played)  # type: ignore[misc]
        with pytest.raises(ServerUnreachable):
            agent.flush()
    loa.clock.advance(50 * 3600 - elapsed)  # type: ignore[attr-defined]
    assert [r["kind"] for r in lines(box.cache / "outbox.jsonl")] == ["started", "finished"] * 3

    box.link.up = True
    agent.sync_once(0)
    agent.flush()
    for item in items:
        played = delivery(loa, item)
        assert played.status == "played"
        assert played.started_at == played.broadcast.scheduled_at


def test_an_item_cut_by_a_kill_is_reported_interrupted_on_restart_and_never_replayed(
    box: Box, tmp_path: Path
) -> None:
    loa = box.loa
    item = scheduled(loa, "Lịch tiếp công dân.", 0)
    box.speaker.hold.set()  # it is still sounding when the power goes
    agent = box.agent()
    agent.sync_once(0)
    agent.play_due()
    wait_until(lambda: box.speaker.played == [item.delivery_id])
    wait_until(lambda: "started" in [r["kind"] for r in lines(box.cache / "outbox.jsonl")])
    left_on_disk = tmp_path / "after-kill"
    shutil.copytree(box.cache, left_on_disk)  # what a SIGKILL leaves behind

    loa.clock.advance(2)  # type: ignore[attr-defined]
    again = box.agent(cache=left_on_disk)
    again.play_due()
    again.flush()

    assert box.speaker.played == [item.delivery_id]
    cut = delivery(loa, item)
    assert cut.status == "interrupted"
    assert cut.error is not None and "restarted" in cut.error


# --- bad input from the server ---------------------------------------------------------------


def test_malformed_schedule_items_are_skipped_one_by_one_and_the_good_ones_play(
    box: Box, caplog: pytest.LogCaptureFixture
) -> None:
    item = scheduled(box.loa, "Lịch tiếp công dân.", 0)

    def garble(answer: dict[str, Any]) -> dict[str, Any]:
        (good,) = answer["items"]
        answer["items"] = [
            "not an object",
            {},
            {**good, "delivery_id": "7"},
            {k: v for k, v in good.items() if k != "sha256"},
            {**good, "delivery_id": 9001, "scheduled_at": "2026-11-26T09:00:00"},  # no offset
            {**good, "delivery_id": 9002, "sha256": "../../state.json"},
            {**good, "delivery_id": 9003, "audio_url": "http://elsewhere.example/a.mp3"},
            {**good, "delivery_id": 9004, "duration_seconds": None},
            {**good, "delivery_id": 9005, "play_until": "tomorrow"},
            good,
        ]
        return answer

    box.link.garble = garble
    agent = box.agent()

    agent.sync_once(0)
    agent.play_due()

    assert list(agent.items) == [item.delivery_id]
    wait_until(lambda: box.speaker.played == [item.delivery_id])
    skipped = [r for r in caplog.records if "malformed schedule item" in r.getMessage()]
    assert len(skipped) == 9


@pytest.mark.parametrize(
    "answer",
    [[], {"items": []}, {"version": "v", "server_time": "now", "items": []},
     {"version": "v", "server_time": "2026-11-26T01:00:00+00:00", "items": None}],
)  # fmt: skip
def test_a_malformed_schedule_answer_is_a_failed_poll_and_the_agent_keeps_what_it_had(
    box: Box, answer: Any
) -> None:
    item = scheduled(box.loa, "Lịch tiếp công dân.", 600)
    agent = box.agent()
    agent.sync_once(0)
    box.link.garble = lambda _: answer

    with pytest.raises(ServerUnreachable, match="malformed"):
        agent.sync_once(0)
    assert list(agent.items) == [item.delivery_id]


# --- a real agent process, killed ------------------------------------------------------------


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    yield from start_server(tmp_path)


def test_an_agent_killed_mid_item_reports_it_interrupted_and_plays_the_next_on_time(
    server: Server, tmp_path: Path
) -> None:
    commune = THO_TIEN  # the demo gives it no other endpoint: the agent's proof is the log's
    endpoint = server.call("POST", "/endpoints", json={"commune": commune, "name": "Cụm loa 1"})
    sink = tmp_path / "sink"

    def start_agent(log: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [LOA, "agent", "--server", server.url, "--token", endpoint["token"],
             "--cache", str(tmp_path / "cache"), "--sink", str(sink)],
            env=server.env, stdout=(tmp_path / log).open("w"), stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: the kill takes its player too
        )  # fmt: skip

    def schedule_in(seconds: int, text: str) -> int:
        made = server.call("POST", "/bulletins", json={"title": "Thông báo", "text": text})
        server.call("POST", f"/bulletins/{made['id']}/approve")
        server.call("POST", f"/bulletins/{made['id']}/audio", json={"engine": "espeak"})
        at = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=seconds)
        (b,) = server.call(
            "POST", "/broadcasts",
            json={"bulletin_id": made["id"], "communes": [commune], "at": at.isoformat()},
        )  # fmt: skip
        return int(b["id"])

    def delivery(broadcast_id: int) -> dict[str, Any]:
        b = server.call("GET", f"/broadcasts/{broadcast_id}")
        (mine,) = [d for d in b["deliveries"] if d["kind"] == "agent"]
        return {**mine, "scheduled_at": b["scheduled_at"]}  # type: ignore[no-any-return]

    first = start_agent("agent-1.log")
    long = schedule_in(4, "UBND xã thông báo lịch tiếp công dân từ 7h30 đến 11h thứ hai.")
    short = schedule_in(10, "Xin chào bà con.")
    try:
        deadline = time.monotonic() + 20
        while delivery(long)["status"] != "playing":
            assert time.monotonic() < deadline, (tmp_path / "agent-1.log").read_text()
            time.sleep(0.1)
        time.sleep(1.5)
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(5)
        (cut_file,) = sink.glob("*.mp3")  # half written by the killed player
        left = cut_file.stat()

        second = start_agent("agent-2.log")
        try:
            deadline = time.monotonic() + 30
            while delivery(short)["status"] != "played" or delivery(long)["status"] == "playing":
                assert time.monotonic() < deadline, (tmp_path / "agent-2.log").read_text()
                time.sleep(0.2)
        finally:
            second.terminate()
            second.wait(15)
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
            first.wait(5)

    log = (tmp_path / "agent-2.log").read_text()
    cut, after = delivery(long), delivery(short)
    assert cut["status"] == "interrupted" and "restarted" in cut["error"], log
    late = datetime.fromisoformat(after["started_at"]) - datetime.fromisoformat(
        after["scheduled_at"]
    )
    assert timedelta(0) <= late < timedelta(seconds=2), log
    assert f"delivery {cut['id']} started" not in log  # never replayed
    assert cut_file.name.endswith(f"-{cut['id']}.mp3")
    assert (cut_file.stat().st_size, cut_file.stat().st_mtime) == (left.st_size, left.st_mtime)
    assert len(list(sink.glob("*.mp3"))) == 2
