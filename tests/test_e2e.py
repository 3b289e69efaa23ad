"""End to end on loopback: `loa serve` and two `loa agent` processes, real HTTP, real audio."""

from __future__ import annotations

import csv
import io
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from scheduler.context import build_loa
from scheduler.settings import load_settings
from tests.conftest import THO_BINH, THO_SON, THO_TIEN, audio_duration, free_port, new_token

pytestmark = pytest.mark.realtime  # scripts/test runs it one test at a time

LOA = str(Path(sys.executable).with_name("loa"))
TEXT = (
    "Thực hiện Kế hoạch số 4911/KH-UBND ngày 29/12/2020 của Ủy ban nhân dân tỉnh Thanh Hoá "
    "về công tác cải cách hành chính năm 2021, UBND huyện ban hành kế hoạch tuyên truyền."
)


class Server:
    def __init__(self, data: Path) -> None:
        self.data = data
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "LOA_DATA": str(data),
            "LOA_TTS_ENGINE": "espeak",
            "LOA_GRACE_SECONDS": "60",
        }
        self.procs: list[subprocess.Popen[str]] = []
        self.token = ""

    def start(self, *args: str, log: str) -> subprocess.Popen[str]:
        out = (self.data / log).open("w")
        proc = subprocess.Popen(
            [LOA, *args], env=self.env, stdout=out, stderr=subprocess.STDOUT, text=True
        )
        self.procs.append(proc)
        return proc

    def call(self, method: str, path: str, token: str | None = None, **kw: Any) -> Any:
        headers = {"Authorization": f"Bearer {token or self.token}"}
        r = requests.request(method, self.url + "/api/v1" + path, headers=headers, timeout=30, **kw)
        assert r.status_code < 400, r.text
        return r.json() if r.headers.get("Content-Type", "").startswith("application/json") else r


def centre_token(env: dict[str, str], name: str) -> str:
    """A centre API token in the database `env` names, stored as `loa token create` stores
    it (tests/test_cli.py runs that command; a process for it here costs seconds)."""
    loa = build_loa(load_settings(env), migrate_schema=False)
    try:
        return new_token(loa, "centre", name=name)
    finally:
        loa.close()


def start_server(tmp_path: Path, *flags: str) -> Iterator[Server]:
    srv = Server(tmp_path)
    srv.start("serve", "--demo", *flags, "--port", str(srv.port), log="serve.log")
    deadline = time.monotonic() + 30
    while True:
        try:
            requests.get(srv.url + "/api/v1/openapi.json", timeout=1)
            break
        except requests.ConnectionError:
            assert time.monotonic() < deadline, (tmp_path / "serve.log").read_text()
            time.sleep(0.2)
    srv.token = centre_token(srv.env, "e2e")
    yield srv
    for proc in reversed(srv.procs):
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


def start_agents(server: Server, tmp_path: Path, *codes: str) -> dict[str, Path]:
    """A `loa agent --sink` process per commune, each on its own new endpoint; the sinks."""
    sinks = {}
    for code in codes:
        endpoint = server.call("POST", "/endpoints", json={"commune": code, "name": "Cụm loa 1"})
        sinks[code] = tmp_path / f"sink-{code}"
        server.start(
            "agent", "--server", server.url, "--token", endpoint["token"],
            "--cache", str(tmp_path / f"cache-{code}"), "--sink", str(sinks[code]),
            log=f"agent-{code}.log",
        )  # fmt: skip
    return sinks


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    yield from start_server(tmp_path)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One `loa serve --demo --virtual-speakers` for the tests below that add no endpoint
    and no broadcast to it (a server takes seconds to start)."""
    yield from start_server(tmp_path_factory.mktemp("demo"), "--virtual-speakers")


def test_a_bulletin_plays_on_two_agents_and_lands_in_the_as_run_log(
    server: Server, tmp_path: Path
) -> None:
    sinks = start_agents(server, tmp_path, THO_SON, THO_TIEN)
    bulletin = server.call("POST", "/bulletins", json={"title": "CCHC 2021", "text": TEXT})
    server.call("POST", f"/bulletins/{bulletin['id']}/approve")
    audio = server.call("POST", f"/bulletins/{bulletin['id']}/audio", json={"engine": "espeak"})
    assert audio["duration_seconds"] > 5
    at = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=10)
    made = server.call(
        "POST",
        "/broadcasts",
        json={"bulletin_id": bulletin["id"], "communes": [THO_SON, THO_TIEN], "at": at.isoformat()},
    )
    assert [b["status"] for b in made] == ["scheduled", "scheduled"]

    deadline = time.monotonic() + 10 + audio["duration_seconds"] + 30
    while time.monotonic() < deadline:
        listed = server.call("GET", "/broadcasts")
        if all(b["status"] == "played" for b in listed):
            break
        time.sleep(0.5)
    logs = "\n".join(p.read_text() for p in tmp_path.glob("*.log"))
    assert [b["status"] for b in listed] == ["played", "played"], logs

    for b in listed:
        assert 0 <= b["lateness_seconds"] < 2.0, b
        assert b["confirmed_by"] == "endpoint:Cụm loa 1"
        (played,) = sinks[b["commune"]].glob("*.mp3")
        assert audio_duration(played) > 5
        assert abs(audio_duration(played) - audio["duration_seconds"]) < 0.5

    report = server.call("GET", "/reports/broadcasts.csv").content.decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(report)))
    assert [(r["Mã xã"], r["Trạng thái"]) for r in rows] == [
        (THO_SON, "đã phát"),
        (THO_TIEN, "đã phát"),
    ]
    assert all(0 <= float(r["Trễ (giây)"]) < 2.0 for r in rows)


def test_an_agent_with_a_wrong_token_is_refused_and_says_so(demo: Server, tmp_path: Path) -> None:
    agent = demo.start(
        "agent", "--server", demo.url, "--token", "loa_not-a-real-token",
        "--cache", str(tmp_path / "cache"), "--sink", str(tmp_path / "sink"), log="bad-agent.log",
    )  # fmt: skip
    assert agent.wait(timeout=20) == 2
    log = (demo.data / "bad-agent.log").read_text()
    assert "server refused this agent's token" in log and "invalid_token" in log


def test_an_agent_takes_its_server_and_token_from_the_environment(
    demo: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(demo.env, "LOA_SERVER", demo.url)  # for this test's agent only
    monkeypatch.setitem(demo.env, "LOA_TOKEN", "loa_not-a-real-token")
    agent = demo.start("agent", "--cache", str(tmp_path / "cache"), log="env-agent.log")
    assert agent.wait(timeout=20) == 2  # it reached the server, which refused the token
    assert "invalid_token" in (demo.data / "env-agent.log").read_text()


def test_a_newcomer_schedules_a_bulletin_in_the_panel_and_sees_it_played(demo: Server) -> None:
    web = requests.Session()

    def post(path: str, **form: Any) -> str:
        page = web.get(demo.url + "/login", timeout=10).text
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page)
        assert csrf
        r = web.post(demo.url + path, data={**form, "csrf_token": csrf.group(1)}, timeout=60)
        assert r.status_code == 200, r.text
        return r.text

    assert "Lượt phát hôm nay" in post("/login", username="trungtam", password="loa-trungtam")
    page = post(
        "/bulletins", title="Thông báo", text="Xin chào bà con xã Thọ Sơn.", priority="normal"
    )
    bulletin = re.search(r'action="/bulletins/(\d+)/approve"', page)
    assert bulletin, page
    post(f"/bulletins/{bulletin.group(1)}/approve")
    # Thọ Sơn is the demo's commune without a device (its operator confirms by hand).
    page = post(f"/bulletins/{bulletin.group(1)}/schedule", communes=[THO_BINH, THO_TIEN], at="")
    assert "Đã lên lịch." in page
    played = 'data-label="Trạng thái"><span class="badge s-played">đã phát</span>'
    deadline = time.monotonic() + 30
    while page.count(played) < 2 and time.monotonic() < deadline:
        time.sleep(0.5)
        page = web.get(demo.url + "/", timeout=10).text
    assert page.count(played) == 2, page
    assert "Chờ xác nhận đã phát / không phát" in page  # the demo's broadcast in Thọ Sơn
