"""The panel as a new Vietnamese user meets it: driver messages, numbers and endpoint kinds
in Vietnamese, each status change shown once, the author of a bulletin, a calm login page,
removing a device, and operator pages laid out for a phone."""

import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from scheduler import dispatch
from scheduler.context import Loa
from tests.conftest import THO_BINH, THO_SON, Api, later
from tests.test_panel import Panel
from web import i18n


@pytest.fixture
def panel(client: FlaskClient) -> Panel:
    return Panel(client)


def device_played(api: Api, client: FlaskClient, loa: Loa, late: float) -> dict[str, Any]:
    """A broadcast an agent played `late` seconds after its time; the dispatcher found the
    agent had not confirmed the audio yet (an attempt with the driver's English error)."""
    token = api.post("/endpoints", {"commune": THO_SON, "name": "Cụm 1"}).json["token"]
    agent = Api(client, token)
    bulletin_id = api.approved_bulletin()
    (made,) = api.post(
        "/broadcasts", {"bulletin_id": bulletin_id, "communes": [THO_SON], "at": later(loa, 60)}
    ).json
    (item,) = agent.get("/agent/schedule").json["items"]
    loa.clock.advance(60)  # type: ignore[attr-defined]
    dispatch.dispatch(loa, [made["id"]])
    delivery = item["delivery_id"]
    reports = [
        {"delivery_id": delivery, "kind": "delivered", "at": later(loa, 1)},
        {"delivery_id": delivery, "kind": "started", "at": later(loa, late)},
        {"delivery_id": delivery, "kind": "finished", "at": later(loa, late + 5),
         "sha256": item["sha256"]},
    ]  # fmt: skip
    assert agent.post("/agent/reports", {"reports": reports}).json["changed"] == 3
    return {"id": made["id"], "token": token, "endpoint": api.get("/endpoints").json[-1]["id"]}


def history_rows(page: str) -> list[str]:
    history = page.split("<h2>Lịch sử</h2>")[1]
    return [re.sub(r"<[^>]+>|\s+", " ", row) for row in history.split("<tr>")[2:]]


def test_the_broadcast_page_speaks_vietnamese_and_shows_each_change_once(
    panel: Panel, api: Api, client: FlaskClient, loa: Loa
) -> None:
    played = device_played(api, client, loa, late=28.6)
    panel.login("admin", "loa-admin")
    page = panel.get(f"/broadcasts/{played['id']}")
    assert "Loa thông minh (Loa agent)" in page and ">agent<" not in page
    assert "Gửi lệnh phát: loa chưa báo đã tải âm thanh" in page
    assert "the agent has not confirmed" not in page and "start:" not in page
    assert "Trễ 28,6 giây" in page and "28.6" not in page
    assert "∅" not in page
    rows = history_rows(page)
    # created, then the device's three moves: each once, labelled with the endpoint
    assert len(rows) == 4, rows
    assert "đã lên lịch" in rows[0] and "Cụm 1" not in rows[0]
    assert [r.count("Cụm 1") for r in rows[1:]] == [2, 2, 2]  # the endpoint and the actor
    assert re.search(r"đang phát\s+→\s+đã phát", rows[3])
    assert "Thiết bị:" in page  # rows are labelled


def test_the_lists_write_lateness_the_vietnamese_way(
    panel: Panel, api: Api, client: FlaskClient, loa: Loa
) -> None:
    device_played(api, client, loa, late=0.02)
    panel.login("admin", "loa-admin")
    for page in (panel.get("/"), panel.get("/log")):
        assert "đúng giờ" in page and "+0.0" not in page and " s<" not in page


def test_numbers_and_known_messages_are_written_in_vietnamese(app: Flask) -> None:
    with app.test_request_context():
        assert i18n.number(20000) == "20.000"
        assert i18n.number(28.6, 1) == "28,6"
        assert i18n.number(1234567.25, 2) == "1.234.567,25"
        assert i18n.message("no proof of play") == "thiết bị không báo đã phát"
        assert i18n.message("the mqtt driver failed: boom") == "bộ điều khiển mqtt bị lỗi: boom"
        assert i18n.message("in the quiet hours 22:00-05:00") == "trong giờ yên tĩnh 22:00-05:00"
        assert i18n.message("placement 12") == "lịch phát 12"  # a history row's reason
        assert i18n.message("Mất điện cả thôn") == "Mất điện cả thôn"  # as the operator wrote
        assert i18n.message(None) == ""


def test_the_endpoint_kinds_have_vietnamese_names(panel: Panel) -> None:
    panel.login("admin", "loa-admin")
    page = panel.get("/endpoints")
    for label in ("Loa thông minh (Loa agent)", "Thiết bị MQTT", "Luồng Icecast",
                  "Card âm thanh máy chủ", "Xác nhận thủ công"):  # fmt: skip
        assert f">{label}</option>" in page
    panel.post("/endpoints", {"commune": THO_SON, "name": "Cụm 2", "kind": "agent"})
    assert 'data-label="Loại">Loa thông minh (Loa agent)</td>' in panel.get("/endpoints")


def test_the_bulletins_list_names_the_author_and_dates_it_apart(panel: Panel) -> None:
    """By the name the exports give (the user's display name), not the login."""
    panel.login("trungtam", "loa-trungtam")
    panel.post("/bulletins", {"title": "Lịch tiếp dân", "text": "Tiếp dân thứ Hai.",
                              "priority": "normal"})  # fmt: skip
    page = panel.get("/bulletins")
    assert 'data-label="Người tạo">Trung tâm VHTTDL huyện Triệu Sơn</td>' in page
    assert "Người tạo Trung tâm VHTTDL huyện Triệu Sơn" in panel.get("/bulletins/1")
    assert re.search(r'data-label="Ngày tạo">\d\d/\d\d/\d{4} \d\d:\d\d</td>', page)


def test_the_login_page_greets_without_an_error(panel: Panel, client: FlaskClient) -> None:
    page = panel.get("/login")
    assert "flash" not in page.split("<main>")[1]
    page = panel.get("/")  # the start page: just the login form
    assert "flash" not in page.split("<main>")[1]
    page = panel.get("/log")  # a page that needs a login: a neutral note
    assert '<p class="flash note" role="status">Đăng nhập để tiếp tục.</p>' in page
    assert "flash error" not in page and "Vui lòng đăng nhập" not in page
    page = panel.login("thoson", "nope")
    assert '<p class="flash error" role="status">Sai tên đăng nhập hoặc mật khẩu.</p>' in page


def test_the_centre_removes_a_device_and_its_token_stops_working(
    panel: Panel, api: Api, client: FlaskClient, loa: Loa
) -> None:
    made = api.post("/endpoints", {"commune": THO_SON, "name": "Cụm 1"}).json
    agent = Api(client, made["token"])
    bulletin_id = api.approved_bulletin()
    (b,) = api.post(
        "/broadcasts", {"bulletin_id": bulletin_id, "communes": [THO_SON], "at": later(loa, 600)}
    ).json
    panel.login("thoson", "loa-thoson")
    assert "Gỡ thiết bị" not in panel.get("/endpoints")
    page = panel.post(f"/endpoints/{made['id']}/remove", {})
    assert "Bạn không có quyền làm việc này." in page
    panel.client.post("/logout", data={"csrf_token": panel.csrf()})

    panel.login("trungtam", "loa-trungtam")
    page = panel.get("/endpoints")
    assert "<summary>Gỡ thiết bị</summary>" in page  # the confirm step, then the button
    page = panel.post(f"/endpoints/{made['id']}/remove", {})
    assert "Đã gỡ thiết bị: 1 lượt chưa phát ở thiết bị này đã được hủy." in page
    assert "Cụm 1" not in page
    assert agent.get("/agent/schedule").status_code == 401
    broadcast = panel.get(f"/broadcasts/{b['id']}")
    assert "thiết bị đã được gỡ" in broadcast and "đã hủy" in broadcast
    page = panel.post(f"/endpoints/{made['id']}/remove", {})
    assert "Không có thiết bị này, hoặc thiết bị đã được gỡ." in page


def test_the_api_removes_a_device(api: Api, api_for: Any, client: FlaskClient, loa: Loa) -> None:
    made = api.post("/endpoints", {"commune": THO_BINH, "name": "Cụm 3"}).json
    bulletin_id = api.approved_bulletin()
    api.post("/broadcasts", {"bulletin_id": bulletin_id, "communes": [THO_BINH],
                             "at": later(loa, 600)})  # fmt: skip
    operator = api_for("operator", THO_BINH)
    assert operator.call("DELETE", f"/endpoints/{made['id']}").status_code == 403
    r = api.call("DELETE", f"/endpoints/{made['id']}")
    assert r.status_code == 200
    assert r.json == {"id": made["id"], "commune": THO_BINH, "name": "Cụm 3", "kind": "agent",
                      "active": False, "cancelled_deliveries": 1}  # fmt: skip
    assert api.call("DELETE", f"/endpoints/{made['id']}").status_code == 404
    assert made["id"] not in [e["id"] for e in api.get("/endpoints").json]
    assert Api(client, made["token"]).get("/agent/schedule").status_code == 401
    (b,) = api.get(f"/broadcasts?commune={THO_BINH}").json
    assert b["status"] == "cancelled"


def test_the_operator_pages_are_laid_out_for_a_phone(panel: Panel, api: Api, loa: Loa) -> None:
    bulletin_id = api.approved_bulletin()
    (b,) = api.post("/broadcasts", {"bulletin_id": bulletin_id, "communes": [THO_SON]}).json
    loa.clock.advance(5)  # type: ignore[attr-defined]
    panel.login("thoson", "loa-thoson")
    for path in ("/", f"/broadcasts/{b['id']}", "/log", "/endpoints"):
        page = panel.get(path)
        tables = re.findall(r"<table[^>]*>", page)
        assert all('class="stack"' in t for t in tables), (path, tables)
        nav = page.split("<nav>")[1].split("</nav>")[0]
        assert "Từ điển" not in nav and "Nhạc hiệu" not in nav  # the centre's tools
    today = panel.get("/")
    assert today.count('<form method="post" action="/broadcasts/') >= 1
    assert 'name="reason"' in today and ">Đã phát</button>" in today
