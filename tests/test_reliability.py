"""Failures of the real processes: the server killed while agents hold due items."""

from __future__ import annotations

import signal
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests

from tests.conftest import SHORT_TEXT, THO_SON, THO_TIEN, audio_duration
from tests.test_e2e import Server, start_agents, start_server

pytestmark = pytest.mark.realtime  # scripts/test runs it one test at a time


def wait_until(predicate: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():  # type: ignore[operator]
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def test_items_due_while_the_server_is_down_play_once_on_time_and_reach_the_log(
    tmp_path: Path,
) -> None:
    servers = start_server(tmp_path)
    server: Server = next(servers)
    try:
        sinks = start_agents(server, tmp_path, THO_SON, THO_TIEN)
        # A short item (2.7 s): the server stays dead for all of it, however long it is.
        bulletin = server.call("POST", "/bulletins", json={"title": "CCHC", "text": SHORT_TEXT})
        server.call("POST", f"/bulletins/{bulletin['id']}/approve")
        audio = server.call("POST", f"/bulletins/{bulletin['id']}/audio")
        at = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=8)
        made = server.call(
            "POST",
            "/broadcasts",
            json={"bulletin_id": bulletin["id"], "communes": [THO_SON, THO_TIEN],
                  "at": at.isoformat()},
        )  # fmt: skip

        def all_cached() -> bool:
            details = [server.call("GET", f"/broadcasts/{b['id']}") for b in made]
            return all(d["deliveries"][0]["status"] == "delivered" for d in details)

        wait_until(all_cached, 7, "both agents to hold the audio")
        serve = server.procs[0]
        serve.send_signal(signal.SIGKILL)  # no goodbye: a power cut at the district
        serve.wait(timeout=10)
        end = at + timedelta(seconds=audio["duration_seconds"] + 1.5)
        time.sleep(max(0.0, (end - datetime.now(UTC)).total_seconds()))
        for code in (THO_SON, THO_TIEN):  # both played while the server was dead
            (played,) = sinks[code].glob("*.mp3")
            assert abs(audio_duration(played) - audio["duration_seconds"]) < 0.5

        server.start("serve", "--demo", "--port", str(server.port), log="serve-again.log")

        def all_played() -> bool:
            listed = server.call("GET", "/broadcasts")
            return [b["status"] for b in listed] == ["played", "played"]

        wait_until(all_played, 30, "the reports to reach the restarted server")
        for b in server.call("GET", "/broadcasts"):
            assert 0 <= b["lateness_seconds"] < 2.0, b
        for code in (THO_SON, THO_TIEN):
            assert len(list(sinks[code].glob("*.mp3"))) == 1  # once, never replayed
    finally:
        for _ in servers:
            pass
