"""`loa web` and `loa scheduler` as separate processes on one database (SQLite here)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests

from tests.conftest import SHORT_TEXT, THO_BINH, THO_SON
from tests.test_e2e import Server, centre_token

pytestmark = pytest.mark.realtime  # scripts/test runs it one test at a time


def wait_for(check: object, what: str, timeout: float, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"{what}:\n{log.read_text()}"
        time.sleep(0.3)


@pytest.fixture
def split(tmp_path: Path, seeded_db: Path) -> Iterator[Server]:
    (tmp_path / "loa.db").write_bytes(seeded_db.read_bytes())
    srv = Server(tmp_path)
    srv.env["LOA_SWEEP_SECONDS"] = "2"  # on SQLite the scheduler finds new rows by its sweep
    srv.token = centre_token(srv.env, "split")
    srv.start("scheduler", "--virtual-speakers", log="scheduler.log")
    srv.start("web", "--port", str(srv.port), log="web.log")
    log = tmp_path / "scheduler.log"
    wait_for(lambda: "scheduler running" in log.read_text(), "scheduler start", 30, log)

    def up() -> bool:
        try:
            return requests.get(srv.url + "/api/v1/openapi.json", timeout=1).ok
        except requests.ConnectionError:
            return False

    wait_for(up, "web start", 30, tmp_path / "web.log")
    yield srv
    for proc in srv.procs:  # both told at once, then each waited for
        proc.terminate()
    for proc in srv.procs:
        proc.wait(timeout=15)


def test_a_placement_made_on_loa_web_is_played_by_loa_scheduler(split: Server) -> None:
    # A short bulletin (2.7 s): what is proved is which process plays it, not its length.
    bulletin = split.call("POST", "/bulletins", json={"title": "CCHC", "text": SHORT_TEXT})["id"]
    split.call("POST", f"/bulletins/{bulletin}/approve")
    at = (datetime.now(UTC) + timedelta(seconds=12)).replace(microsecond=0)
    placed = split.call(
        "POST", "/placements",
        json={"bulletin_id": bulletin, "communes": [THO_SON, THO_BINH],
              "rule": {"once": at.isoformat()}},
    )  # fmt: skip
    assert placed["broadcasts"] == 2

    def played() -> bool:
        rows = split.call("GET", f"/broadcasts?from={at.date().isoformat()}")
        return sorted(r["status"] for r in rows) == ["played", "played"]

    wait_for(played, "played on virtual speakers", 90, split.data / "scheduler.log")
    rows = split.call("GET", f"/broadcasts?from={at.date().isoformat()}")
    starts = [datetime.fromisoformat(r["started_at"]) for r in rows]
    assert all(abs((s - at).total_seconds()) < 2 for s in starts)
