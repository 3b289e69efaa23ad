"""An emergency interrupts what plays; when the district resumes interrupted items, the
rest plays as a new broadcast after the emergency (LOA_RESUME_INTERRUPTED)."""

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient

from scheduler import service
from scheduler.context import Loa
from scheduler.models import Broadcast
from scheduler.settings import Settings
from tests.conftest import THO_SON, Api, audio_duration, later

pytestmark = pytest.mark.both_databases

TEXT = "Thông báo về cải cách hành chính của xã, lịch tiếp công dân trong tuần. " * 6


def interrupted_by_an_emergency(api: Api, client: FlaskClient, loa: Loa) -> dict[str, Any]:
    """A normal bulletin starts at T on an agent; an emergency cuts it 10 s in."""
    agent = Api(client, api.post("/endpoints", {"commune": THO_SON, "name": "Cụm 1"}).json["token"])
    normal, urgent = (
        api.approved_bulletin(TEXT),
        api.approved_bulletin("Lũ đang lên, sơ tán ngay.", priority="emergency"),
    )
    at = later(loa, 60)
    (cut,) = api.post("/broadcasts", {"bulletin_id": normal, "communes": [THO_SON], "at": at}).json
    (alarm,) = api.post("/broadcasts", {"bulletin_id": urgent, "communes": [THO_SON]}).json
    items = {i["broadcast_id"]: i for i in agent.get("/agent/schedule").json["items"]}
    reports = [
        {"delivery_id": items[cut["id"]]["delivery_id"], "kind": "started", "at": at},
        {"delivery_id": items[cut["id"]]["delivery_id"], "kind": "interrupted",
         "at": later(loa, 70), "detail": "interrupted by an emergency"},
        {"delivery_id": items[alarm["id"]]["delivery_id"], "kind": "started",
         "at": later(loa, 70)},
    ]  # fmt: skip
    assert agent.post("/agent/reports", {"reports": reports}).status_code == 200
    loa.clock.advance(71)
    return {"cut": cut, "alarm": items[alarm["id"]], "whole": items[cut["id"]]}


class TestResumeOn:
    @pytest.fixture
    def settings(self, settings: Settings) -> Settings:
        return replace(settings, resume_interrupted=True)

    def test_the_rest_plays_once_after_the_emergency_from_just_before_the_cut(
        self, api: Api, client: FlaskClient, loa: Loa
    ) -> None:
        case = interrupted_by_an_emergency(api, client, loa)
        (made,) = service.resume_interrupted(loa)
        assert service.resume_interrupted(loa) == []  # once
        with loa.transaction() as session:
            rest = session.get(Broadcast, made)
            assert rest is not None and rest.resumes_id == case["cut"]["id"]
            assert rest.status == "scheduled" and len(rest.deliveries) == 1
            alarm_ends = (
                loa.now()
                - timedelta(seconds=1)
                + timedelta(seconds=case["alarm"]["duration_seconds"])
            )
            assert rest.scheduled_at == alarm_ends + timedelta(seconds=1)
            left = case["whole"]["duration_seconds"] - 7  # 10 s heard, 3 s heard again
            assert rest.audio.duration_seconds == pytest.approx(left, abs=0.1)
            path = loa.settings.audio_dir / rest.audio.path
        assert audio_duration(path) == pytest.approx(left, abs=0.2)
        cut = api.get(f"/broadcasts/{case['cut']['id']}").json
        assert cut["status"] == "interrupted"  # the as-run log keeps what happened


def test_without_the_setting_an_interrupted_item_is_not_resumed(
    api: Api, client: FlaskClient, loa: Loa
) -> None:
    interrupted_by_an_emergency(api, client, loa)
    assert service.resume_interrupted(loa) == []
