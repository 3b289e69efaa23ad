"""The dashboard ("Hôm nay"): a waiting broadcast is confirmed in one place, and past a
district's size the communes are counted, not listed row by row."""

from datetime import datetime, timedelta

import pytest
from flask.testing import FlaskClient

from scheduler.context import Loa
from tests.conftest import THO_BINH, THO_SON, Api, later
from tests.test_panel import Panel
from web import today


def schedule_and_wait(api: Api, loa: Loa) -> list[int]:
    bulletin = api.approved_bulletin()
    ids = [
        api.post(
            "/broadcasts", {"bulletin_id": bulletin, "communes": [code], "at": later(loa, 60)}
        ).json[0]["id"]
        for code in (THO_SON, THO_BINH)
    ]
    loa.clock.advance(60 * 60)  # type: ignore[attr-defined]  # no device proof: operators asked
    return ids


def test_a_waiting_broadcast_has_one_confirm_form(api: Api, client: FlaskClient, loa: Loa) -> None:
    ids = schedule_and_wait(api, loa)
    panel = Panel(client)
    panel.login("trungtam", "loa-trungtam")
    page = panel.get("/")
    assert "Chờ xác nhận" in page
    for broadcast_id in ids:
        assert page.count(f"/broadcasts/{broadcast_id}/confirm") == 1


def test_the_days_totals_add_up_every_communes_broadcasts(
    api: Api, client: FlaskClient, loa: Loa
) -> None:
    schedule_and_wait(api, loa)  # one in Thọ Sơn, one in Thọ Bình
    panel = Panel(client)
    panel.login("trungtam", "loa-trungtam")
    page = panel.get("/")
    totals = page[page.index('<p class="totals">') :]
    totals = totals[: totals.index("</p>")]
    assert "<strong>2</strong>" in totals and "<strong>1</strong>" not in totals


def test_a_cancelled_broadcast_offers_no_confirmation_and_refuses_one(
    api: Api, client: FlaskClient, loa: Loa
) -> None:
    bulletin = api.approved_bulletin()
    (made,) = api.post(
        "/broadcasts", {"bulletin_id": bulletin, "communes": [THO_BINH], "at": later(loa, 60)}
    ).json
    api.post(f"/broadcasts/{made['id']}/cancel", {})
    loa.clock.advance(60 * 60)  # type: ignore[attr-defined]
    panel = Panel(client)
    panel.login("trungtam", "loa-trungtam")
    assert f"/broadcasts/{made['id']}/confirm" not in panel.get("/")
    page = panel.post(f"/broadcasts/{made['id']}/confirm", {"aired": "yes"})
    assert "đã bị hủy" in page
    assert api.get(f"/broadcasts/{made['id']}").json["status"] == "cancelled"


def test_the_operator_gives_the_time_it_aired_in_the_confirm_form(
    api: Api, client: FlaskClient, loa: Loa
) -> None:
    ids = schedule_and_wait(api, loa)
    scheduled = api.get(f"/broadcasts/{ids[0]}").json["scheduled_at"]  # local, with offset
    aired = datetime.fromisoformat(scheduled) + timedelta(minutes=5)
    panel = Panel(client)
    panel.login("trungtam", "loa-trungtam")
    assert 'type="datetime-local" name="at"' in panel.get("/")
    panel.post(f"/broadcasts/{ids[0]}/confirm", {"aired": "yes", "at": f"{aired:%Y-%m-%dT%H:%M}"})
    b = api.get(f"/broadcasts/{ids[0]}").json
    assert (b["status"], datetime.fromisoformat(b["started_at"])) == ("played", aired)


def test_a_refused_confirmation_says_which_broadcast_it_was(
    api: Api, client: FlaskClient, loa: Loa
) -> None:
    ids = schedule_and_wait(api, loa)  # Thọ Sơn's, then Thọ Bình's
    at = datetime.fromisoformat(api.get(f"/broadcasts/{ids[1]}").json["scheduled_at"])
    panel = Panel(client)
    panel.login("trungtam", "loa-trungtam")
    page = panel.post(f"/broadcasts/{ids[1]}/confirm", {"aired": "no", "reason": ""})
    assert f"Hãy ghi lý do không phát. ({at:%H:%M %d/%m}, Xã Thọ Bình)" in page
    # A bad time for a broadcast that does not exist: the error alone (Panel.post: 200).
    page = panel.post("/broadcasts/999999/confirm", {"aired": "yes", "at": "not a time"})
    assert "Thời điểm không hợp lệ.<" in page


def test_past_a_districts_size_the_dashboard_counts_each_commune(
    api: Api, client: FlaskClient, loa: Loa, monkeypatch: pytest.MonkeyPatch
) -> None:
    schedule_and_wait(api, loa)
    monkeypatch.setattr(today, "DETAIL_COMMUNES", 1)
    monkeypatch.setattr(today, "WAITING_SHOWN", 1)
    panel = Panel(client)
    panel.login("trungtam", "loa-trungtam")
    page = panel.get("/")
    assert f"/log?commune={THO_SON}" in page and f"/log?commune={THO_BINH}" in page
    assert "Các buổi còn lại xem trong nhật ký phát (1)" in page
    assert page.count("/confirm") == 1  # only the waiting list's first row


def test_the_waiting_list_counts_every_overdue_broadcast_not_only_those_shown(
    api: Api, client: FlaskClient, loa: Loa, monkeypatch: pytest.MonkeyPatch
) -> None:
    schedule_and_wait(api, loa)
    loa.clock.advance(5 * 60 * 60)  # type: ignore[attr-defined]  # past escalation: both overdue
    monkeypatch.setattr(today, "WAITING_SHOWN", 1)
    panel = Panel(client)
    panel.login("trungtam", "loa-trungtam")
    page = panel.get("/")
    assert "2 quá hạn" in page
    assert "Các buổi còn lại xem trong nhật ký phát (1)" in page


def test_a_waiting_broadcast_past_the_shown_list_is_confirmed_in_its_commune(
    api: Api, client: FlaskClient, loa: Loa, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = schedule_and_wait(api, loa)
    monkeypatch.setattr(today, "WAITING_SHOWN", 1)
    panel = Panel(client)
    panel.login("trungtam", "loa-trungtam")
    page = panel.get("/")
    assert page.count("chờ cán bộ xã xác nhận") == 2  # both rows below say they wait
    for broadcast_id in ids:  # the first in the list above, the other in its commune's table
        assert page.count(f"/broadcasts/{broadcast_id}/confirm") == 1


def test_an_operator_sees_only_their_communes_broadcasts_on_the_dashboard(
    api: Api, client: FlaskClient, loa: Loa
) -> None:
    tho_son, tho_binh = schedule_and_wait(api, loa)
    panel = Panel(client)
    panel.login("thoson", "loa-thoson")
    page = panel.get("/")
    assert "Chờ xác nhận" in page and page.count(f"/broadcasts/{tho_son}/confirm") == 1
    assert f"/broadcasts/{tho_binh}" not in page and "Thọ Bình" not in page
