"""A loudspeaker box whose clock is hours off: the reference agent plays by the server's
time and says how far off it is; a device reporting impossible times is refused."""

from datetime import datetime, timedelta

from flask.testing import FlaskClient

from scheduler.clock import Clock
from scheduler.context import Loa
from tests.conftest import THO_SON, Api, later
from tests.test_agent import Box, box, delivery, scheduled, wait_until  # noqa: F401

HOURS_SLOW = timedelta(hours=3)


class SlowClock:
    """The box's clock: the server's time, three hours behind."""

    def __init__(self, server: Clock) -> None:
        self.server = server

    def now(self) -> datetime:
        return self.server.now() - HOURS_SLOW


def test_an_agent_hours_slow_plays_on_the_servers_time_and_says_how_far_off_it_is(
    box: Box,  # noqa: F811
) -> None:
    loa = box.loa
    item = scheduled(loa, "Lịch tiếp công dân.", 600)
    agent = box.agent(clock=SlowClock(loa.clock))
    agent.sync_once(0)  # learns the server's time from the answer
    loa.clock.advance(599)  # type: ignore[attr-defined]
    agent.play_due()
    assert item.delivery_id not in box.speaker.played  # not a second early
    loa.clock.advance(1)  # type: ignore[attr-defined]
    agent.play_due()
    wait_until(lambda: item.delivery_id in box.speaker.played)
    agent.flush()
    played = delivery(loa, item)
    assert played.status == "played"
    assert played.started_at == played.broadcast.scheduled_at
    assert played.clock_offset_seconds == HOURS_SLOW.total_seconds()
    agent.sync_once(0)  # the next poll's heartbeat carries it to the dashboard
    heartbeat = box.link.heartbeats()[-1]
    assert float(heartbeat["clock_offset_seconds"][0]) == HOURS_SLOW.total_seconds()


def test_reports_with_times_a_clock_hours_off_would_give_are_refused_with_the_reason(
    api: Api, client: FlaskClient, loa: Loa
) -> None:
    agent = Api(client, api.post("/endpoints", {"commune": THO_SON, "name": "Cụm 1"}).json["token"])
    bulletin = api.approved_bulletin()
    api.post("/broadcasts", {"bulletin_id": bulletin, "communes": [THO_SON], "at": later(loa, 60)})
    (item,) = agent.get("/agent/schedule").json["items"]
    for at, error in (
        (later(loa, 3 * 3600), "clock_ahead"),
        (later(loa, -3 * 3600), "clock_behind"),
    ):
        r = agent.post(
            "/agent/reports",
            {"reports": [{"delivery_id": item["delivery_id"], "kind": "started", "at": at}]},
        )
        assert r.status_code == 422 and r.json["error"] == error, r.json
        assert "set the device's clock" in r.json["detail"]
    (broadcast,) = api.get("/broadcasts").json
    assert broadcast["status"] == "scheduled" and broadcast["started_at"] is None
