import re
import threading
from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from scheduler.context import Loa
from scheduler.models import Broadcast, Bulletin, Endpoint
from tests.conftest import THO_BINH, THO_SON, THO_TIEN, Api, later

Rows = Callable[[], tuple[int, int, int]]


@pytest.fixture
def rows(loa: Loa) -> Rows:
    def count() -> tuple[int, int, int]:
        with loa.transaction() as s:
            return tuple(  # type: ignore[return-value]
                s.scalar(select(func.count()).select_from(m))
                for m in (Bulletin, Broadcast, Endpoint)
            )

    return count


def test_communes_carry_official_codes_and_their_parents(api: Api) -> None:
    r = api.get("/communes")
    assert r.status_code == 200
    assert len(r.json) == 34
    son = next(c for c in r.json if c["code"] == THO_SON)
    assert son["name"] == "Xã Thọ Sơn"
    assert son["district"] == {"code": "397", "name": "Huyện Triệu Sơn"}
    assert son["province"]["code"] == "38"


def test_a_bulletin_is_created_approved_and_rendered(api: Api) -> None:
    r = api.post(
        "/bulletins",
        {"title": "Lịch tiếp dân", "text": "UBND xã tiếp dân lúc 7h30.", "topic": "CCHC"},
    )
    assert r.status_code == 201
    assert r.json["status"] == "draft" and r.json["priority"] == "normal"
    bulletin_id = r.json["id"]
    r = api.post(f"/bulletins/{bulletin_id}/approve")
    assert r.status_code == 200 and r.json["status"] == "approved"
    r = api.post(f"/bulletins/{bulletin_id}/audio", {"engine": "espeak"})
    assert r.status_code == 200
    assert r.json["engine"] == "espeak" and r.json["duration_seconds"] > 1
    audio = api.get(r.json["url"].removeprefix("/api/v1"))
    assert audio.status_code == 200 and audio.mimetype == "audio/mpeg"
    assert audio.data[:3] == b"ID3"


def test_auto_engine_falls_back_offline_and_says_so(api: Api) -> None:
    bulletin_id = api.approved_bulletin()
    r = api.post(f"/bulletins/{bulletin_id}/audio", {"engine": "auto"})
    assert r.status_code == 200
    assert r.json["engine"] == "espeak"
    assert "gtts" in r.json["fallback_reason"]


def test_broadcasts_are_scheduled_and_listed_with_local_times(api: Api, loa: Loa) -> None:
    bulletin_id = api.approved_bulletin()
    at = later(loa, 600)
    r = api.post(
        "/broadcasts", {"bulletin_id": bulletin_id, "communes": [THO_SON, THO_BINH], "at": at}
    )
    assert r.status_code == 201
    assert [(b["commune"], b["status"]) for b in r.json] == [
        (THO_SON, "scheduled"),
        (THO_BINH, "scheduled"),
    ]
    assert r.json[0]["scheduled_at"].endswith("+07:00")
    listed = api.get(f"/broadcasts?commune={THO_SON}")
    assert [b["id"] for b in listed.json] == [r.json[0]["id"]]
    one = api.get(f"/broadcasts/{r.json[0]['id']}")
    assert one.json["history"][0]["to"] == "scheduled"


def test_a_broadcast_without_a_time_is_scheduled_now(api: Api, loa: Loa) -> None:
    bulletin_id = api.approved_bulletin()
    r = api.post("/broadcasts", {"bulletin_id": bulletin_id, "communes": [THO_SON]})
    assert r.status_code == 201
    assert r.json[0]["scheduled_at"] == loa.now().astimezone(loa.settings.timezone).isoformat()


def test_the_as_run_log_filters_by_period_and_status(api: Api, loa: Loa) -> None:
    bulletin_id = api.approved_bulletin()
    today = loa.now().astimezone(loa.settings.timezone).date()
    api.post(
        "/broadcasts", {"bulletin_id": bulletin_id, "communes": [THO_SON], "at": later(loa, 60)}
    )
    api.post(
        "/broadcasts",
        {"bulletin_id": bulletin_id, "communes": [THO_SON], "at": later(loa, 86400 * 2)},
    )
    assert len(api.get(f"/broadcasts?from={today}&to={today}").json) == 1
    assert len(api.get(f"/broadcasts?from={today}").json) == 2
    assert len(api.get("/broadcasts?status=played").json) == 0
    r = api.get("/broadcasts?from=yesterday")
    assert r.status_code == 422 and r.json["error"] == "invalid_time"


def test_an_endpoint_is_registered_with_a_token_shown_once(api: Api, client: FlaskClient) -> None:
    r = api.post("/endpoints", {"commune": THO_TIEN, "name": "Cụm loa thôn 3", "kind": "agent"})
    assert r.status_code == 201
    assert r.json["token"].startswith("loa_") and r.json["commune"] == THO_TIEN
    agent = Api(client, r.json["token"])
    schedule = agent.get("/agent/schedule")
    assert schedule.status_code == 200
    assert schedule.json["endpoint"]["commune"] == THO_TIEN
    assert schedule.json["items"] == []
    assert [e["name"] for e in api.get("/endpoints").json] == ["Cụm loa thôn 3"]


def test_an_agent_sees_its_upcoming_items_and_reports_play(
    api: Api, client: FlaskClient, loa: Loa
) -> None:
    token = api.post("/endpoints", {"commune": THO_SON, "name": "Cụm 1"}).json["token"]
    agent = Api(client, token)
    bulletin_id = api.approved_bulletin()
    at = later(loa, 60)
    (b,) = api.post(
        "/broadcasts", {"bulletin_id": bulletin_id, "communes": [THO_SON], "at": at}
    ).json
    (item,) = agent.get("/agent/schedule").json["items"]
    assert item["broadcast_id"] == b["id"] and item["rank"] == 0
    assert agent.get(item["audio_url"].removeprefix("/api/v1")).status_code == 200
    reports = [
        {"delivery_id": item["delivery_id"], "kind": "delivered", "at": later(loa, 1)},
        {"delivery_id": item["delivery_id"], "kind": "started", "at": later(loa, 60.2)},
        {
            "delivery_id": item["delivery_id"],
            "kind": "finished",
            "at": later(loa, 63),
            "sha256": item["sha256"],
        },
    ]
    r = agent.post("/agent/reports", {"reports": reports})
    assert r.json == {"received": 3, "changed": 3}
    (played,) = api.get("/broadcasts").json
    assert played["status"] == "played"
    assert played["lateness_seconds"] == pytest.approx(0.2)
    assert played["confirmed_by"] == "endpoint:Cụm 1"
    csv = api.get("/reports/broadcasts.csv")
    assert csv.mimetype == "text/csv"
    lines = csv.data.decode("utf-8-sig").splitlines()
    assert lines[0].startswith("Mã lượt phát,Mã xã,Xã,")
    assert ",đã phát," in lines[1] and ",0.2," in lines[1]
    assert ",Thiết bị: Cụm 1," in lines[1]
    english = api.get("/reports/broadcasts.csv?lang=en").data.decode("utf-8-sig").splitlines()
    assert english[0].startswith("ID,Commune code,Commune,") and ",played," in english[1]


def test_an_operator_confirms_only_their_own_commune(
    api: Api, api_for: Callable[..., Api], loa: Loa
) -> None:
    bulletin_id = api.approved_bulletin()
    made = api.post(
        "/broadcasts", {"bulletin_id": bulletin_id, "communes": [THO_SON, THO_BINH]}
    ).json
    loa.clock.advance(5)  # type: ignore[attr-defined]
    operator = api_for("operator", THO_SON)
    r = operator.post(f"/broadcasts/{made[0]['id']}/confirm", {"aired": True})
    assert r.status_code == 200
    assert r.json["status"] == "played" and r.json["confirmed_by"] == f"token:operator-{THO_SON}"
    r = operator.post(
        f"/broadcasts/{made[1]['id']}/confirm", {"aired": False, "reason": "mất điện"}
    )
    assert r.status_code == 403 and r.json["error"] == "forbidden"
    assert [b["commune"] for b in operator.get("/broadcasts").json] == [THO_SON]


def test_an_emergency_without_a_time_is_scheduled_at_once(api: Api, loa: Loa) -> None:
    bulletin_id = api.approved_bulletin(priority="emergency")
    r = api.post("/broadcasts", {"bulletin_id": bulletin_id, "communes": [THO_SON]})
    assert r.status_code == 201 and r.json[0]["priority"] == "emergency"


BAD_REQUESTS = [
    ("unknown commune", {"communes": ["99999"]}, 422, "unknown_commune"),
    ("past time", {"at": "2020-01-01T06:00:00+07:00"}, 422, "time_in_past"),
    ("malformed time", {"at": "tomorrow morning"}, 400, "invalid_body"),
    ("time without offset", {"at": "2030-01-01T06:00:00"}, 400, "invalid_body"),
    ("no communes", {"communes": []}, 400, "invalid_body"),
    ("unknown field", {"repeat": 3}, 400, "invalid_body"),
]


@pytest.mark.parametrize(
    ("case", "change", "status", "code"), BAD_REQUESTS, ids=[b[0] for b in BAD_REQUESTS]
)
def test_bad_broadcast_requests_get_a_clear_error_and_write_nothing(
    api: Api, loa: Loa, rows: Rows, case: str, change: dict[str, object], status: int, code: str
) -> None:
    bulletin_id = api.approved_bulletin()
    before = rows()
    body = {"bulletin_id": bulletin_id, "communes": [THO_SON], "at": later(loa, 60), **change}
    r = api.post("/broadcasts", body)
    assert (r.status_code, r.json["error"]) == (status, code)
    assert r.json["detail"]
    assert rows() == before


def test_an_unapproved_bulletin_cannot_be_scheduled(api: Api, rows: Rows) -> None:
    bulletin_id = api.post("/bulletins", {"title": "Nháp", "text": "Nội dung"}).json["id"]
    before = rows()
    r = api.post("/broadcasts", {"bulletin_id": bulletin_id, "communes": [THO_SON]})
    assert (r.status_code, r.json["error"]) == (409, "not_approved")
    assert rows() == before


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"title": "T", "text": "   "}, "empty_text"),
        ({"title": "T", "text": ""}, "invalid_body"),
        ({"title": "T", "text": "x", "priority": "urgent"}, "invalid_body"),
        ({"text": "x"}, "invalid_body"),
    ],
)
def test_bad_bulletins_are_refused(
    api: Api, rows: Rows, body: dict[str, object], code: str
) -> None:
    before = rows()
    r = api.post("/bulletins", body)
    assert r.status_code in (400, 422) and r.json["error"] == code
    assert rows() == before


def test_a_body_that_is_not_json_is_refused(api: Api, rows: Rows) -> None:
    before = rows()
    r = api.call(
        "POST", "/bulletins", data="title=x", content_type="application/x-www-form-urlencoded"
    )
    assert (r.status_code, r.json["error"]) == (422, "invalid_json")
    r = api.call("POST", "/bulletins", data="{not json", content_type="application/json")
    assert r.json["error"] == "invalid_json"
    assert rows() == before


@pytest.mark.parametrize("header", [None, "Bearer", "Bearer loa_wrong", "Basic abc"])
def test_missing_or_wrong_tokens_are_refused(client: FlaskClient, header: str | None) -> None:
    headers = {"Authorization": header} if header else {}
    r = client.get("/api/v1/communes", headers=headers)
    assert r.status_code == 401
    assert set(r.json) == {"error", "detail"}


def test_roles_limit_what_a_token_may_do(api_for: Callable[..., Api]) -> None:
    reporter = api_for("reporter")
    r = reporter.post("/bulletins", {"title": "T", "text": "x"})
    assert (r.status_code, r.json["error"]) == (403, "forbidden")
    assert reporter.get("/reports/broadcasts.csv").status_code == 200


def test_an_endpoint_token_cannot_use_the_management_api(api: Api, client: FlaskClient) -> None:
    token = api.post("/endpoints", {"commune": THO_SON, "name": "Cụm 1"}).json["token"]
    r = Api(client, token).get("/communes")
    assert r.status_code == 403


def test_unknown_ids_and_paths_answer_json_404(api: Api) -> None:
    assert api.post("/bulletins/999/approve").json["error"] == "unknown_bulletin"
    assert api.get("/broadcasts/999").status_code == 404
    r = api.get("/nothing-here")
    assert r.status_code == 404 and r.json["error"] == "not_found"
    r = api.call("DELETE", "/communes")
    assert r.status_code == 405 and set(r.json) == {"error", "detail"}


def test_the_openapi_document_describes_every_api_route(app: Flask, client: FlaskClient) -> None:
    doc = client.get("/api/v1/openapi.json").json
    assert doc["openapi"].startswith("3.")
    documented = {(m.upper(), "/api/v1" + p) for p, ops in doc["paths"].items() for m in ops}
    routed = set()
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/v1") and rule.endpoint != "api.openapi":
            path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
            path = re.sub(r"\{\w+_id\}", "{id}", path)
            verbs = ("GET", "POST", "PUT", "PATCH", "DELETE")
            routed |= {(m, path) for m in rule.methods or () if m in verbs}
    assert routed == documented
    assert "BroadcastIn" in doc["components"]["schemas"]


def test_the_long_poll_returns_when_the_schedule_changes(
    api: Api, client: FlaskClient, loa: Loa
) -> None:
    token = api.post("/endpoints", {"commune": THO_SON, "name": "Cụm 1"}).json["token"]
    agent = Api(client, token)
    version = agent.get("/agent/schedule").json["version"]
    answered: list[dict[str, object]] = []
    poll = threading.Thread(
        target=lambda: answered.append(agent.get(f"/agent/schedule?version={version}&wait=20").json)
    )
    poll.start()
    bulletin_id = api.approved_bulletin()
    api.post(
        "/broadcasts", {"bulletin_id": bulletin_id, "communes": [THO_SON], "at": later(loa, 60)}
    )
    poll.join(timeout=10)
    assert not poll.is_alive()
    assert answered[0]["version"] != version
    assert len(answered[0]["items"]) == 1  # type: ignore[arg-type]


def test_reports_for_unknown_deliveries_are_refused_whole(
    api: Api, client: FlaskClient, loa: Loa
) -> None:
    token = api.post("/endpoints", {"commune": THO_SON, "name": "Cụm 1"}).json["token"]
    agent = Api(client, token)
    bulletin_id = api.approved_bulletin()
    api.post(
        "/broadcasts", {"bulletin_id": bulletin_id, "communes": [THO_SON], "at": later(loa, 60)}
    )
    (item,) = agent.get("/agent/schedule").json["items"]
    r = agent.post(
        "/agent/reports",
        {"reports": [
            {"delivery_id": item["delivery_id"], "kind": "delivered", "at": later(loa, 0)},
            {"delivery_id": 9999, "kind": "started", "at": later(loa, 0)},
        ]},
    )  # fmt: skip
    assert r.status_code == 404
    assert api.get("/broadcasts").json[0]["status"] == "scheduled"


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/broadcasts", {"bulletin_id": 2**64, "communes": ["15667"]}),
        ("POST", "/broadcasts", {"bulletin_id": -1, "communes": ["15667"]}),
        ("GET", f"/broadcasts/{2**64}", None),
        ("GET", f"/bulletins/{2**70}", None),
        ("POST", f"/broadcasts/{2**64}/confirm", {"aired": True}),
        ("POST", "/bulletins/1/audio", {"intro_jingle_id": 2**64}),
    ],
)
def test_integers_beyond_what_the_database_holds_are_refused_not_a_500(
    api: Api, method: str, path: str, body: object
) -> None:
    r = api.call(method, path, body)
    assert 400 <= r.status_code < 500, r.json
    assert set(r.json) == {"error", "detail"}
