"""Past one box: two `loa web` and `loa scheduler` processes on one PostgreSQL database."""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import THO_BINH, THO_SON, free_port
from tests.test_e2e import TEXT, Server, centre_token
from tests.test_split import wait_for

pytestmark = pytest.mark.realtime  # scripts/test runs it one test at a time


class Cluster:
    """Processes sharing one database; `web[i]` are Servers (one URL each)."""

    def __init__(self, data: Path, url: str) -> None:
        self.data = data
        self.web: list[Server] = []
        self.schedulers: list[subprocess.Popen[str]] = []
        self.base = Server(data)
        self.base.env["LOA_DATABASE_URL"] = url
        self.base.env["LOA_GRACE_SECONDS"] = "10"
        self.base.env["LOA_CLOSE_MARGIN_SECONDS"] = "3"  # what the killed one held closes
        self.base.env["LOA_SWEEP_SECONDS"] = "2"  # sooner, found by the next sweep

    def start(self, webs: int, schedulers: int) -> tuple[list[Server], list[subprocess.Popen[str]]]:
        """`webs` web processes and `schedulers` schedulers, launched together (each takes
        seconds to import and connect), then each waited for until it serves."""
        web = [self._launch_web() for _ in range(webs)]
        n = len(self.schedulers)
        scheduling = [self._launch_scheduler(n + i + 1) for i in range(schedulers)]
        for srv in web:
            self._wait_web(srv)
        for i, proc in enumerate(scheduling):
            self._wait_scheduler(n + i + 1, proc)
        return web, scheduling

    def _launch_web(self) -> Server:
        srv = Server(self.data)
        srv.env = self.base.env
        srv.port = free_port()
        srv.url = f"http://127.0.0.1:{srv.port}"
        srv.start("web", "--port", str(srv.port), log=f"web-{srv.port}.log")
        return srv

    def _wait_web(self, srv: Server) -> None:
        def up() -> bool:
            try:
                return requests.get(srv.url + "/api/v1/openapi.json", timeout=1).ok
            except requests.ConnectionError:
                return False

        wait_for(up, "web start", 30, self.data / f"web-{srv.port}.log")
        srv.token = self.base.token
        self.web.append(srv)

    def _launch_scheduler(self, n: int) -> subprocess.Popen[str]:
        return self.base.start("scheduler", "--virtual-speakers", log=f"scheduler-{n}.log")

    def _wait_scheduler(self, n: int, proc: subprocess.Popen[str]) -> None:
        log = self.data / f"scheduler-{n}.log"
        wait_for(lambda: "scheduler running" in log.read_text(), "scheduler start", 30, log)
        self.schedulers.append(proc)

    def stop(self) -> None:
        running = [p for srv in [*self.web, self.base] for p in srv.procs if p.poll() is None]
        for proc in running:  # all told at once, then each waited for
            proc.terminate()
        for proc in running:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()


@pytest.fixture
def cluster(tmp_path: Path, postgres: Any) -> Iterator[Cluster]:
    c = Cluster(tmp_path, postgres.new_database("loa_template"))
    c.base.token = centre_token(c.base.env, "pg")
    yield c
    c.stop()


def approved(web: Server, text: str = TEXT, priority: str = "normal") -> int:
    b = web.call("POST", "/bulletins", json={"title": "Tin", "text": text, "priority": priority})
    web.call("POST", f"/bulletins/{b['id']}/approve")
    web.call("POST", f"/bulletins/{b['id']}/audio")
    return int(b["id"])


def test_an_emergency_posted_to_one_web_wakes_an_agent_polling_another_within_a_second(
    cluster: Cluster,
) -> None:
    (first, second), _ = cluster.start(webs=2, schedulers=1)
    token = first.call("POST", "/endpoints", json={"commune": THO_SON, "name": "Cụm 1"})["token"]
    alarm = approved(
        first, "Bão số 3 đang vào. Bà con khẩn trương chằng chống nhà cửa.", "emergency"
    )
    agent = {"Authorization": f"Bearer {token}"}
    schedule = f"{second.url}/api/v1/agent/schedule"
    version = requests.get(schedule, headers=agent, timeout=10).json()["version"]
    answer: dict[str, Any] = {}

    def long_poll() -> None:
        r = requests.get(
            schedule, params={"version": version, "wait": 25}, headers=agent, timeout=40
        )
        answer.update(r.json(), at=time.monotonic())

    poller = threading.Thread(target=long_poll)
    poller.start()
    time.sleep(0.5)  # the poll is waiting on the other process
    (made,) = first.call("POST", "/broadcasts", json={"bulletin_id": alarm, "communes": [THO_SON]})
    posted = time.monotonic()
    poller.join(timeout=30)
    assert [i["broadcast_id"] for i in answer["items"]] == [made["id"]]
    assert answer["at"] - posted < 1.0

    # … and the scheduler (a third process) dispatched it at once, not at its next sweep.
    def dispatched() -> bool:
        b = first.call("GET", f"/broadcasts/{made['id']}")
        return any(d["attempts"] for d in b["deliveries"])

    wait_for(dispatched, "dispatched", 5, cluster.data / "scheduler-1.log")


def test_two_schedulers_one_killed_start_every_delivery_once(cluster: Cluster) -> None:
    (web,), (_, doomed) = cluster.start(webs=1, schedulers=2)
    bulletin = approved(web, "Thông báo lịch tiếp công dân.")
    at = (datetime.now(UTC) + timedelta(seconds=5)).replace(microsecond=0)
    rule = {"at": at.isoformat(), "repeat": 6, "every_seconds": 3}
    placed = web.call(
        "POST",
        "/placements",
        json={"bulletin_id": bulletin, "communes": [THO_SON, THO_BINH], "rule": rule},
    )
    assert placed["broadcasts"] == 12
    time.sleep((at - datetime.now(UTC)).total_seconds() + 4)
    doomed.send_signal(signal.SIGKILL)  # mid-programme, holding what it claimed
    last = at + timedelta(seconds=3 * 5)

    def settled() -> bool:
        rows = web.call("GET", f"/broadcasts?from={at.date().isoformat()}")
        return len(rows) == 12 and all(
            r["status"] not in ("scheduled", "delivered", "playing") for r in rows
        )

    seconds = (last - datetime.now(UTC)).total_seconds() + 40
    wait_for(settled, "all played or recorded", seconds, cluster.data / "scheduler-1.log")
    for row in web.call("GET", f"/broadcasts?from={at.date().isoformat()}"):
        detail = web.call("GET", f"/broadcasts/{row['id']}")
        starts = [e for e in detail["history"] if e["delivery_id"] and e["to"] == "playing"]
        assert len(starts) <= 1, detail  # never started twice
        assert row["status"] in ("played", "failed", "missed"), row
