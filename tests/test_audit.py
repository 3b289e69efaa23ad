"""The audit log: who created, edited, approved, placed, cancelled and confirmed what,
shown to the administrator only."""

import re
from collections.abc import Callable
from typing import Any

from flask.testing import FlaskClient

from scheduler.context import Loa
from tests.conftest import THO_SON, Api, later
from tests.test_panel import Panel


def a_day_of_changes(
    centre: Api, operator: Api, loa: Loa, edit: dict[str, str], confirm: dict[str, Any]
) -> tuple[int, int]:
    """The centre creates, edits (`edit`), approves, places and schedules a bulletin and
    cancels the placement; the operator confirms the broadcast (`confirm`). The bulletin's
    and the broadcast's ids."""
    b = centre.post("/bulletins", {"title": "Lịch tiếp dân", "text": "UBND xã tiếp công dân."})
    bulletin = b.json["id"]
    assert centre.call("PATCH", f"/bulletins/{bulletin}", edit).status_code == 200
    assert centre.post(f"/bulletins/{bulletin}/approve").status_code == 200
    slot = next(s["id"] for s in centre.get("/slots").json if s["start"] == "05:30")
    rule = {"slots": [slot], "from": "2026-11-27", "to": "2026-11-28"}
    placed = centre.post(
        "/placements", {"bulletin_id": bulletin, "rule": rule, "communes": [THO_SON]}
    ).json
    (now,) = centre.post(
        "/broadcasts", {"bulletin_id": bulletin, "communes": [THO_SON], "at": later(loa, 30)}
    ).json
    assert centre.call("DELETE", f"/placements/{placed['id']}").status_code == 200
    loa.clock.advance(60)  # type: ignore[attr-defined]
    assert operator.post(f"/broadcasts/{now['id']}/confirm", confirm).status_code == 200
    return bulletin, now["id"]


def test_each_change_is_logged_with_who_did_it_and_the_admin_reads_it(
    api_for: Callable[..., Api], client: FlaskClient, loa: Loa
) -> None:
    centre, admin = api_for("centre"), api_for("admin")
    operator = api_for("operator", THO_SON)
    a_day_of_changes(centre, operator, loa, {"topic": "CCHC"}, {"aired": True})

    entries: list[dict[str, Any]] = admin.get("/audit").json
    seen = [(e["actor"], e["action"], e["target"]) for e in reversed(entries)]
    assert seen == [
        ("token:centre-None", "create", "bulletin"),
        ("token:centre-None", "edit", "bulletin"),
        ("token:centre-None", "approve", "bulletin"),
        ("token:centre-None", "place", "placement"),
        ("token:centre-None", "schedule", "bulletin"),
        ("token:centre-None", "cancel", "placement"),
        ("token:operator-15667", "confirm", "broadcast"),
    ]
    assert entries[-2]["detail"] == "topic"  # what the edit changed
    assert entries[0]["detail"].startswith("aired at ")
    mine = admin.get("/audit?actor=token:operator-15667").json
    assert [e["action"] for e in mine] == ["confirm"]
    r = centre.get("/audit")
    assert r.status_code == 403


def test_the_panel_shows_the_audit_log_to_the_admin_only(client: FlaskClient) -> None:
    panel = Panel(client)
    panel.login("admin", "loa-admin")
    assert "Nhật ký thao tác" in panel.get("/audit")
    panel.post("/logout", {})
    panel.login("trungtam", "loa-trungtam")
    page = client.get("/audit")
    assert page.status_code == 403 and "Không có quyền" in page.get_data(as_text=True)


def test_the_panel_says_each_detail_in_vietnamese_or_in_english(
    api_for: Callable[..., Api], client: FlaskClient, loa: Loa
) -> None:
    centre, operator = api_for("centre"), api_for("operator", THO_SON)
    edit = {"topic": "CCHC", "title": "Tiếp dân"}
    bulletin_id, broadcast_id = a_day_of_changes(
        centre, operator, loa, edit, {"aired": False, "reason": "Mất điện"}
    )

    panel = Panel(client)
    panel.login("admin", "loa-admin")
    page = re.sub(r"\s+", " ", panel.get("/audit"))
    for said in (
        "giọng đọc: Lịch tiếp dân",  # created: the kind, the title
        "đã sửa: tiêu đề, chủ đề",
        f"bản tin {bulletin_id}, theo khung giờ",
        "lúc 08:00 26/11/2026 tại Xã Thọ Sơn",  # local time, the commune's name
        "đã hủy 2 lượt phát",
        "không phát; Mất điện",
        ">sửa<", f"lượt phát {broadcast_id}",  # the action, the object
    ):  # fmt: skip
        assert said in page, said
    for english in ("title, topic", "slots", "in 15667", "broadcasts cancelled", "not aired"):
        assert english not in page, english

    panel.get("/lang/en")
    page = re.sub(r"\s+", " ", panel.get("/audit"))
    for said in (
        "speech: Lịch tiếp dân", "changed: title, topic", f"bulletin {bulletin_id}, in slots",
        "at 08:00 26/11/2026 in Xã Thọ Sơn", "2 broadcasts cancelled", "not aired; Mất điện",
        ">edit<", f"broadcast {broadcast_id}",
    ):  # fmt: skip
        assert said in page, said
