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
from tests.test_e2e import LOA, TEXT, Server
from tests.test_split import wait_for


class Cluster:
    """Processes sharing one database; `web[i]` are Servers (one URL each)."""

    def __init__(self, data: Path, url: str) -> None:
        self.data = data
        self.web: list[Server] = []
        self.schedulers: list[subprocess.Popen[str]] = []
        self.base = Server(data)
        self.base.env["LOA_DATABASE_URL"] = url
        self.base.env["LOA_GRACE_SECONDS"] = "10"

    def start_web(self) -> Server:
        srv = Server(self.data)
        srv.env = self.base.env
        srv.port = free_port()
        srv.url = f"http://127.0.0.1:{srv.port}"
        srv.start("web", "--port", str(srv.port), log=f"web-{srv.port}.log")

        def up() -> bool:
            try:
                return requests.get(srv.url + "/api/v1/openapi.json", timeout=1).ok
            except requests.ConnectionError:
                return False

        wait_for(up, "web start", 30, self.data / f"web-{srv.port}.log")
        srv.token = self.base.token
        self.web.append(srv)
        return srv

    def start_scheduler(self, n: int) -> subprocess.Popen[str]:
        log = self.data / f"scheduler-{n}.log"
        proc = self.base.start("scheduler", "--virtual-speakers", log=log.name)
        wait_for(lambda: "scheduler running" in log.read_text(), "scheduler start", 30, log)
        self.schedulers.append(proc)
        return proc

    def stop(self) -> None:
        for srv in [*self.web, self.base]:
            for proc in srv.procs:
                if proc.poll() is None:
                    proc.terminate()
                    try:
                        proc.wait(timeout=15)
                    except subprocess.TimeoutExpired:
                        proc.kill()


@pytest.fixture
def cluster(tmp_path: Path, postgres: Any) -> Iterator[Cluster]:
    c = Cluster(tmp_path, postgres.new_database("loa_template"))
    out = subprocess.run(
        [LOA, "token", "create", "--name", "pg", "--role", "centre"],
        env=c.base.env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    c.base.token = out.stdout.strip()
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
    first, second = cluster.start_web(), cluster.start_web()
    cluster.start_scheduler(1)
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
    web = cluster.start_web()
    cluster.start_scheduler(1)
    doomed = cluster.start_scheduler(2)
    bulletin = approved(web, "Thông báo lịch tiếp công dân.")
    at = (datetime.now(UTC) + timedelta(seconds=8)).replace(microsecond=0)
    rule = {"at": at.isoformat(), "repeat": 8, "every_seconds": 3}
    placed = web.call(
        "POST",
        "/placements",
        json={"bulletin_id": bulletin, "communes": [THO_SON, THO_BINH], "rule": rule},
    )
    assert placed["broadcasts"] == 16
    time.sleep((at - datetime.now(UTC)).total_seconds() + 7)
    doomed.send_signal(signal.SIGKILL)  # mid-programme, holding what it claimed
    last = at + timedelta(seconds=3 * 7)

    def settled() -> bool:
        rows = web.call("GET", f"/broadcasts?from={at.date().isoformat()}")
        return len(rows) == 16 and all(
            r["status"] not in ("scheduled", "delivered", "playing") for r in rows
        )

    seconds = (last - datetime.now(UTC)).total_seconds() + 70
    wait_for(settled, "all played or recorded", seconds, cluster.data / "scheduler-1.log")
    for row in web.call("GET", f"/broadcasts?from={at.date().isoformat()}"):
        detail = web.call("GET", f"/broadcasts/{row['id']}")
        starts = [e for e in detail["history"] if e["delivery_id"] and e["to"] == "playing"]
        assert len(starts) <= 1, detail  # never started twice
        assert row["status"] in ("played", "failed", "missed"), row
