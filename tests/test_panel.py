import re
from datetime import timedelta

import pytest
from flask.testing import FlaskClient

from scheduler.context import Loa
from tests.conftest import THO_BINH, THO_SON, Api


class Panel:
    """Drives the panel like a browser: logs in, posts forms with their CSRF token."""

    def __init__(self, client: FlaskClient) -> None:
        self.client = client

    def csrf(self) -> str:
        page = self.client.get("/login").get_data(as_text=True)
        match = re.search(r'name="csrf" value="([^"]+)"', page)
        assert match
        return match.group(1)

    def login(self, username: str, password: str) -> str:
        r = self.client.post(
            "/login", data={"username": username, "password": password, "csrf": self.csrf()},
            follow_redirects=True,
        )  # fmt: skip
        return r.get_data(as_text=True)

    def get(self, path: str) -> str:
        r = self.client.get(path, follow_redirects=True)
        assert r.status_code == 200, r.status_code
        return r.get_data(as_text=True)

    def post(self, path: str, data: dict[str, object]) -> str:
        r = self.client.post(path, data={**data, "csrf": self.csrf()}, follow_redirects=True)
        assert r.status_code == 200, r.get_data(as_text=True)
        return r.get_data(as_text=True)


@pytest.fixture
def panel(client: FlaskClient) -> Panel:
    return Panel(client)


def local_input(loa: Loa, seconds: float) -> str:
    return (
        (loa.now() + timedelta(seconds=seconds))
        .astimezone(loa.settings.timezone)
        .strftime("%Y-%m-%dT%H:%M")
    )


def test_pages_need_a_login(client: FlaskClient) -> None:
    r = client.get("/bulletins")
    assert r.status_code == 302 and "/login" in r.headers["Location"]


def test_a_wrong_password_is_refused_in_vietnamese(panel: Panel) -> None:
    assert "Sai tên đăng nhập hoặc mật khẩu." in panel.login("admin", "nope")


def test_the_centre_writes_renders_approves_and_schedules_a_bulletin(
    panel: Panel, loa: Loa
) -> None:
    panel.login("trungtam", "loa-trungtam")
    page = panel.post(
        "/bulletins",
        {
            "title": "Lịch tiếp dân",
            "text": "UBND xã tiếp dân từ 7h30.",
            "topic": "CCHC",
            "priority": "normal",
        },
    )
    assert "Đã tạo bản tin." in page
    assert (
        "ủy ban nhân dân xã tiếp dân từ bảy giờ ba mươi" in page
    )  # spoken text beside the original
    page = panel.post("/bulletins/1/render", {"engine": "espeak", "voice": "vi"})
    assert "Đã tạo âm thanh." in page and "<audio" in page
    assert panel.client.get("/bulletins/1/audio.mp3").status_code == 200
    page = panel.post("/bulletins/1/schedule", {"communes": [THO_SON], "at": local_input(loa, 120)})
    assert "Bản tin chưa được duyệt." in page
    panel.post("/bulletins/1/approve", {})
    page = panel.post(
        "/bulletins/1/schedule", {"communes": [THO_SON, THO_BINH], "at": local_input(loa, 120)}
    )
    assert "Đã lên lịch." in page
    assert "Xã Thọ Sơn" in page and "Xã Thọ Bình" in page and "đã lên lịch" in page


def test_a_time_in_the_past_is_refused_with_a_readable_message(
    panel: Panel, api: Api, loa: Loa
) -> None:
    bulletin_id = api.approved_bulletin()
    panel.login("trungtam", "loa-trungtam")
    page = panel.post(
        f"/bulletins/{bulletin_id}/schedule", {"communes": [THO_SON], "at": local_input(loa, -3600)}
    )
    assert "Thời điểm đã qua." in page
    page = panel.post(
        f"/bulletins/{bulletin_id}/schedule", {"communes": [THO_SON], "at": "hôm qua"}
    )
    assert "Thời điểm không hợp lệ." in page


def test_an_operator_sees_only_their_commune_and_confirms_with_a_reason(
    panel: Panel, api: Api, loa: Loa
) -> None:
    bulletin_id = api.approved_bulletin()
    made = api.post(
        "/broadcasts", {"bulletin_id": bulletin_id, "communes": [THO_SON, THO_BINH]}
    ).json
    loa.clock.advance(5)  # type: ignore[attr-defined]
    panel.login("thoson", "loa-thoson")
    page = panel.get("/")
    assert "Xã Thọ Sơn" in page and "Xã Thọ Bình" not in page
    assert "chờ cán bộ xã xác nhận" in page
    page = panel.post(f"/broadcasts/{made[0]['id']}/confirm", {"aired": "no", "reason": ""})
    assert "Hãy ghi lý do không phát." in page
    page = panel.post(
        f"/broadcasts/{made[0]['id']}/confirm", {"aired": "no", "reason": "Mất điện cả thôn"}
    )
    assert "Đã lưu xác nhận." in page and "Mất điện cả thôn" in page
    page = panel.post(f"/broadcasts/{made[1]['id']}/confirm", {"aired": "yes"})
    assert "Bạn không có quyền làm việc này." in page
    assert panel.client.get(f"/broadcasts/{made[1]['id']}").status_code == 404


def test_the_as_run_log_filters_and_exports_csv(panel: Panel, api: Api, loa: Loa) -> None:
    bulletin_id = api.approved_bulletin(topic="CCHC")
    api.post("/broadcasts", {"bulletin_id": bulletin_id, "communes": [THO_SON, THO_BINH]})
    panel.login("baocao", "loa-baocao")
    page = panel.get(f"/log?commune={THO_BINH}")
    assert "Xã Thọ Bình" in page and "Xã Thọ Sơn</td>" not in page
    r = panel.client.get(f"/log.csv?commune={THO_BINH}&topic=CCHC")
    lines = r.get_data(as_text=True).lstrip("\ufeff").splitlines()
    assert len(lines) == 2 and THO_BINH in lines[1]
    assert "Thời điểm không hợp lệ." in panel.get("/log?from=someday")


def test_the_broadcast_page_shows_deliveries_and_history(panel: Panel, api: Api) -> None:
    bulletin_id = api.approved_bulletin()
    (made,) = api.post("/broadcasts", {"bulletin_id": bulletin_id, "communes": [THO_SON]}).json
    panel.login("admin", "loa-admin")
    page = panel.get(f"/broadcasts/{made['id']}")
    assert "Lịch sử" in page and "∅ → đã lên lịch" in page


def test_endpoints_are_registered_in_the_panel_with_a_one_time_token(panel: Panel) -> None:
    panel.login("admin", "loa-admin")
    page = panel.post("/endpoints", {"commune": THO_SON, "name": "Cụm loa thôn 1"})
    assert re.search(r"<code>loa_[\w-]+</code>", page)
    assert "Cụm loa thôn 1" in page and "mất kết nối" in page
    assert "<code>" not in panel.get("/endpoints")


def test_the_panel_speaks_english_on_request(panel: Panel) -> None:
    panel.login("admin", "loa-admin")
    panel.get("/lang/en")
    page = panel.get("/")
    assert "Broadcasts today" in page and "Lượt phát hôm nay" not in page


def test_a_form_without_its_csrf_token_is_refused(panel: Panel) -> None:
    panel.login("trungtam", "loa-trungtam")
    r = panel.client.post("/bulletins", data={"title": "x", "text": "y"})
    assert r.status_code == 400


def test_login_returns_to_the_page_asked_for_but_never_to_another_site(panel: Panel) -> None:
    r = panel.client.post(
        "/login?next=/log",
        data={"username": "admin", "password": "loa-admin", "csrf": panel.csrf()},
    )
    assert r.headers["Location"] == "/log"
    panel.client.post("/logout", data={"csrf": panel.csrf()})
    r = panel.client.post(
        "/login?next=//evil.example/x",
        data={"username": "admin", "password": "loa-admin", "csrf": panel.csrf()},
    )
    assert r.headers["Location"] == "/"
